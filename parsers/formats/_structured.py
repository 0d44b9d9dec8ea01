"""Shared handling of key/value records (JSON lines, logfmt).

Well-known keys become ECS fields (first match wins, case-sensitive):

* message: ``message``, ``msg``, ``log``, ``@message``, ``MESSAGE``, ``short_message``
* level: ``level``, ``lvl``, ``severity``, ``log.level``, ``loglevel``, ``levelname``,
  ``level_name``, ``@level``, ``at`` (names or numbers: syslog 0-7, bunyan/pino 10-60)
* time: ``@timestamp``, ``timestamp``, ``time``, ``ts``, ``t``, ``@t``, ``datetime``,
  ``date``, ``asctime`` (ISO-8601 / RFC 3339, other text via dateutil, or epoch
  s/ms/us/ns guessed from magnitude)
* logger: ``logger``, ``logger_name``, ``log.logger``
* caller: ``caller`` / ``source`` shaped ``file.go:12`` -> ``log.origin.file.*``

Every other key goes to ``<namespace>.<key>`` (``json.*`` / ``logfmt.*``),
nested objects flattened with dots up to :data:`MAX_DEPTH` levels (deeper
values are kept as compact JSON text), at most :data:`MAX_KEYS` keys (the
number dropped is reported in ``logship.dropped_keys``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from typing import Any

from .. import levels
from ..numbers import small_int
from ..timestamps import apply_source_time, from_epoch, parse_fallback, parse_iso

MAX_KEYS = 64
MAX_DEPTH = 3

MESSAGE_KEYS = ("message", "msg", "log", "@message", "MESSAGE", "short_message")
LEVEL_KEYS = ("level", "lvl", "severity", "log.level", "loglevel", "levelname", "level_name", "@level", "at")
TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "t", "@t", "datetime", "date", "asctime")
LOGGER_KEYS = ("logger", "logger_name", "log.logger")
CALLER_KEYS = ("caller", "source")


def flatten(obj: dict[str, Any], prefix: str = "", depth: int = 1,
            into: dict[str, Any] | None = None) -> tuple[dict[str, Any], int]:
    """Flatten nested dicts with dotted keys; returns (flat, dropped_count)."""
    if into is None and not prefix and len(obj) <= MAX_KEYS:
        # The common object, flat already with text keys (as every JSON decoder gives them): a copy.
        for k, v in obj.items():
            if isinstance(v, dict) or type(k) is not str:
                break
        else:
            return dict(obj), 0
    flat: dict[str, Any] = {} if into is None else into
    dropped = 0
    for k, v in obj.items():
        key = prefix + str(k)
        if isinstance(v, dict) and v:
            if depth < MAX_DEPTH:
                _, d = flatten(v, key + ".", depth + 1, flat)
                dropped += d
                continue
            v = json.dumps(v, ensure_ascii=False, default=str)
        if len(flat) >= MAX_KEYS:
            dropped += 1
            continue
        flat[key] = v
    return flat, dropped


def _time(value: object, tz: tzinfo) -> tuple[int, tzinfo] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _epoch(value)
    if isinstance(value, str):
        r = parse_iso(value, tz)
        if r is not None:
            return r
        if len(value) > 64:  # no stamp is this long (and float() of a huge digit run is costly)
            return None
        try:
            return _epoch(float(value))
        except ValueError:
            return parse_fallback(value, tz)
    return None


def _epoch(value: float) -> tuple[int, tzinfo] | None:
    ns = from_epoch(value)
    return None if ns is None else (ns, UTC)


def _level(value: object) -> str | None:
    if isinstance(value, str):
        return levels.normalize(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return levels.normalize_number(value)
    return None


def fill(out: dict[str, Any], line: str, flat: dict[str, Any], namespace: str, dropped: int,
         source_time: datetime | None, tz: tzinfo) -> dict[str, Any]:
    """`out` completed from a structured line's fields: the known keys applied (the line kept as
    `event.original` when its message came from a key), the keys dropped over the bound counted,
    and the source's time when the fields carry none."""
    if apply(out, flat, namespace, tz):
        out["event.original"] = line
    if dropped:
        out["logship.dropped_keys"] = dropped
    if "logship.timestamp_ns" not in out:
        apply_source_time(out, source_time, tz)
    return out


def apply(out: dict[str, Any], flat: dict[str, Any], namespace: str, tz: tzinfo) -> bool:
    """Move known keys of ``flat`` into ``out`` and the rest under ``namespace``.

    Returns True when a message key was found (the line's text was replaced)."""
    found_msg = False
    for k in MESSAGE_KEYS:
        v = flat.get(k)
        if isinstance(v, str):
            out["message"] = v
            del flat[k]
            found_msg = True
            break
    for k in LEVEL_KEYS:
        if k in flat:
            lvl = _level(flat[k])
            if lvl is not None:
                out["log.level"] = lvl
                del flat[k]
                break
    for k in TIME_KEYS:
        if k in flat:
            r = _time(flat[k], tz)
            if r is not None:
                out["logship.timestamp_ns"], out["@timestamp"] = r
                del flat[k]
                break
    for k in LOGGER_KEYS:
        v = flat.get(k)
        if isinstance(v, str):
            out["log.logger"] = v
            del flat[k]
            break
    for k in CALLER_KEYS:
        v = flat.get(k)
        if isinstance(v, str):
            file, sep, line = v.rpartition(":")
            if sep and file and small_int(line) is not None:
                out["log.origin.file.name"] = file
                out["log.origin.file.line"] = int(line)
                del flat[k]
                break
    prefix = namespace + "."
    for k, v in flat.items():
        out[prefix + k] = v
    return found_msg
