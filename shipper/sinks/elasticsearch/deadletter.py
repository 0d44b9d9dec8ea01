"""Dead letters: a document Elasticsearch refused (mapping/parse error) becomes a document
of `<prefix>-deadletter-YYYY.MM.DD` holding the original as an unindexed string, the
error and the time, so it can never conflict again and is never lost.

Built from the bulk item's bytes alone (a spooled item has no Record after a restart).
It keeps the original `_id` and the original index's day, so sending it twice is a 409."""

from __future__ import annotations

import time
from typing import Any

import orjson

from shipper.core.timefmt import iso_ns
from shipper.sinks.elasticsearch.indices import DEADLETTER, day_of, index_for_day


def deadletter_item(item: bytes, error: dict[str, Any], prefix: str) -> bytes:
    action_line, _, source_line = item.partition(b"\n")
    source_line = source_line.rstrip(b"\n")
    meta = next(iter(orjson.loads(action_line).values()))
    index, doc_id = str(meta.get("_index", "")), str(meta.get("_id", ""))
    day = index[len(prefix) + 1:] if index.startswith(prefix + "-") else day_of(time.time_ns())
    doc: dict[str, Any] = {
        "@timestamp": iso_ns(time.time_ns()),
        "error.type": str(error.get("type", "unknown")),
        "error.reason": str(error.get("reason", "")),
        "event.original": source_line.decode("utf-8", "replace"),
        "logship.deadletter.index": index,
        "logship.deadletter.id": doc_id,
    }
    if isinstance(error.get("caused_by"), dict):
        doc["error.caused_by"] = error["caused_by"]
    try:
        original = orjson.loads(source_line)
    except orjson.JSONDecodeError:
        original = {}
    for key in ("message", "container.id", "container.name"):
        if isinstance(original.get(key), str):
            doc[key] = original[key]
    action = {"create": {"_index": index_for_day(prefix, day, DEADLETTER), "_id": doc_id}}
    return orjson.dumps(action) + b"\n" + orjson.dumps(doc) + b"\n"
