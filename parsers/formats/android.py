"""Android logcat ``threadtime``: ``MM-DD hh:mm:ss.mmm  pid  tid L tag: msg``
(year from ``source_time``)."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from .. import levels
from ..numbers import put_int
from ..stamp_cache import YearlessCache, yearless_at
from ..timestamps import frac_to_ns, set_yearless

# Up to the level letter; "tag: message" is split by _tag (a regex "(.*?) *: " there was
# quadratic on runs of blanks).
_RX = re.compile(
    r"([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3,6}) +([0-9]+) +([0-9]+) ([VDIWEFA]) "
)
_AFTER_STAMP = re.compile(r"\.([0-9]{3,6}) +([0-9]+) +([0-9]+) ([VDIWEFA]) ")


def _tag(line: str, pos: int) -> tuple[str, str] | None:
    """``tag: message`` from ``pos``: the tag runs to the first ": " (blanks before it
    trimmed), as the regex ``(.*?) *: (.*)`` had it; None without one."""
    k = line.find(": ", pos)
    if k < 0:
        return None
    return line[pos:k].rstrip(" "), line[k + 2 :]


def _minute(k: str) -> tuple[int, int, int, int] | None:
    # "MM-DD hh:mm"
    if k[2] == "-" and k[5] == " " and k[8] == ":" and k.isascii() and (k[:2] + k[3:5] + k[6:8] + k[9:11]).isdigit():
        return int(k[:2]), int(k[3:5]), int(k[6:8]), int(k[9:11])
    return None


_MINUTES = YearlessCache(_minute)


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    """Cached-minute fast path; any line it is unsure of takes the general one."""
    e = _MINUTES[line[:11]] if len(line) > 14 else None
    ss = line[12:14]
    if e is None or line[11] != ":" or not (ss.isdigit() and ss.isascii()):
        return _parse_general(line, source_time, tz)
    m = _AFTER_STAMP.match(line, 14)
    t = None if m is None else _tag(line, m.end())
    if m is None or t is None:
        return None
    frac, pid, tid, lv = m.groups()
    tag, msg = t
    r = yearless_at(e, int(ss), frac_to_ns(frac), tz, source_time)
    if r is None:
        return None
    out: dict[str, Any] = {"message": msg, "event.dataset": "android.logcat", "event.original": line,
                 "logship.timestamp_ns": r, "log.level": levels.normalize(lv) or "info"}
    put_int(out, "process.pid", pid)
    put_int(out, "process.thread.id", tid)
    if tag:
        out["log.logger"] = tag
    return out


def _parse_general(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    m = _RX.match(line)
    t = None if m is None else _tag(line, m.end())
    if m is None or t is None:
        return None
    mo, d, hh, mm, ss, frac, pid, tid, lv = m.groups()
    tag, msg = t
    out: dict[str, Any] = {"message": msg, "event.dataset": "android.logcat", "event.original": line}
    if not set_yearless(out, int(mo), int(d), int(hh), int(mm), int(ss), frac_to_ns(frac), tz, source_time):
        return None
    out["log.level"] = levels.normalize(lv) or "info"
    put_int(out, "process.pid", pid)
    put_int(out, "process.thread.id", tid)
    if tag:
        out["log.logger"] = tag
    return out
