"""RFC 3164 / BSD syslog: ``[<PRI>]TIMESTAMP [HOST] TAG[PID]: MSG`` (lenient).

Accepted timestamp shapes: ``Mmm dd hh:mm:ss`` (day space-padded or not,
any month case, optional ``.frac``, optional year before the time or after it,
optional trailing ``:``), and ISO-8601 (``2006-10-29T01:59:59.156+01:00``,
also with a space).  Year-less stamps get their year from ``source_time``
(see :func:`parsers.timestamps.build_yearless`); stamps without offset are
taken in ``tz``.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from . import levels
from .numbers import put_int
from .priority import PRI_FIELDS
from .stamp_cache import YearlessCache, yearless_at
from .timestamps import (
    ISO_PATTERN,
    MONTHS,
    apply_source_time,
    build,
    build_yearless,
    frac_to_ns,
    reference_epoch,
    set_iso_groups,
)

_PRI = re.compile(r"<([0-9]{1,3})> ?")
_BSD = re.compile(
    r"([A-Za-z]{3}) +([0-9]{1,2}) (?:([0-9]{4}) )?([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]*))?"
    r"(?: ([0-9]{4})(?= |$))?:?(?: +|$)"
)
_ISO = re.compile(ISO_PATTERN + r"(?: +|$)")
# TAG: program name, optional [pid], optional ':'.
_TAG = re.compile(r"([^\s\[]+?)(?:\[([^\]\s]*)\])?(:)?(?: +|$)")
# macOS: an app name with blanks ("Microsoft Word[14463]: ..."), and a "(context): " after the
# tag ("launchd[1] (com.apple.xpc.launchd.domain.pid.X.1): ...", "sandboxd[129] ([31211]): ...").
_SPACED_TAG = re.compile(r"([^\s\[\]:]{1,64}(?: [^\s\[\]:]{1,64}){1,3})\[([0-9]{1,10})\]: ")
_CONTEXT = re.compile(r"\([^\s()]{1,160}\): ")


def _set_bsd(out: dict[str, Any], m: re.Match[str], source_time: datetime | None, tz: tzinfo) -> bool:
    mon, day, y1, hh, mm, ss, frac, y2 = m.groups()
    mo = MONTHS.get(mon) or MONTHS.get(mon.lower())
    if mo is None:
        return False
    ns = frac_to_ns(frac) if frac else 0
    year = y1 or y2
    if year:
        r = build(int(year), mo, int(day), int(hh), int(mm), int(ss), ns, tz)
    else:
        r = build_yearless(mo, int(day), int(hh), int(mm), int(ss), ns, tz, reference_epoch(source_time))
    if r is None:
        return False
    out["logship.timestamp_ns"] = r
    return True


def _split_tag(text: str) -> tuple[str, str | None, int] | bool:
    """What :data:`_TAG` matches, by string ops, for a first word of printable
    ASCII: ``(app, pid, end)``, or False for no match; True: other text, use the regex.

    The lazy name stops at the first ``[`` (then ``[pid]`` and an optional ``:``
    must end the word) or, without ``[``, just before a final ``:``."""
    sp = text.find(" ")
    word = text if sp < 0 else text[:sp]
    if not word or not word.isascii() or not word.isprintable():
        return True
    end = len(text) if sp < 0 else len(text) - len(text[sp:].lstrip(" "))
    b = word.find("[")
    if b < 0:
        return (word[:-1] if word[-1] == ":" and len(word) > 1 else word), None, end
    c = word.find("]", b)
    if b == 0 or c < 0 or word[c + 1 :] not in ("", ":"):
        return False
    return word[:b], word[b + 1 : c], end


def _tag(out: dict[str, Any], text: str) -> str:
    """Split ``tag[pid]: msg``; returns the message."""
    r = _split_tag(text)
    if r is True:
        m = _TAG.match(text)
        if m is None:
            return text
        app, pid, _colon = m.groups()
        end = m.end()
    elif r is False:
        return text
    else:
        app, pid, end = r
        if pid is None and app[-1:] != ":" and text[len(app) : len(app) + 1] == " ":
            m = _SPACED_TAG.match(text)
            if m is not None:
                app, pid, end = m.group(1), m.group(2), m.end()
    if pid and text[end : end + 1] == "(":
        c = _CONTEXT.match(text, end)
        if c is not None:
            end = c.end()
    out["log.syslog.appname"] = app
    if pid:
        out["log.syslog.procid"] = pid
        put_int(out, "process.pid", pid)
    return text[end:]


def _looks_like_tag(word: str) -> bool:
    return word.endswith(":") or ("[" in word and word.endswith("]"))


def _bsd_minute(k: str) -> tuple[int, int, int, int] | None:
    """``"Mmm dd hh:mm"`` (day space-padded or 2 digits) -> (month, day, hour, minute)."""
    mo = MONTHS.get(k[:3]) or MONTHS.get(k[:3].lower())
    day = k[4:6].lstrip(" ")
    if (mo is not None and k[3] == " " and k[6] == " " and k[9] == ":" and day and day.isdigit()
            and day.isascii() and k[7:9].isdigit() and k[10:12].isdigit() and k[7:12].isascii()):
        return mo, int(day), int(k[7:9]), int(k[10:12])
    return None


_BSD_MINUTES = YearlessCache(_bsd_minute)


def _fast(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    """``Mmm dd hh:mm:ss HOST TAG: MSG`` without PRI, year or fraction, as
    :func:`parse` would give it; None: let :func:`parse` decide."""
    if len(line) < 16 or line[15] != " " or line[12] != ":":
        return None
    e = _BSD_MINUTES[line[:12]]
    ss = line[13:15]
    if e is None or not (ss.isdigit() and ss.isascii()):
        return None
    year = line[16:20]
    if len(year) == 4 and year.isdigit() and year.isascii() and line[20:21] in ("", " "):
        return None  # "... hh:mm:ss YYYY": the year form
    r = yearless_at(e, int(ss), 0, tz, source_time)
    if r is None:
        return None
    pos = 16
    while line[pos : pos + 1] == " ":
        pos += 1
    out = {"message": "", "event.dataset": "syslog.rfc3164", "event.original": line,
           "logship.timestamp_ns": r}
    return _rest(out, line[pos:], True, None)


def parse(
    line: str, source_time: datetime | None, tz: tzinfo, *, require_pri: bool = False
) -> dict[str, Any] | None:
    """Lenient RFC 3164 parse; None if the line has neither a PRI nor a BSD/ISO stamp."""
    if line[3:4] == " ":
        r = _fast(line, source_time, tz)
        if r is not None:
            return r
    return _general(line, source_time, tz, require_pri)


def _general(line: str, source_time: datetime | None, tz: tzinfo, require_pri: bool) -> dict[str, Any] | None:
    pos = 0
    pri = None
    m = _PRI.match(line)
    if m is not None:
        pri = int(m.group(1))
        pos = m.end()
    elif require_pri:
        return None
    out: dict[str, Any] = {"message": "", "event.dataset": "syslog.rfc3164", "event.original": line}
    if pri is not None:
        if pri < 192:
            out.update(PRI_FIELDS[pri])
        else:
            out["logship.parse_error"] = f"PRI: value {pri} > 191 at offset 1"
    has_ts = False
    tm = _BSD.match(line, pos)
    if tm is not None:
        has_ts = _set_bsd(out, tm, source_time, tz)
    else:
        tm = _ISO.match(line, pos)
        if tm is not None:
            has_ts = set_iso_groups(out, tm.groups(), tz)
    if has_ts and tm is not None:
        pos = tm.end()
    elif pri is None:
        return None
    if not has_ts:
        apply_source_time(out, source_time, tz)
    return _rest(out, line[pos:], has_ts, pri)


def _rest(out: dict[str, Any], rest: str, has_ts: bool, pri: int | None) -> dict[str, Any]:
    """HOSTNAME, TAG[PID]: and MSG after the stamp (or after the PRI)."""
    if rest:
        if has_ts:
            sp = rest.find(" ")
            first = rest if sp < 0 else rest[:sp]
            if not _looks_like_tag(first):  # the HOSTNAME field
                out["log.syslog.hostname"] = out["host.hostname"] = first
                rest = "" if sp < 0 else rest[sp + 1 :].lstrip(" ")
            if rest:
                rest = _tag(out, rest)
        else:
            # No timestamp: only a word that clearly is a TAG is split off.
            sp = rest.find(" ")
            if _looks_like_tag(rest if sp < 0 else rest[:sp]):
                rest = _tag(out, rest)
    out["message"] = rest
    if pri is None and rest:
        lvl = levels.heuristic(rest)
        if lvl is not None:
            out["log.level"] = lvl
    return out
