"""JSON lines (one object per line); see :mod:`._structured` for the key mapping.

A line that does not decode is recognised but broken: message-only with
``logship.parse_error``.  A line that decodes to an array or a scalar
(``[1, 2]``, ``"text"``, ``42``, ``true``, ``null``) is valid JSON without
keys: kept whole as ``message`` (dataset ``json``, level from keywords)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from .. import levels
from ..timestamps import apply_source_time
from . import _structured

try:  # orjson is optional: ~5x faster decoding
    from orjson import JSONDecodeError as _JSONError
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    from json import JSONDecodeError as _JSONError  # type: ignore[assignment]
    from json import loads as _loads  # type: ignore[assignment]


# First/last characters a JSON array or scalar line can have.
VALUE_FIRST = frozenset('["-0123456789tfn')
VALUE_LAST = frozenset(']"0123456789el')


def parse_value(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    """A whole line that is a JSON array or scalar; None if it does not decode."""
    try:
        obj = _loads(line)
    except (_JSONError, ValueError, TypeError, RecursionError):
        return None
    return None if isinstance(obj, dict) else parse(line, source_time, tz)


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any]:
    out: dict[str, Any] = {"message": line, "event.dataset": "json"}
    try:
        obj = _loads(line)
    except (_JSONError, ValueError, TypeError, RecursionError) as e:
        obj = None
        out["logship.parse_error"] = f"json: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}"
    if not isinstance(obj, dict):
        apply_source_time(out, source_time, tz)
        lvl = levels.heuristic(line)
        if lvl is not None:
            out["log.level"] = lvl
        return out
    flat, dropped = _structured.flatten(obj)
    return _structured.fill(out, line, flat, "json", dropped, source_time, tz)
