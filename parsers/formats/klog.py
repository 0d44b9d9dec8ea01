"""Kubernetes klog / glog: ``Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg``.

glog's ``LYYYYmmdd`` variant carries the year; klog's year comes from
``source_time``.  The number after the time is the thread id."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from ..timestamps import build, frac_to_ns, set_yearless

_RX = re.compile(
    r"([IWEF])([0-9]{4})?([0-9]{2})([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))? +"
    r"([0-9]{1,10}) ([^\s:\]]+):([0-9]{1,10})\] ?(.*)",
    re.DOTALL,
)
_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "critical"}


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    m = _RX.match(line)
    if m is None:
        return None
    lv, y, mo, d, hh, mm, ss, frac, tid, file, lineno, msg = m.groups()
    out: dict[str, Any] = {"message": msg, "event.dataset": "klog", "event.original": line, "log.level": _LEVELS[lv]}
    ns = frac_to_ns(frac) if frac else 0
    if y:
        r = build(int(y), int(mo), int(d), int(hh), int(mm), int(ss), ns, tz)
        if r is None:
            return None
        out["logship.timestamp_ns"] = r
    elif not set_yearless(out, int(mo), int(d), int(hh), int(mm), int(ss), ns, tz, source_time):
        return None
    out["process.thread.id"] = int(tid)
    out["log.origin.file.name"] = file
    out["log.origin.file.line"] = int(lineno)
    return out
