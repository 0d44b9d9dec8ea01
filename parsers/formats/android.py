"""Android logcat ``threadtime``: ``MM-DD hh:mm:ss.mmm  pid  tid L tag: msg``
(year from ``source_time``)."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from .. import levels
from ..timestamps import frac_to_ns, set_yearless

_RX = re.compile(
    r"([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3,6}) +([0-9]+) +([0-9]+) ([VDIWEFA]) "
    r"(.*?) *: (.*)",
    re.S,
)


def parse(line: str, source_time: datetime | None, tz: tzinfo, dt: bool = True) -> dict | None:
    m = _RX.match(line)
    if m is None:
        return None
    mo, d, hh, mm, ss, frac, pid, tid, lv, tag, msg = m.groups()
    out: dict = {"message": msg, "event.dataset": "android.logcat", "event.original": line}
    if not set_yearless(out, int(mo), int(d), int(hh), int(mm), int(ss), frac_to_ns(frac), tz, source_time, dt):
        return None
    out["log.level"] = levels.normalize(lv) or "info"
    out["process.pid"] = int(pid)
    out["process.thread.id"] = int(tid)
    if tag:
        out["log.logger"] = tag
    return out
