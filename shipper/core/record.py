"""Record: the one shape every source emits and every later stage consumes."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from shipper.core.container import Container

# Values of Record.stream
STDOUT, STDERR, FILE, SYSLOG = "stdout", "stderr", "file", "syslog"
EVENT = "event"  # a fact the shipper reports about a container's log (e.g. a gap), not a line of it


@dataclass(slots=True)
class Record:
    message: bytes  # one line (no trailing newline) or one syslog datagram, bytes as written
    time_ns: int  # when it was written: Docker's or the kernel's clock, epoch nanoseconds
    stream: str  # STDOUT | STDERR | FILE | SYSLOG | EVENT
    container: Container
    seq: int = 0  # order among records of the same (container, stream, time_ns)
    source: str = "docker"  # "docker" | "ebpf"
    pid: int | None = None
    tid: int | None = None
    comm: str | None = None
    path: str | None = None  # log.file.path of eBPF file records
    truncated: bool = False
    partial_merged: bool = False
    snapshot_id: str | None = None  # the syscall window taken for this line (logship.snapshot.id)
    # eBPF file records whose place in the file is known: the file's identity ("dev:ino:gen");
    # `seq` is then the line's byte offset (log.offset) and the _id is (container, file_id,
    # offset), the same whether the line was captured live or read back from the file.
    file_id: str | None = None
    # Parser and enrichment output: flat ECS keys, set by the parse stage.
    fields: dict[str, Any] = field(default_factory=dict)
    # Called once Elasticsearch holds the record (2xx/409 or dead-lettered): drives checkpoints.
    on_delivered: Callable[["Record"], None] | None = None
    ack_pos: int = -1  # arrival position in its AckWindow (set by AckWindow.track)

    def doc_id(self) -> str:
        """Deterministic `_id`: the same line re-read after a restart maps to the same
        document, so Elasticsearch answers 409 instead of storing a duplicate. The write
        time leads (16 hex digits), then the stream's identity (container, source, stream
        or path; hashed once per stream), then the sequence within that time: ids never
        collide within a stream, and being time-ordered they keep Lucene's id lookups
        local (a new id falls past the terms of older segments, which are skipped by
        their term range). (The sink formats the same id straight into bytes: ID_FORMAT.)"""
        return (ID_FORMAT % (self.id_time(), self.id_prefix(), self.seq)).decode()

    def id_time(self) -> int:
        """The id's time part: 0 for records placed by file offset (their time is not what
        identifies them: a line read back from the file has no write time of its own)."""
        return self.time_ns if self.file_id is None else 0

    def id_prefix(self) -> bytes:
        """The hashed stream identity: 16 URL-safe base64 characters."""
        key = (self.container.id, self.source, self.path or self.stream) if self.file_id is None else (
            self.container.id, self.source, "file:" + self.file_id)
        prefix = _id_prefix.get(key)
        if prefix is None:
            if len(_id_prefix) >= 4096:
                _id_prefix.clear()
            digest = hashlib.blake2b("\x00".join(key).encode(), digest_size=12).digest()
            prefix = _id_prefix[key] = base64.urlsafe_b64encode(digest)
        return prefix


ID_FORMAT = b"%016x%s.%x"  # time_ns, id_prefix, seq
_id_prefix: dict[tuple[str, str, str], bytes] = {}
