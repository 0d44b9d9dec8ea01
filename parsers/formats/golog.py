"""Go standard library ``log``: ``2009/11/10 23:00:00[.micro] [file.go:12: ]msg``
(``log.LstdFlags`` with optional ``Lmicroseconds`` / ``Lshortfile``).
Go's log has no level: it is guessed from keywords."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from .. import levels
from ..numbers import put_int
from ..timestamps import build, frac_to_ns

_RX = re.compile(
    r"([0-9]{4})/([0-9]{2})/([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))? "
    r"(?:([^\s:]+\.go):([0-9]+): )?(.*)",
    re.DOTALL,
)


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    m = _RX.match(line)
    if m is None:
        return None
    y, mo, d, hh, mm, ss, frac, file, lineno, msg = m.groups()
    r = build(int(y), int(mo), int(d), int(hh), int(mm), int(ss), frac_to_ns(frac) if frac else 0, tz)
    if r is None:
        return None
    out: dict[str, Any] = {"message": msg, "event.dataset": "go.log", "event.original": line}
    out["logship.timestamp_ns"] = r
    if file:
        out["log.origin.file.name"] = file
        put_int(out, "log.origin.file.line", lineno)
    lvl = levels.heuristic(msg)
    if lvl is not None:
        out["log.level"] = lvl
    return out
