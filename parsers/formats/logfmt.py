"""logfmt: ``key=value key2="quoted \\"value\\"" flag``; see :mod:`._structured`
for the key mapping.  Values stay strings (bare keys become ``True``).  A line
is logfmt only if it starts with ``key=`` and has at least as many pairs as
bare words.  Keys beyond the 64th (or starting past :data:`SCAN_LIMIT` characters) are
counted in ``logship.dropped_keys``, not kept."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from . import _structured

_TOKEN = re.compile(r'([^\s="]+)(?:=("[^"\\]*(?:\\.[^"\\]*)*"|\S*))?')
# The same tokens for findall() (tuples made in C, no match objects): `=` captured, so that a
# bare key ("flag": "") and an empty value ("key=": "=") stay apart.
_TOKEN_EQ = re.compile(r'([^\s="]+)(=("[^"\\]*(?:\\.[^"\\]*)*"|\S*))?')
_ESC = re.compile(r"\\(.)", re.DOTALL)
_KEY_EQ = re.compile(r'(?<![^\s])[^\s="]+=')  # a token that is a key=..., for counting only
SCAN_LIMIT = 8192  # characters read as pairs; beyond, tokens are only counted
_ESC_MAP = {"n": "\n", "t": "\t", "r": "\r"}


def _unquote(v: str) -> str:
    v = v[1:-1]
    if "\\" in v:
        v = _ESC.sub(lambda m: _ESC_MAP.get(m.group(1), m.group(1)), v)
    return v


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    if len(line) <= SCAN_LIMIT:  # no token starts past the limit: read them all at once
        tokens = _TOKEN_EQ.findall(line)
        if len(tokens) <= _structured.MAX_KEYS:  # nor can the pairs reach the bound before the last token
            pairs: dict[str, Any] = {}
            bare = 0
            for key, eq, value in tokens:
                if not eq:
                    bare += 1
                    pairs.setdefault(key, True)
                    continue
                if value[:1] == '"' and len(value) > 1:
                    value = _unquote(value)
                pairs[key] = value
            return _fields(line, pairs, bare, 0, source_time, tz)
    return parse_bounded(line, source_time, tz)


def parse_bounded(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    """parse() for any line: token by token, up to the key and scan bounds."""
    pairs: dict[str, Any] = {}
    bare = dropped = 0
    for m in _TOKEN.finditer(line):
        if len(pairs) >= _structured.MAX_KEYS or m.start() > SCAN_LIMIT:
            # The rest is only counted (in C, no per-token Python): a line of a million tokens
            # must not cost a million loop turns.  Its pairs are reported as dropped.
            rest_tokens = len(_TOKEN.findall(line, m.start()))
            rest_pairs = len(_KEY_EQ.findall(line, m.start()))
            bare += rest_tokens - rest_pairs
            dropped += rest_pairs
            break
        key, value = m.groups()
        if value is None:
            if line[m.end() - 1 : m.end()] == "=":  # "key=" with empty value
                value = ""
            else:
                bare += 1
                pairs.setdefault(key, True)
                continue
        elif value[:1] == '"' and len(value) > 1:
            value = _unquote(value)
        pairs[key] = value
    return _fields(line, pairs, bare, dropped, source_time, tz)


def _fields(line: str, pairs: dict[str, Any], bare: int, dropped: int, source_time: datetime | None,
            tz: tzinfo) -> dict[str, Any] | None:
    if not pairs or bare > len(pairs) - bare:
        return None
    out: dict[str, Any] = {"message": line, "event.dataset": "logfmt"}
    return _structured.fill(out, line, pairs, "logfmt", dropped, source_time, tz)
