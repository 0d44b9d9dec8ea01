"""The index template of the snapshot documents (`<prefix>-snapshots-YYYY.MM.DD`).

Events are kept in _source only (not indexed: their args vary by syscall and would
explode the mapping); `text`, the rendered trace, is the full-text searchable form."""

from __future__ import annotations

from typing import Any

from shipper.config import ElasticsearchSettings

SNAPSHOT_PRIORITY = 310  # above the log template, whose `<prefix>-*` pattern also matches

KW = {"type": "keyword", "ignore_above": 1024}
LONG = {"type": "long"}


def _obj(**props: Any) -> dict[str, Any]:
    return {"properties": props}


def snapshot_index(prefix: str, day: str) -> str:
    return f"{prefix}-snapshots-{day}"


def snapshot_mappings() -> dict[str, Any]:
    return {
        "dynamic": False,
        "properties": {
            "@timestamp": {"type": "date_nanos"},
            "message": {"type": "text"},
            "text": {"type": "text"},
            "events": {"type": "object", "enabled": False},
            "container": _obj(id=KW, name=KW, image=_obj(name=KW)),
            "process": _obj(pid=LONG, name=KW, thread=_obj(id=LONG)),
            "log": _obj(file=_obj(path=KW), level=KW),
            "host": _obj(name=KW),
            "logship": _obj(snapshot=_obj(id=KW)),
            "snapshot": _obj(
                trigger=KW, window_before_ms=LONG, window_after_ms=LONG, events_count=LONG,
                ring_overwritten=LONG, events_lost=LONG, notes={"type": "text"},
                start={"type": "date_nanos"}, end={"type": "date_nanos"},
            ),
        },
    }


def snapshot_template(s: ElasticsearchSettings) -> tuple[str, dict[str, Any]]:
    return f"{s.index_prefix}-snapshots", {
        "index_patterns": [f"{s.index_prefix}-snapshots-*"], "priority": SNAPSHOT_PRIORITY,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": s.replicas, "refresh_interval": s.refresh_interval},
            "mappings": snapshot_mappings(),
        },
    }
