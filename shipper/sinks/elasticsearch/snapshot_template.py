"""The index template of the snapshot documents (`<prefix>-snapshots-YYYY.MM.DD`).

Events and `text` (the rendered trace) are kept in _source only, never indexed: their
args vary by syscall and would explode the mapping, and a data excerpt redaction missed
must not be findable by searching for the secret. Snapshots are found by their id, the
container, the trigger or the log line's message."""

from __future__ import annotations

from typing import Any

from shipper.config import ElasticsearchSettings
from shipper.sinks.elasticsearch.indices import SNAPSHOTS, index_for_day, index_pattern
from shipper.sinks.elasticsearch.mappings import KW, LONG, obj

SNAPSHOT_PRIORITY = 310  # above the log template, whose `<prefix>-*` pattern also matches


def snapshot_index(prefix: str, day: str) -> str:
    return index_for_day(prefix, day, SNAPSHOTS)


def snapshot_mappings() -> dict[str, Any]:
    return {
        "dynamic": False,
        "properties": {
            "@timestamp": {"type": "date_nanos"},
            "message": {"type": "text"},
            "text": {"type": "text", "index": False},
            "events": {"type": "object", "enabled": False},
            "container": obj(id=KW, name=KW, image=obj(name=KW)),
            "process": obj(pid=LONG, name=KW, thread=obj(id=LONG)),
            "log": obj(file=obj(path=KW), level=KW),
            "host": obj(name=KW),
            "logship": obj(snapshot=obj(id=KW)),
            "snapshot": obj(
                trigger=KW, window_before_ms=LONG, window_after_ms=LONG, events_count=LONG,
                ring_overwritten=LONG, events_lost=LONG, notes={"type": "text"},
                start={"type": "date_nanos"}, end={"type": "date_nanos"},
            ),
        },
    }


def snapshot_template(s: ElasticsearchSettings) -> tuple[str, dict[str, Any]]:
    return f"{s.index_prefix}-snapshots", {
        "index_patterns": [index_pattern(s.index_prefix, SNAPSHOTS)], "priority": SNAPSHOT_PRIORITY,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": s.replicas,
                         "refresh_interval": s.refresh_interval},
            "mappings": snapshot_mappings(),
        },
    }
