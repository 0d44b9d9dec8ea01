"""What the sink does with each item of a bulk answer: pure decisions, no I/O.

- 2xx, and 409 (a `create` of an `_id` Elasticsearch already holds: a re-sent line), are held;
- 429 and 5xx are retried (alone, with backoff; see sink.py);
- a `cluster_block_exception` (flood-stage read-only block: 429; a write or read-only block:
  403) is BLOCKED: the cluster refuses writes, the document is not at fault; retried like
  429/5xx and never dead-lettered (blocks.py: the sink's blocked state, one log line each way);
- anything else (400 mapping/parse errors, 403, ...) goes to the dead-letter index, unless the
  item is already a dead letter: then it is given up (counted and logged by the sink).

To handle a new kind of answer, extend `verdict`: it sees the status, the item's error object
and whether the item is a dead letter."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import orjson

RETRYABLE = frozenset({429, 500, 502, 503, 504})


BLOCK_ERROR_TYPES = frozenset({"cluster_block_exception"})


class Verdict(enum.Enum):
    HELD = "held"
    RETRY = "retry"
    BLOCKED = "blocked"
    DEAD_LETTER = "dead_letter"
    GIVE_UP = "give_up"


def is_block(error: Mapping[str, Any] | None) -> bool:
    """Is this item (or request) error a block on writes rather than a fault of the document?"""
    return bool(error) and str(error.get("type")) in BLOCK_ERROR_TYPES  # type: ignore[union-attr]


def verdict(status: int, error: dict[str, Any], is_dead_letter: bool) -> Verdict:
    if status < 300 or status == 409:
        return Verdict.HELD
    if is_block(error):
        return Verdict.BLOCKED
    if status in RETRYABLE:
        return Verdict.RETRY
    return Verdict.GIVE_UP if is_dead_letter else Verdict.DEAD_LETTER


def item_results(raw: bytes) -> list[tuple[int, dict[str, Any]]] | None:
    """The (status, error) of each item of a 200 bulk answer, in request order; None when
    none failed. The usual answer is known from its head, `{"took":N,"errors":false,` (an
    item cannot hold that text: ids and index names are quoted JSON strings)."""
    if b'"errors":false' in raw[:80]:
        return None
    resp = orjson.loads(raw)
    if not resp.get("errors"):
        return None
    out: list[tuple[int, dict[str, Any]]] = []
    for entry in resp["items"]:
        res = next(iter(entry.values()))
        out.append((res["status"], res.get("error") or {}))
    return out
