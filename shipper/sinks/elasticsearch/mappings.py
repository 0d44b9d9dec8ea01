"""Building blocks of the index templates' mappings, shared by the log, dead-letter
and snapshot templates."""

from __future__ import annotations

from typing import Any

KW = {"type": "keyword", "ignore_above": 1024}
LONG = {"type": "long"}
FLAT = {"type": "flattened", "ignore_above": 1024}  # arbitrary keys, one mapping field: no explosion
UNINDEXED = {"type": "keyword", "index": False, "doc_values": False}  # kept in _source only


def obj(**props: Any) -> dict[str, Any]:
    return {"properties": props}
