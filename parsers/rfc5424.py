"""RFC 5424 syslog: a lenient parser for the hot path and a strict validator.

Lenient (:func:`parse`) accepts what real senders emit: ``[]`` as empty
STRUCTURED-DATA (logspout), a missing SD, over-long header fields, fractions
up to 9 digits, lowercase ``t``/``z``, a timestamp without offset (taken in
``tz``), spaces around ``=`` in SD params and unknown backslash escapes (kept
literally, RFC 5424 section 6.3.3).  Strict (:func:`validate`) follows the
RFC 5424 ABNF to the letter and says exactly where and why a line is invalid.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from .numbers import put_int
from .priority import PRI_FIELDS
from .timestamps import apply_source_time, parse_iso, valid_date

_BOM = "\ufeff"

# <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP, then
# a nil STRUCTURED-DATA ("-" and SP, or "-" at the end) when there is one (group 8).
_HEADER = re.compile(r"<([0-9]{1,3})>([0-9]{1,3}) (\S+) (\S+) (\S+) (\S+) (\S+)(?= |$)(?: (-)(?: |\Z))?")
# Possessive quantifiers (3.11+): no backtracking inside names/values.
_NAME = r'[^\s=\]"]++'
_VALUE = r'[^"\\]*+(?:\\.[^"\\]*+)*+'
# The whole STRUCTURED-DATA run in one match (``[]`` tolerated), then one
# findall yielding ("", "", sd_id) for each element and (name, value, "")
# for each param: two regex calls per line whatever the element count.
_SD_BLOCK = re.compile(
    r"(?:\[" + _NAME + r"(?:\s++" + _NAME + r'\s*+=\s*+"' + _VALUE + r'")*+\s*+\]|\[\])++', re.DOTALL
)
# Params first: a PARAM-NAME may itself start with "[" (only a preceding space tells).
_SD_TOKEN = re.compile(r"(?<=\s)(" + _NAME + r')\s*+=\s*+"(' + _VALUE + r')"|\[(' + _NAME + ")", re.DOTALL)
_ESCAPE = re.compile(r'\\(["\\\]])')
_BASE = tuple({"message": "", "event.dataset": "syslog.rfc5424", **f} for f in PRI_FIELDS)
_HEADERS_LIMIT = 4096


class _Headers(dict[tuple[str, str, str, str, str, str], dict[str, Any]]):
    """(PRI, VERSION, HOSTNAME, APP-NAME, PROCID, MSGID) -> the fields they give.

    One sender repeats its header but for the TIMESTAMP, so a line costs one
    lookup and one copy instead of a dozen checks and stores.  Starts over
    when full (bounded memory)."""

    def __missing__(self, key: tuple[str, str, str, str, str, str]) -> dict[str, Any]:
        pri_s, ver, host, app, procid, msgid = key
        pri = int(pri_s)
        if pri < 192:
            out = _BASE[pri].copy()  # message, dataset and PRI fields, prebuilt
        else:  # keep the rest of the header: real senders get PRI wrong more often than the rest
            out = {"message": "", "event.dataset": "syslog.rfc5424",
                   "logship.parse_error": f"PRI: value {pri} > 191 at offset 1"}
        out["log.syslog.version"] = int(ver)
        if host != "-":
            out["log.syslog.hostname"] = out["host.hostname"] = host
        if app != "-":
            out["log.syslog.appname"] = app
        if procid != "-":
            out["log.syslog.procid"] = procid
            put_int(out, "process.pid", procid)
        if msgid != "-":
            out["log.syslog.msgid"] = msgid
        if len(self) >= _HEADERS_LIMIT:
            self.clear()
        self[key] = out
        return out


_HEADERS = _Headers()


def _unescape(value: str) -> str:
    return _ESCAPE.sub(r"\1", value) if "\\" in value else value


def parse_structured_data(text: str, pos: int) -> tuple[dict[str, dict[str, str]], int] | None:
    """Parse SD-ELEMENTs starting at ``text[pos] == '['``.

    Returns ``(sd, end)``; ``sd`` is empty for ``[]``.  None if malformed.
    A repeated SD-ID (invalid) has its params merged."""
    m = _SD_BLOCK.match(text, pos)
    if m is None:
        return None
    sd: dict[str, dict[str, str]] = {}
    params: dict[str, str] = {}
    for name, value, sid in _SD_TOKEN.findall(m.group()):
        if sid:
            params = sd.setdefault(sid, {})
        else:
            params[name] = _ESCAPE.sub(r"\1", value) if "\\" in value else value
    return sd, m.end()


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    """Lenient RFC 5424 parse of a decoded line; None when the header does not match."""
    # One regex for the header: measured faster than split(" ", 6) plus the checks
    # that would make it equivalent (printable ASCII, no empty field, PRI shape).
    m = _HEADER.match(line)
    if m is None:
        return None
    pri_s, ver, ts, host, app, procid, msgid, nil_sd = m.groups()
    out = _HEADERS[pri_s, ver, host, app, procid, msgid].copy()
    out["event.original"] = line
    if ts != "-":
        r = parse_iso(ts, tz)
        if r is None:
            return None
        out["logship.timestamp_ns"], out["@timestamp"] = r
    elif source_time is not None:
        apply_source_time(out, source_time, tz)
    if nil_sd:
        msg = line[m.end() :]
        out["message"] = msg[1:] if msg[:1] == _BOM else msg
        return out
    pos = m.end() + 1
    n = len(line)
    if pos >= n:
        return out
    if line[pos] == "[":
        r2 = parse_structured_data(line, pos)
        if r2 is None:
            out["message"] = line[pos:]
            out["logship.parse_error"] = validate(line) or "STRUCTURED-DATA: malformed"
            return out
        sd, pos = r2
        if sd:
            out["log.syslog.structured_data"] = sd
        if pos < n and line[pos] == " ":
            pos += 1
    # else: no STRUCTURED-DATA at all (non-conformant sender); the rest is MSG
    msg = line[pos:]
    if msg and msg[0] == _BOM:
        msg = msg[1:]
    out["message"] = msg
    return out


# --------------------------------------------------------------------------- strict


class _Invalid(Exception):
    pass


def _fail(part: str, what: str, offset: int) -> _Invalid:
    return _Invalid(f"{part}: {what} at offset {offset}")


def _is_digit(c: int) -> bool:
    return 48 <= c <= 57


def _digits(b: bytes, i: int, count: int, part: str, name: str) -> int:
    seg = b[i : i + count]
    if len(seg) < count:
        raise _fail(part, f"truncated {name}", len(b))
    for k, c in enumerate(seg):
        if not _is_digit(c):
            raise _fail(part, f"expected digit in {name}, got {chr(c)!r}", i + k)
    return int(seg)


def _expect(b: bytes, i: int, ch: str, part: str, after: str) -> int:
    if i >= len(b):
        raise _fail(part, f"missing {ch!r} after {after} (end of input)", i)
    if b[i] != ord(ch):
        raise _fail(part, f"expected {ch!r} after {after}, got {chr(b[i])!r}", i)
    return i + 1


def _timestamp(b: bytes, i: int) -> int:
    P = "TIMESTAMP"
    if i >= len(b):
        raise _fail(P, "missing (end of input)", i)
    if b[i] == 45 and (i + 1 >= len(b) or b[i + 1] == 32):
        return i + 1
    y = _digits(b, i, 4, P, "DATE-FULLYEAR")
    i = _expect(b, i + 4, "-", P, "year")
    mo = _digits(b, i, 2, P, "DATE-MONTH")
    if not 1 <= mo <= 12:
        raise _fail(P, f"month {mo:02d} out of range 01-12", i)
    i = _expect(b, i + 2, "-", P, "month")
    d = _digits(b, i, 2, P, "DATE-MDAY")
    if not valid_date(y, mo, d):
        raise _fail(P, f"day {d:02d} out of range for {y:04d}-{mo:02d}", i)
    i = _expect(b, i + 2, "T", P, "FULL-DATE (uppercase T required)")
    h = _digits(b, i, 2, P, "TIME-HOUR")
    if h > 23:
        raise _fail(P, f"hour {h:02d} > 23", i)
    i = _expect(b, i + 2, ":", P, "hour")
    mi = _digits(b, i, 2, P, "TIME-MINUTE")
    if mi > 59:
        raise _fail(P, f"minute {mi:02d} > 59", i)
    i = _expect(b, i + 2, ":", P, "minute")
    s = _digits(b, i, 2, P, "TIME-SECOND")
    if s > 59:
        raise _fail(P, f"second {s:02d} > 59", i)
    i += 2
    n = len(b)
    if i < n and b[i] == 46:  # '.'
        j = i + 1
        while j < n and _is_digit(b[j]):
            j += 1
        count = j - i - 1
        if count == 0:
            raise _fail(P, "TIME-SECFRAC has no digits", i + 1)
        if count > 6:
            raise _fail(P, f"TIME-SECFRAC has {count} digits (max 6)", i + 1)
        i = j
    if i >= n or b[i] == 32:
        raise _fail(P, "missing time-offset", i)
    c = b[i]
    if c == 90:  # 'Z'
        return i + 1
    if c in (43, 45):  # '+' / '-'
        oh = _digits(b, i + 1, 2, P, "time-offset hour")
        if oh > 23:
            raise _fail(P, f"time-offset hour {oh:02d} > 23", i + 1)
        j = _expect(b, i + 3, ":", P, "time-offset hour")
        om = _digits(b, j, 2, P, "time-offset minute")
        if om > 59:
            raise _fail(P, f"time-offset minute {om:02d} > 59", j)
        return j + 2
    raise _fail(P, f"expected 'Z' or '+'/'-' time-offset, got {chr(c)!r}", i)


def _header_field(b: bytes, i: int, part: str, maxlen: int) -> int:
    n = len(b)
    j = i
    while j < n and 33 <= b[j] <= 126:
        j += 1
    if j == i:
        if i >= n:
            raise _fail(part, "missing (end of input)", i)
        raise _fail(part, f"expected 1-{maxlen} printable US-ASCII characters or '-', got {chr(b[i])!r}", i)
    if j - i > maxlen:
        raise _fail(part, f"{j - i} characters, longer than {maxlen}", i)
    if j < n and b[j] != 32:
        raise _fail(part, f"non-printable or non-ASCII byte 0x{b[j]:02x}", j)
    return j


def _sd_name(b: bytes, i: int, part: str, what: str) -> int:
    n = len(b)
    j = i
    while j < n and 33 <= b[j] <= 126 and b[j] not in (61, 93, 34):  # '=' ']' '"'
        j += 1
    if j == i:
        got = "end of input" if i >= n else repr(chr(b[i]))
        raise _fail(part, f"expected {what} (1-32 printable US-ASCII except '=', ']', '\"', SP), got {got}", i)
    if j - i > 32:
        raise _fail(part, f"{what} is {j - i} characters, longer than 32", i)
    return j


def _structured_data(b: bytes, i: int) -> int:
    P = "STRUCTURED-DATA"
    n = len(b)
    if i >= n:
        raise _fail(P, "missing (end of input)", i)
    if b[i] == 45:  # '-'
        return i + 1
    if b[i] != 91:
        raise _fail(P, f"expected '[' or '-', got {chr(b[i])!r}", i)
    seen: set[bytes] = set()
    while i < n and b[i] == 91:
        start = i
        j = _sd_name(b, i + 1, P, "SD-ID")
        sd_id = b[i + 1 : j]
        if sd_id in seen:
            raise _fail(P, f"duplicate SD-ID {sd_id.decode('ascii', 'replace')!r}", i + 1)
        seen.add(sd_id)
        i = j
        while True:
            if i >= n:
                raise _fail(P, "unterminated SD-ELEMENT", start)
            c = b[i]
            if c == 93:  # ']'
                i += 1
                break
            if c != 32:
                raise _fail(P, f"expected SP or ']' in SD-ELEMENT, got {chr(c)!r}", i)
            i = _sd_name(b, i + 1, P, "PARAM-NAME")
            i = _expect(b, i, "=", P, "PARAM-NAME")
            i = _expect(b, i, '"', P, "'='")
            vstart = i
            while True:
                if i >= n:
                    raise _fail(P, "unterminated PARAM-VALUE", vstart - 1)
                c = b[i]
                if c == 92:  # backslash
                    if i + 1 >= n:
                        raise _fail(P, "unterminated PARAM-VALUE", vstart - 1)
                    if b[i + 1] not in (34, 92, 93):
                        raise _fail(P, f"invalid escape '\\{chr(b[i + 1])}' in PARAM-VALUE", i)
                    i += 2
                    continue
                if c == 34:
                    break
                if c == 93:
                    raise _fail(P, "unescaped ']' in PARAM-VALUE", i)
                i += 1
            try:
                b[vstart:i].decode("utf-8")
            except UnicodeDecodeError as e:
                raise _fail(P, "PARAM-VALUE is not valid UTF-8", vstart + e.start) from None
            i += 1
    return i


def validate(raw: bytes | str) -> str | None:
    """Strict RFC 5424 check: None when valid, else a precise reason with offset."""
    if isinstance(raw, str):
        try:
            b = raw.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            b = raw.encode("utf-8", "surrogatepass")
    else:
        b = bytes(raw)
    try:
        _validate(b)
    except _Invalid as e:
        return str(e)
    return None


def _validate(b: bytes) -> None:
    n = len(b)
    if n == 0:
        raise _fail("PRI", "empty input", 0)
    if b[0] != 60:
        raise _fail("PRI", f"expected '<', got {chr(b[0])!r}", 0)
    j = 1
    while j < n and _is_digit(b[j]):
        j += 1
    if j == 1:
        got = "end of input" if j >= n else repr(chr(b[1]))
        raise _fail("PRI", f"expected 1-3 digits, got {got}", 1)
    if j - 1 > 3:
        raise _fail("PRI", f"{j - 1} digits, more than 3", 1)
    if j - 1 > 1 and b[1] == 48:
        raise _fail("PRI", "leading zero", 1)
    pri = int(b[1:j])
    if pri > 191:
        raise _fail("PRI", f"value {pri} > 191", 1)
    i = _expect(b, j, ">", "PRI", "PRIVAL")
    # VERSION = NONZERO-DIGIT 0*2DIGIT
    if i >= n:
        raise _fail("VERSION", "missing (end of input)", i)
    if not 49 <= b[i] <= 57:
        raise _fail("VERSION", f"expected NONZERO-DIGIT, got {chr(b[i])!r}", i)
    j = i + 1
    while j < n and _is_digit(b[j]):
        j += 1
    if j - i > 3:
        raise _fail("VERSION", f"{j - i} digits, more than 3", i)
    i = _expect(b, j, " ", "VERSION", "VERSION")
    i = _expect(b, _timestamp(b, i), " ", "TIMESTAMP", "TIMESTAMP")
    i = _expect(b, _header_field(b, i, "HOSTNAME", 255), " ", "HOSTNAME", "HOSTNAME")
    i = _expect(b, _header_field(b, i, "APP-NAME", 48), " ", "APP-NAME", "APP-NAME")
    i = _expect(b, _header_field(b, i, "PROCID", 128), " ", "PROCID", "PROCID")
    i = _expect(b, _header_field(b, i, "MSGID", 32), " ", "MSGID", "MSGID")
    i = _structured_data(b, i)
    if i >= n:
        return
    if b[i] != 32:
        raise _fail("MSG", f"expected SP before MSG, got {chr(b[i])!r}", i)
    msg = b[i + 1 :]
    if msg.startswith(b"\xef\xbb\xbf"):
        try:
            msg.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _fail("MSG", "starts with BOM but is not valid UTF-8", i + 1 + e.start) from None
