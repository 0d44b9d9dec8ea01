"""Enrichment: a Record (raw bytes + where they came from) becomes the Elasticsearch
document (flat ECS keys), with what the parsers found in the line."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any, NamedTuple

import orjson

import parsers
from shipper.core.record import SYSLOG, Record
from shipper.core.timefmt import SECOND_PREFIX_CACHE, iso_ns, second_prefix

def decode(data: bytes) -> str:
    # Invalid UTF-8 is kept visible (U+FFFD), never a reason to drop the line.
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


class _Shared(NamedTuple):
    fields: dict[str, Any]
    keys: frozenset[str]
    json: bytes  # the fields as JSON object members, without the braces


_NO_SHARED = _Shared({}, frozenset(), b"")


class Enricher:
    """`@timestamp` is the write time (Docker's or the kernel's clock, ns): exact, zoned and
    monotonic per stream, unlike stamps inside lines (often without zone or year). The
    line's own stamp, when it has one, is kept as `logship.line_timestamp`."""

    def __init__(self, hostname: str, tz: tzinfo | None = None, parse: bool = True) -> None:
        self.hostname = hostname
        self.tz = tz
        self.parse = parse
        # container id -> (its name when cached, stream -> _Shared): a rename re-computes
        self._shared: dict[str, tuple[str, dict[str, _Shared]]] = {}

    def shared(self, record: Record) -> _Shared:
        """The fields every line of the record's stream has in common (stream, host,
        container), computed and serialised once per container and stream, not per line."""
        c = record.container
        per_container = self._shared.get(c.id)
        if per_container is None or per_container[0] != c.name:
            if len(self._shared) >= 4096:  # bounded: containers come and go for as long as we run
                self._shared.clear()
            per_container = self._shared[c.id] = (c.name, {})
        got = per_container[1].get(record.stream)
        if got is None:
            fields = {"stream": record.stream, "host.name": self.hostname, **c.ecs()}
            got = per_container[1][record.stream] = _Shared(fields, frozenset(fields), orjson.dumps(fields)[1:-1])
        return got

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
        doc = self._own_fields(record)
        doc.update(self.shared(record).fields)  # the shared fields win over parsed ones of the same name
        return doc

    def document_json(self, record: Record) -> bytes:
        """orjson.dumps(self.document(record)), the same fields in the same order (documents_json)."""
        return self.documents_json([record])[0]

    def documents_json(self, records: list[Record]) -> list[bytes]:
        """[orjson.dumps(self.document(r)) for r in records], the same fields in the same order,
        cheaper (this runs for every line): the shared fields are spliced in as pre-serialised
        JSON (looked up once per run of one stream), @timestamp is formatted straight into the
        bytes, and the parser's dict is serialised as it is when the line adds nothing to it."""
        out: list[bytes] = []
        append = out.append
        parsed, dumps, prefixes = self.parsed_fields, orjson.dumps, SECOND_PREFIX_CACHE
        container: object = None
        stream = ""
        shared = _NO_SHARED
        for r in records:
            if r.container is not container or r.stream is not stream:
                shared, container, stream = self.shared(r), r.container, r.stream
            fields = r.fields or parsed(r)
            if (not fields or r.pid is not None or r.path is not None or r.truncated or r.partial_merged
                    or r.snapshot_id is not None or "@timestamp" in fields or not shared.keys.isdisjoint(fields)):
                fields = self._line_fields(r)
                for key in shared.keys:  # as in document(): no duplicate keys, the shared value wins
                    fields.pop(key, None)
            secs, frac = divmod(r.time_ns, 1_000_000_000)
            prefix = prefixes.get(secs) or second_prefix(secs)
            append(b'{"@timestamp":"%s%09dZ",%s,%s}' % (prefix[1], frac, dumps(fields)[1:-1], shared.json))
        return out

    def _own_fields(self, record: Record) -> dict[str, Any]:
        """The document's fields that are the line's own (all but the shared ones)."""
        doc: dict[str, Any] = {"@timestamp": iso_ns(record.time_ns)}
        doc.update(self._line_fields(record))
        return doc

    def _line_fields(self, record: Record) -> dict[str, Any]:
        """What the line itself says and where it came from: parsed fields, pid, path, flags."""
        fields = record.fields or self.parsed_fields(record)
        doc: dict[str, Any] = dict(fields) if fields else {"message": decode(record.message)}
        doc.pop("@timestamp", None)
        if record.pid is not None:
            doc["process.pid"] = record.pid
            doc["process.thread.id"] = record.tid
            doc["process.name"] = record.comm
        if record.path is not None:
            doc["log.file.path"] = record.path
            if record.file_id is not None:
                doc["log.offset"] = record.seq
        if record.truncated:
            doc["logship.truncated"] = True
        if record.partial_merged:
            doc["logship.partial_merged"] = True
        if record.snapshot_id is not None:
            doc["logship.snapshot.id"] = record.snapshot_id
        return doc
