"""Fallback for unrecognised lines: the message is kept as-is, the level is
guessed from keywords, and a leading ISO-8601 stamp (common in container
output) is still used as ``@timestamp``."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from .. import levels
from ..timestamps import apply_source_time

_heuristic = levels.heuristic  # bound once: this runs on every line of free text


def parse(
    line: str, source_time: datetime | None, tz: tzinfo, stamped: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"message": line, "event.dataset": "unknown"}
    if stamped is not None and "logship.timestamp_ns" in stamped:
        out["logship.timestamp_ns"] = stamped["logship.timestamp_ns"]
        out["@timestamp"] = stamped.get("@timestamp")
    elif source_time is not None:  # tested here: most lines come without one, and the call costs
        apply_source_time(out, source_time, tz)
    lvl = _heuristic(line)
    if lvl is not None:
        out["log.level"] = lvl
    return out
