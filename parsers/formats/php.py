"""PHP error log: ``[31-Jul-2014 02:46:33 Europe/Paris] PHP Fatal error:  msg``.

The zone name after the time is honoured when it is UTC or a known IANA name
(``zoneinfo``); otherwise ``tz`` is used.  Without a ``PHP <Level>:`` prefix
the level is guessed from keywords."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any

from .. import levels
from ..timestamps import MONTHS, build

_RX = re.compile(
    r"\[([0-9]{2})-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?: ([A-Za-z][\w/+\-]*))?\] "
    r"(?:PHP ([A-Za-z ]+?): +)?(.*)",
    re.DOTALL,
)


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo | None:
    if name in ("UTC", "GMT", "Z"):
        return UTC
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # unknown name / no tzdata: caller falls back to tz
        return None


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    m = _RX.match(line)
    if m is None:
        return None
    d, mon, y, hh, mm, ss, zone, level, msg = m.groups()
    mo = MONTHS.get(mon)
    if mo is None:
        return None
    zone_tz = (_zone(zone) or tz) if zone else tz
    r = build(int(y), mo, int(d), int(hh), int(mm), int(ss), 0, zone_tz)
    if r is None:
        return None
    out: dict[str, Any] = {"message": msg, "event.dataset": "php.error", "event.original": line, "@timestamp": zone_tz}
    out["logship.timestamp_ns"] = r
    lvl = levels.normalize(level) if level else levels.heuristic(msg)
    if lvl is not None:
        out["log.level"] = lvl
    return out
