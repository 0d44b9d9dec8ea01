"""Enrichment: a Record (raw bytes + where they came from) becomes the Elasticsearch
document (flat ECS keys), with what the parsers found in the line."""

from __future__ import annotations

import time
from typing import Any

from shipper.record import Record

_day_prefix: dict[int, str] = {}


def iso_ns(time_ns: int) -> str:
    """Epoch ns -> `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (date_nanos keeps all nine digits)."""
    secs, frac = divmod(time_ns, 1_000_000_000)
    day, sod = divmod(secs, 86400)
    prefix = _day_prefix.get(day)
    if prefix is None:
        if len(_day_prefix) > 16:
            _day_prefix.clear()
        prefix = _day_prefix[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
    h, rem = divmod(sod, 3600)
    m, s = divmod(rem, 60)
    return f"{prefix}{h:02d}:{m:02d}:{s:02d}.{frac:09d}Z"


def decode(data: bytes) -> str:
    # Invalid UTF-8 is kept visible (U+FFFD), never a reason to drop the line.
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


class Enricher:
    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self._container_fields: dict[str, dict[str, Any]] = {}

    def container_fields(self, record: Record) -> dict[str, Any]:
        c = record.container
        cached = self._container_fields.get(c.id)
        if cached is None or cached.get("container.name") != c.name:
            cached = self._container_fields[c.id] = c.ecs()
        return cached

    def forget(self, container_id: str) -> None:
        self._container_fields.pop(container_id, None)

    def document(self, record: Record) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "@timestamp": iso_ns(record.time_ns),
            "message": decode(record.message),
            "stream": record.stream,
            "host.name": self.hostname,
        }
        doc.update(self.container_fields(record))
        if record.pid is not None:
            doc["process.pid"] = record.pid
            doc["process.thread.id"] = record.tid
            doc["process.name"] = record.comm
        if record.path is not None:
            doc["log.file.path"] = record.path
        if record.truncated:
            doc["logship.truncated"] = True
        if record.partial_merged:
            doc["logship.partial_merged"] = True
        if record.fields:
            doc.update(record.fields)
        return doc
