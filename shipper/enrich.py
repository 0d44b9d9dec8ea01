"""Enrichment: a Record (raw bytes + where they came from) becomes the Elasticsearch
document (flat ECS keys), with what the parsers found in the line."""

from __future__ import annotations

import time
from datetime import tzinfo
from typing import Any

import parsers
from shipper.record import SYSLOG, Record

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


# Parser keys that are not document fields: the datetime is re-expressed with ns precision.
_PARSER_TIME_KEYS = ("@timestamp", "logship.timestamp_ns")


class Enricher:
    """`@timestamp` is the write time (Docker's or the kernel's clock, ns): exact, zoned and
    monotonic per stream, unlike stamps inside lines (often without zone or year). The
    line's own stamp, when it has one, is kept as `logship.line_timestamp`."""

    def __init__(self, hostname: str, tz: tzinfo | None = None, parse: bool = True) -> None:
        self.hostname = hostname
        self.tz = tz
        self.parse = parse
        self._container_fields: dict[str, dict[str, Any]] = {}

    def container_fields(self, record: Record) -> dict[str, Any]:
        c = record.container
        cached = self._container_fields.get(c.id)
        if cached is None or cached.get("container.name") != c.name:
            cached = self._container_fields[c.id] = c.ecs()
        return cached

    def forget(self, container_id: str) -> None:
        self._container_fields.pop(container_id, None)

    def parsed_fields(self, record: Record) -> dict[str, Any]:
        """The parser's fields for the record (cached on it: triggers read them too)."""
        if not record.fields and self.parse:
            fields = parsers.parse(record.message, hint="syslog" if record.stream == SYSLOG else None, tz=self.tz,
                                   want_datetime=False)
            line_ns = fields.pop("logship.timestamp_ns", None)
            if line_ns is not None:
                fields["logship.line_timestamp"] = iso_ns(line_ns)
            record.fields = fields
        return record.fields

    def document(self, record: Record) -> dict[str, Any]:
        fields = self.parsed_fields(record)
        doc: dict[str, Any] = {"@timestamp": iso_ns(record.time_ns)}
        if fields:
            doc.update(fields)
        else:
            doc["message"] = decode(record.message)
        doc["stream"] = record.stream
        doc["host.name"] = self.hostname
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
        if record.snapshot_id is not None:
            doc["logship.snapshot.id"] = record.snapshot_id
        return doc
