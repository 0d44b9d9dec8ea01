"""Python ``logging`` output: the default ``LEVEL:logger:msg`` (basicConfig) and
the common ``%(asctime)s - %(name)s - %(levelname)s - %(message)s``."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from .. import levels
from ..timestamps import ISO_PATTERN, apply_source_time, set_iso_groups

_LEVEL = r"(CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|DEBUG|NOTSET)"
_DEFAULT = re.compile(_LEVEL + r":([^:\s]*):(.*)", re.DOTALL)
_ASCTIME_TAIL = re.compile(r" - (\S+) - " + _LEVEL + r" - (.*)", re.DOTALL)
_ISO = re.compile(ISO_PATTERN)


def _fields(out: dict[str, Any], line: str, logger: str, level: str, msg: str) -> dict[str, Any]:
    out["message"] = msg
    out["event.dataset"] = "python.logging"
    out["event.original"] = line
    levels.set_token(out, level)
    if logger:
        out["log.logger"] = logger
    return out


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    m = _DEFAULT.match(line)
    if m is not None:
        out: dict[str, Any] = {}
        apply_source_time(out, source_time, tz)
        level, logger, msg = m.groups()
        return _fields(out, line, logger, level, msg)
    m = _ISO.match(line)
    if m is None:
        return None
    out = {}
    if not set_iso_groups(out, m.groups(), tz):
        return None
    return parse_after_iso(line, out, m.end())


def parse_after_iso(line: str, out: dict[str, Any], pos: int) -> dict[str, Any] | None:
    """asctime form, the ISO stamp (already in ``out``) ending at ``pos``."""
    m = _ASCTIME_TAIL.match(line, pos)
    if m is None:
        return None
    logger, level, msg = m.groups()
    return _fields(out, line, logger, level, msg)
