"""Enrichment: a Record (raw bytes + where they came from) becomes the Elasticsearch
document (flat ECS keys), with what the parsers found in the line."""

from __future__ import annotations

import logging
import math
import time
from datetime import tzinfo
from typing import Any, NamedTuple

import orjson

import parsers
from shipper.core.metrics import METRICS
from shipper.core.record import SYSLOG, Record
from shipper.core.timefmt import SECOND_PREFIX_CACHE, iso_ns, second_prefix

log = logging.getLogger("logship.enrich")
_INT64 = (-(1 << 63), (1 << 63) - 1)
REPAIRED = "logship_records_repaired_total"

def decode(data: bytes) -> str:
    # Invalid UTF-8 is kept visible (U+FFFD), never a reason to drop the line.
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def _repair(value: Any, how: set[str]) -> Any:
    """A JSON-safe copy of value: what orjson refuses becomes a string (integers beyond
    64 bits, keys that are not strings, bytes, strings with lone surrogates, other types);
    NaN and infinities become null (as orjson writes them). `how` collects what was done."""
    if isinstance(value, str):
        try:
            value.encode()
            return value
        except UnicodeEncodeError:
            how.add("surrogates")
            return value.encode("utf-8", "replace").decode()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            return value
        how.add("big_int")
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        how.add("not_finite")
        return None
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                how.add("key_type")
            out[_repair(k if isinstance(k, str) else str(k), how)] = _repair(v, how)
        return out
    if isinstance(value, (list, tuple)):
        return [_repair(v, how) for v in value]
    if isinstance(value, (bytes, bytearray)):
        how.add("bytes")
        return decode(bytes(value))
    how.add("type")
    return str(value)


def dumps_fields(fields: dict[str, Any], record: Record | None = None) -> bytes:
    """orjson.dumps(fields); a record whose fields orjson refuses is repaired and flagged
    (`logship.repaired`: what was changed), never a reason to fail its batch. Only a
    record that cannot be made JSON even so (never seen) is reduced to its message,
    flagged `logship.encode_error`."""
    try:
        return orjson.dumps(fields)
    except TypeError as exc:
        how: set[str] = set()
        fixed = _repair(fields, how)
        fixed["logship.repaired"] = sorted(how) or [str(exc)]
        METRICS.count(REPAIRED, reason=",".join(sorted(how)) or "other")
        log.debug("enrich: repaired a record orjson refused (%s): %s", exc, sorted(how))
        try:
            return orjson.dumps(fixed)
        except TypeError as exc2:
            METRICS.count(REPAIRED, reason="reduced")
            message = decode(record.message) if record is not None else ""
            return orjson.dumps({"message": message, "logship.encode_error": str(exc2)})


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
        self._parse_error_logged = -1e9

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
        """The parser's fields for the record (cached on it: triggers read them too). A
        parser that fails on a line (untrusted bytes) costs that line its parsed fields, flagged."""
        if not record.fields and self.parse:
            try:
                fields = parsers.parse(record.message, hint="syslog" if record.stream == SYSLOG else None, tz=self.tz,
                                       want_datetime=False)
            except Exception as exc:  # noqa: BLE001 - any parser bug: this line only, counted and flagged
                METRICS.count("logship_parse_errors_total")
                now = time.monotonic()
                if now - self._parse_error_logged >= 10.0:  # a log line per 10 s, never one per line
                    self._parse_error_logged = now
                    log.warning("enrich: the parser failed on a line (%r); shipped unparsed, flagged "
                                "logship.parse_error (logship_parse_errors_total counts them)", exc)
                fields = {"message": decode(record.message), "logship.parse_error": repr(exc)[:200]}
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
            try:
                body = dumps(fields)
            except TypeError:  # one record's fields orjson refuses: repaired, the others untouched
                body = dumps_fields(fields, r)
            append(b'{"@timestamp":"%s%09dZ",%s,%s}' % (prefix[1], frac, body[1:-1], shared.json))
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
