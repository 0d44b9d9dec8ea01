"""logfmt: ``key=value key2="quoted \\"value\\"" flag``; see :mod:`._structured`
for the key mapping.  Values stay strings (bare keys become ``True``).  A line
is logfmt only if it starts with ``key=`` and has at least as many pairs as
bare words."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from ..timestamps import apply_source_time
from . import _structured

_TOKEN = re.compile(r'([^\s="]+)(?:=("[^"\\]*(?:\\.[^"\\]*)*"|\S*))?')
_ESC = re.compile(r"\\(.)", re.S)
_ESC_MAP = {"n": "\n", "t": "\t", "r": "\r"}


def _unquote(v: str) -> str:
    v = v[1:-1]
    if "\\" in v:
        v = _ESC.sub(lambda m: _ESC_MAP.get(m.group(1), m.group(1)), v)
    return v


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict | None:
    pairs: dict[str, Any] = {}
    bare = dropped = 0
    for m in _TOKEN.finditer(line):
        key, value = m.groups()
        if value is None:
            if line[m.end() - 1 : m.end()] == "=":  # "key=" with empty value
                value = ""
            else:
                bare += 1
                if len(pairs) < _structured.MAX_KEYS or key in pairs:
                    pairs.setdefault(key, True)
                else:
                    dropped += 1
                continue
        elif value[:1] == '"' and len(value) > 1:
            value = _unquote(value)
        if len(pairs) < _structured.MAX_KEYS or key in pairs:
            pairs[key] = value
        else:
            dropped += 1
    if not pairs or bare > len(pairs) - bare:
        return None
    out: dict = {"message": line, "event.dataset": "logfmt"}
    if _structured.apply(out, pairs, "logfmt", tz):
        out["event.original"] = line
    if dropped:
        out["logship.dropped_keys"] = dropped
    if "logship.timestamp_ns" not in out:
        apply_source_time(out, source_time, tz)
    return out
