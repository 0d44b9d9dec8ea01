"""Generic header reader for lines no specific format claims::

    [prefix fields] TIMESTAMP [fields] [LEVEL] [component] message

The stamp may open the line, sit in brackets, or follow a few short fields
(``- 1117838570 2005.06.03 R02-M1 2005-06-03-15.42.50.363779 ...``).  Layouts:
ISO-like ``Y-M-D`` with ``-``/``/``/``.`` date and ``T``/space/``_``/``-``
separators, ``:`` or ``.`` in the time, ``,``/``.``/``:`` fractions, an offset;
compact ``YYYYMMDD-HH:MM:SS[:mmm]``; ``YY/MM/DD``; ``MM/DD/YYYY``; year-less
``MM.DD``/``MM-DD``/``MM/DD HH:MM:SS``; ``DD Mon YYYY``; syslog/ctime
``[Www] Mon DD [YYYY] HH:MM:SS [YYYY]``; a time of day alone at the start; epoch
seconds or milliseconds as a whole field (a civil stamp in the same header wins,
the epoch then only picks the year of a year-less one).

After the stamp, the first few fields are read for an explicit level token
(``INFO``, ``Info``, ``[warn]``, ``E:``; it always wins over message keywords),
then an optional component/logger (``name:``, ``a.b.C -``, ``a.b.C [...]``,
``CBS`` followed by column padding, ``tag[pid]:``); the rest is the message.

Bounded: every regex is anchored with bounded repeats, and only the first
:data:`HEAD` characters are looked at, so the cost per line does not grow with
its length.  Free text is turned down by one anchored regex match over its first
fields (see :data:`_CANDIDATE`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from .. import levels
from ..timestamps import (
    MONTHS,
    NS,
    ZONE,
    build,
    build_yearless,
    frac_to_ns,
    from_datetime,
    offset_tz,
    reference_epoch,
)

HEAD = 320  # the header must lie within this many characters
_MAX_HITS = 6  # candidate fields tried per line
_MAX_PREFIX = 6  # fields allowed before the stamp
_DATASET = "generic"

# Where a stamp may start: after at most 6 fields (fewest first), a field (or "[") opening
# like a date, a compact date, an epoch, "DD Mon" or a month/weekday name.  One C-level
# match walks the head: free text without such a field is turned down at that cost.
_NAMES = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun"
_NAME_SET = frozenset(_NAMES.split("|"))
_CANDIDATE = re.compile(
    r"[ \t]*+(?:[^ \t]{1,80}+[ \t]{1,8}+){0,6}?\[?"
    r"(?=[0-9]{1,4}[-/.:]|[0-9]{8}[-T_ ]|1[0-9]{9}(?:[0-9]{3})?(?:[\s|\],;)]|$)"
    # "07 Nov 2019", "Nov  7 ..." / "Thu Nov 7 ..." / "Thu, 07 Nov": the shape here, the name in find_stamp
    r"|[0-9]{1,2}[ /-][A-Za-z]{3}[ /-][0-9]{4}|[A-Za-z]{3}[.,]? {1,2}(?:[0-9]|[A-Za-z]{3} {1,2}[0-9]))"
)
_DIGITS = re.compile(r"[0-9]*")
_YMD_SEPS = frozenset("-/.")
_COMPACT_SEPS = frozenset("-T_ ")
_FRAC = r"([.,:][0-9]{1,9})?"  # with its separator: ":5" is 5 ms, ".5" half a second
_YMD = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})(?:[T_ -]|, ?)([0-9]{1,2})([:.])([0-9]{1,2})\6"
                  r"([0-9]{1,2})" + _FRAC)
# YYYYMMDD then hh:mm:ss (one-digit fields too, as some loggers print them) or hhmmss.
_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})[-T_ ](?:([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})|([0-9]{2})"
                      r"([0-9]{2})([0-9]{2}))" + _FRAC + "(?![0-9])")
_YY = re.compile(r"([0-9]{2})([-/])([0-9]{2})\2([0-9]{2})[ T_-]([0-9]{2}):([0-9]{2}):([0-9]{2})" + _FRAC)
_MDY = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})[ ,:]{1,2}([0-9]{1,2}):([0-9]{2}):([0-9]{2})" + _FRAC
                  + r"(?: ?([AaPp][Mm])(?![A-Za-z]))?")
_MD = re.compile(r"([0-9]{1,2})([-./])([0-9]{1,2}) {1,2}([0-9]{1,2}):([0-9]{2}):([0-9]{2})" + _FRAC)
_DMONY = re.compile(r"(?:[A-Za-z]{3},? {1,2})?([0-9]{1,2})[ /-]([A-Za-z]{3})[ /-]([0-9]{4})[ :T]([0-9]{2}):([0-9]{2})"
                    r":([0-9]{2})" + _FRAC)
_MON = re.compile(r"(?:[A-Za-z]{3},? {1,2})?([A-Za-z]{3})\.? {1,2}([0-9]{1,2}),? {1,2}(?:([0-9]{4}) {1,2})?"
                  r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})" + _FRAC + r"(?: ([0-9]{4})(?![0-9:]))?")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})" + _FRAC + "(?![0-9:])")
_EPOCH = re.compile(r"(1[0-9]{9}|1[0-9]{12})(?:\.([0-9]{1,9}))?(?=[\s|\],;)]|$)")
# Every stamp _stamp_at and time_only read holds a digit then ":" or "." then a digit (a time of
# day), or six digits in a row (a compact date, an epoch): a head without one has no stamp, and
# this one C-level scan turns down most free text before any anchored pattern runs.
_STAMPISH = re.compile(r"[0-9](?:[:.][0-9]|[0-9]{5})")


def _stampish_py(line: str, end: int) -> bool:
    """False when ``line[:end]`` cannot hold a stamp (the reference of the C version)."""
    return _STAMPISH.search(line, 0, end) is not None


try:  # the C version (parsers/_keywords.c) makes the check nearly free; without a compiler, the regex
    from parsers import _keywords
except ImportError:  # pragma: no cover - built on every supported install; the fallback still works
    stampish: Callable[[str, int], bool] = _stampish_py
else:
    stampish = _keywords.stampish
_OFFSET = re.compile(r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?| [+-][0-9]{2}:?[0-9]{2}| (?:UTC|GMT))(?![0-9A-Za-z:])")
# One header field: a bracketed group (may hold spaces) or a run of non-blanks.
_FIELD = re.compile(r"[\[(<][^\]\)>\n]{0,200}[\])>]:?|[^\s|]{1,80}")
_FIELD_SEPS = " \t,;|"
# "[wrn]", "err:": abbreviations in any case once brackets or a colon mark them as a field.
_ANY_CASE = {k.lower(): v for k, v in levels.HEADER.items()}
_WORDY = re.compile(r"[A-Za-z]+")  # letters only: a word of prose, not a header field
_JAVA_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*){2,}")  # org.apache.Cls.method

# (civil fields, end, epoch?) of a stamp found in a line.
Stamp = tuple[tuple[int | None, int, int, int, int, int, int], int, bool]


def _ns(frac: str | None) -> int:
    if not frac:
        return 0
    if frac[0] == ":" and len(frac) <= 4:  # "hh:mm:ss:mmm" counts milliseconds, padded or not
        return int(frac[1:]) * 1_000_000
    return frac_to_ns(frac[1:])


def _hour12(h: int, ampm: str | None) -> int:
    if ampm is None:
        return h
    return h % 12 + (12 if ampm in ("PM", "pm", "Pm", "pM") else 0)


def _stamp_at(line: str, p: int) -> Stamp | None:
    """A stamp starting exactly at ``p``: ((year|None, month, day, h, m, s, ns), end, is_epoch)."""
    c = line[p]
    if "0" <= c <= "9":
        # Each pattern opens with a digit run of given lengths and the character after it:
        # the run decides which ones can match at all ("17:59:40" none), in their order.
        k = _DIGITS.match(line, p).end() - p  # type: ignore[union-attr]  # [0-9]* always matches
        sep = line[p + k : p + k + 1]
        m = _YMD.match(line, p) if k == 4 and sep in _YMD_SEPS else None
        if m is not None:
            y, _, mo, d, h, _, mi, s, f = m.groups()
            return (int(y), int(mo), int(d), int(h), int(mi), int(s), _ns(f)), m.end(), False
        m = _COMPACT.match(line, p) if k == 8 and sep in _COMPACT_SEPS else None
        if m is not None:
            y, mo, d, h1, mi1, s1, h2, mi2, s2, f = m.groups()
            h, mi, s = (h1, mi1, s1) if h1 is not None else (h2, mi2, s2)
            return (int(y), int(mo), int(d), int(h), int(mi), int(s), _ns(f)), m.end(), False
        if k > 2:
            m = _EPOCH.match(line, p) if (k == 10 or k == 13) and c == "1" else None
            if m is None:
                return None
            digits, f = m.groups()
            ns = int(digits) * (1_000_000_000 if len(digits) == 10 else 1_000_000)
            frac_ns = frac_to_ns(f) if f else 0
            return (None, 0, 0, 0, 0, 0, ns + frac_ns // (1 if len(digits) == 10 else 1000)), m.end(), True
        if not sep or sep not in " /-.":  # what _DMONY, _MDY, _YY and _MD need after their 1-2 digits
            return None
        m = _DMONY.match(line, p)
        if m is not None:
            d, mon, y, h, mi, s, f = m.groups()
            mo = MONTHS.get(mon) or MONTHS.get(mon.lower())
            return None if mo is None else ((int(y), mo, int(d), int(h), int(mi), int(s), _ns(f)), m.end(), False)
        m = _MDY.match(line, p)
        if m is not None:
            mo, d, y, h, mi, s, f, ampm = m.groups()
            a, b = int(mo), int(d)
            if a > 12:  # D/M/Y
                a, b = b, a
            return (int(y), a, b, _hour12(int(h), ampm), int(mi), int(s), _ns(f)), m.end(), False
        m = _YY.match(line, p)
        if m is not None:
            y, _, mo, d, h, mi, s, f = m.groups()
            return (2000 + int(y), int(mo), int(d), int(h), int(mi), int(s), _ns(f)), m.end(), False
        m = _MD.match(line, p)
        if m is not None:
            mo, _, d, h, mi, s, f = m.groups()
            return (None, int(mo), int(d), int(h), int(mi), int(s), _ns(f)), m.end(), False
        return None
    if c.isascii() and c.isalpha():
        m = _MON.match(line, p)
        if m is not None:
            mon, d, y1, h, mi, s, f, y2 = m.groups()
            mo = MONTHS.get(mon) or MONTHS.get(mon.lower())
            if mo is None:
                return None
            y = y1 or y2
            return (int(y) if y else None, mo, int(d), int(h), int(mi), int(s), _ns(f)), m.end(), False
        m = _DMONY.match(line, p)
        if m is not None:
            d, mon, y, h, mi, s, f = m.groups()
            mo = MONTHS.get(mon) or MONTHS.get(mon.lower())
            return None if mo is None else ((int(y), mo, int(d), int(h), int(mi), int(s), _ns(f)), m.end(), False)
    return None


def _prefix_ok(prefix: str) -> bool:
    """Fields before a stamp must look like fields (ids, numbers, hosts, a level),
    not prose: "Backup done 2024-01-01 12:00:00" is a message with a date in it."""
    fields = prefix.replace("[", " ").replace("]", " ").replace("|", " ").split()
    if len(fields) > _MAX_PREFIX:
        return False
    prose = [f for f in fields if _WORDY.fullmatch(f) is not None and not f.isupper() and f not in levels.HEADER]
    # A record of fields may hold a word or two (a state, an action), but it starts with an id.
    return not prose or (len(prose) <= 3 and fields[0] not in prose)


def find_stamp(head: str) -> tuple[Stamp, int] | None:
    """The header stamp and where it starts; a civil stamp is preferred to an epoch field."""
    epoch: tuple[Stamp, int] | None = None
    pos = 0
    for _ in range(_MAX_HITS):
        c = _CANDIDATE.match(head, pos)
        if c is None:
            break
        p = c.end()
        ch = head[p]
        st = None if "A" <= ch <= "z" and head[p : p + 3].lower() not in _NAME_SET else _stamp_at(head, p)
        if st is not None and _prefix_ok(head[:p]):
            if not st[2]:
                return st, p
            if epoch is None:
                epoch = st, p
        pos = head.find(" ", p)
        if pos < 0:
            break
    return epoch


def prose_start(line: str) -> bool:
    """A line opening with a word of prose (or indented, as a stack frame) has no header
    stamp: the first field may only be a stamp, an id or a level (see _prefix_ok).  The
    common free-text line is turned down here, by a few C-level string tests."""
    c = line[:1]
    if not c.isalpha():
        return c == " " or c == "\t"
    sp = line.find(" ", 0, 48)
    first = line[:sp] if sp > 0 else line[:48]
    return (first.isalpha() and not first.isupper() and first[:3].lower() not in _NAME_SET
            and first not in levels.HEADER)


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    """A line with a header stamp; None when there is none (the caller keeps it as free text)."""
    if not stampish(line, HEAD):
        return None
    head = line[:HEAD]
    found = find_stamp(head)
    if found is None:
        return None
    (fields, end, is_epoch), start = found
    ref = source_time
    if not is_epoch and fields[0] is None:
        ep = _epoch_before(head, start)  # the record's own epoch field beats source_time for the year
        if ep is not None:
            ref = ep
    zone: tzinfo = UTC
    if not is_epoch:
        stamp_zone, end = _zone(head, end, tz)
        if stamp_zone is None:
            return None
        zone = stamp_zone
    ns = _instant(fields, is_epoch, zone, ref)
    if ns is None:
        return None
    out: dict[str, Any] = {NS: ns, ZONE: zone}
    if start > 0:
        _prefix_level(out, head[:start])
    bracketed = start > 0 and head[start - 1] == "["
    return after_stamp(line, out, end, bracketed, is_epoch or start > 0)


def _epoch_before(head: str, start: int) -> datetime | None:
    for m in _EPOCH.finditer(head, 0, start):
        ns = int(m.group(1)) * (1_000_000_000 if len(m.group(1)) == 10 else 1_000_000)
        return datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return None


def _zone(head: str, end: int, tz: tzinfo) -> tuple[tzinfo | None, int]:
    m = _OFFSET.match(head, end)
    if m is None:
        return tz, end
    text = m.group(1).strip()
    if text in ("UTC", "GMT"):
        return UTC, m.end()
    return offset_tz(text, tz), m.end()


def _instant(fields: tuple[int | None, int, int, int, int, int, int], is_epoch: bool, tz: tzinfo,
             ref: datetime | None) -> int | None:
    y, mo, d, h, mi, s, ns = fields
    if is_epoch:
        return ns
    if y is not None:
        return build(y, mo, d, h, mi, s, ns, tz)
    if mo == 0:
        return None
    return build_yearless(mo, d, h, mi, s, ns, tz, reference_epoch(ref))


def _prefix_level(out: dict[str, Any], prefix: str) -> None:
    for f in prefix.replace("[", " ").replace("]", " ").split():
        lvl = levels.HEADER.get(f.rstrip(":"))
        if lvl is not None and len(f) > 1:
            out["log.level"] = lvl
            return


def time_only(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    """``HH:MM:SS[.mmm] ...`` (logback's default console pattern): the date is that of
    ``source_time`` (or today), the day before when that would put the stamp ahead of it."""
    p = 1 if line[:1] == "[" else 0
    m = _TIME.match(line, p)
    if m is None:
        return None
    h, mi, s, f = m.groups()
    ref = source_time if source_time is not None else datetime.now(UTC)
    if ref.tzinfo is None:
        ref = ref.replace(tzinfo=UTC)
    local = ref.astimezone(tz)
    ns = build(local.year, local.month, local.day, int(h), int(mi), int(s), _ns(f), tz)
    if ns is None:
        return None
    if ns > from_datetime(ref) + 3_600_000_000_000:
        ns -= 86_400_000_000_000
    return after_stamp(line, {NS: ns}, m.end(), p == 1, False)


def after_stamp(line: str, out: dict[str, Any], pos: int, bracketed: bool = False,
                fielded: bool = False) -> dict[str, Any]:
    """Fill level, logger and message from the text after a stamp ending at ``pos``.
    ``bracketed``: the stamp sat in ``[...]`` (skip to the ``]``); ``fielded``: the line is
    a record of fields (stamp after a prefix, or an epoch), so small numbers after it are
    fields too."""
    n = min(len(line), HEAD)
    i = pos
    if bracketed:
        close = line.find("]", i, min(n, i + 40))
        if close >= 0:
            i = close + 1
    if line[i : i + 1] == "|" or line[i : i + 2] == " |":
        return _piped(line, out, i)
    msg_at, level, logger = _header_fields(line, i, n, fielded)
    if level is not None:
        out["log.level"] = level
    if logger:
        out["log.logger"] = logger
    msg = line[msg_at:]
    if msg[-1:] == ")" and not logger:  # log4j's "%m (%c)": a trailing (a.b.Class) is the logger
        k = msg.rfind(" (", max(0, len(msg) - 200))
        if k > 0 and _JAVA_NAME.fullmatch(msg, k + 2, len(msg) - 1) is not None:
            out["log.logger"] = msg[k + 2 : -1]
            msg = msg[:k]
    return _finish(out, line, msg)


def _finish(out: dict[str, Any], line: str, msg: str) -> dict[str, Any]:
    """The message fields; without a level token, the keyword heuristic on the message."""
    out["message"] = msg
    out["event.dataset"] = _DATASET
    out["event.original"] = line
    if "log.level" not in out:
        lvl = levels.heuristic(msg)
        if lvl is not None:
            out["log.level"] = lvl
    return out


def _skip(line: str, i: int, n: int) -> int:
    while i < n and line[i] in _FIELD_SEPS:
        i += 1
    return i


def _dash_sep(line: str, i: int, n: int) -> int:
    """After a header field: skip separators such as `` - ``, `` -- : `` (Ruby's Logger)
    or `` : ``; returns where the next field starts."""
    j = _skip(line, i, n)
    for _ in range(2):
        k = j
        while k < n and k < j + 3 and line[k] in "-:":
            k += 1
        if k == j or not (k == len(line) or line[k] in " \t"):
            break
        j = _skip(line, k, n)
    return j


def _header_fields(line: str, i: int, n: int, fielded: bool) -> tuple[int, str | None, str | None]:
    """(message start, level, logger) for the fields after the stamp."""
    i = start = lead = _dash_sep(line, i, n)
    plain = 0  # fields so far that are neither numbers nor brackets
    for k in range(6):
        m = _FIELD.match(line, i, n)
        if m is None:
            break
        tok, e = m.group(), m.end()
        core = tok.strip("[]()<>:,")
        bracket = tok[0] in "[(<"
        decorated = bracket or tok[-1] == ":" or line.startswith((" - ", "  ", "\t"), e)
        lvl = None
        if line[e:].strip():  # a level with nothing after it is the message
            lvl = levels.HEADER.get(core) or (_ANY_CASE.get(core.lower()) if decorated and len(core) > 1 else None)
        if lvl is None and "." in core and tok[-1] == ":":  # Monolog's channel.LEVEL:
            channel, _, word = core.rpartition(".")
            lvl = levels.HEADER.get(word) if word.isupper() and len(word) > 1 else None
            if lvl is not None:
                return _skip(line, e, n), lvl, channel
        if lvl is not None and (
                (plain == 0 and (decorated or fielded or line.startswith((" [", " ("), e))) if len(core) == 1
                else plain == 0 or decorated or core.isupper()):
            if plain:  # the component came before the level (BGL's "RAS KERNEL INFO"): the message follows
                return _dash_sep(line, e, n), lvl, None
            msg_at, logger = _component(line, _dash_sep(line, e, n), n)
            return msg_at, lvl, logger
        number = core.isdigit() or (fielded and core[:1] == "-" and core[1:].isdigit())
        if bracket or (number and len(core) <= 10 and (fielded or k == 0)):
            i = _skip(line, e, n)
            if plain == 0 and (bracket or fielded):
                lead = i  # a [thread] group, or a number field of a record: header even without a level
            continue
        # Without a level, "word:" opens the message ("ClusterFileSystem: no server") unless it is a
        # syslog-style tag: "tag[pid]:", or "tag:" after a host field.
        colon = (tok[-1] == ":" and len(tok) > 1 and (e == len(line) or line[e] in " \t")
                 and ("[" in tok or plain > 0))
        if (colon or line.startswith(" - ", e)) and (plain == 0 or (k < 3 and not _prose(line, start, m.start()))):
            if colon:
                return _skip(line, e, n), None, tok[:-1]
            return _dash_sep(line, e, n), None, line[lead:e]  # name - message
        if _WORDY.fullmatch(tok) is not None and not tok.isupper():
            break  # a word of prose: the message has begun
        plain += 1
        i = _skip(line, e, n)
        if plain > 4:
            break
    return lead, None, None


def _prose(line: str, a: int, b: int) -> bool:
    return any(_WORDY.fullmatch(w) is not None and not w.isupper() for w in line[a:b].split())


def _component(line: str, i: int, n: int) -> tuple[int, str | None]:
    """An optional component/logger after the level: ``name:``, ``a.b.C -``, ``a.b.C [ctx]``,
    ``[thread]``, or a name followed by column padding; (message start, logger)."""
    logger: str | None = None
    skipped = False  # one [group] before the logger (a thread) and one after it (a context)
    for _ in range(3):
        m = _FIELD.match(line, i, n)
        if m is None:
            break
        tok, e = m.group(), m.end()
        if tok[0] in "[(<":
            if e >= len(line) or skipped:
                break
            skipped = True
            i = _dash_sep(line, e, n)
            continue
        if logger is not None or '"' in tok or "'" in tok:
            break
        nxt = line[e : e + 3]
        if tok[-1] == ":" and len(tok) > 1 and (nxt[:1] in (" ", "\t") or e == len(line)):
            return _skip(line, e, n), tok[:-1]
        if nxt == " - " or nxt == " : " or nxt[:2] == "  " or nxt == "\t":
            logger, skipped = tok, False
            i = _dash_sep(line, e, n)
            continue
        if (nxt[:2] == " [" and ("." in tok or "$" in tok)) or _JAVA_NAME.fullmatch(tok) is not None:
            logger, skipped = tok, False
            i = _skip(line, e, n)
            continue
        break
    return i, logger


def _piped(line: str, out: dict[str, Any], i: int) -> dict[str, Any]:
    """``stamp|field|field|message``: up to two short blank-free fields (a component, a
    pid or thread) and a level are header; the message is the rest, pipes and all."""
    parts = line[i + (1 if line[i] == "|" else 2) :].split("|", 3)
    k = fields = 0
    while k < len(parts) - 1 and len(parts[k].strip()) <= 40 and " " not in parts[k].strip():
        f = parts[k].strip()
        lvl = levels.HEADER.get(f)
        if lvl is not None and len(f) > 1 and "log.level" not in out:
            out["log.level"] = lvl
        elif fields == 2:
            break
        else:
            fields += 1
            if f and "log.logger" not in out and not f.isdigit():
                out["log.logger"] = f
        k += 1
    msg = "|".join(parts[k:]).strip(" ")
    return _finish(out, line, msg)
