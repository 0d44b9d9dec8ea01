"""Record: the one shape every source emits and every later stage consumes."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from shipper.containers import Container

# Values of Record.stream
STDOUT, STDERR, FILE, SYSLOG = "stdout", "stderr", "file", "syslog"


@dataclass(slots=True)
class Record:
    message: bytes  # one line (no trailing newline) or one syslog datagram, bytes as written
    time_ns: int  # when it was written: Docker's or the kernel's clock, epoch nanoseconds
    stream: str  # STDOUT | STDERR | FILE | SYSLOG
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
    # Parser and enrichment output: flat ECS keys, set by the parse stage.
    fields: dict[str, Any] = field(default_factory=dict)
    # Called once Elasticsearch holds the record (2xx/409 or dead-lettered): drives checkpoints.
    on_delivered: Callable[["Record"], None] | None = None

    def doc_id(self) -> str:
        """Deterministic `_id`: the same line re-read after a restart maps to the same
        document, so Elasticsearch answers 409 instead of storing a duplicate."""
        key = b"%s\x00%s\x00%s\x00%d\x00%d" % (
            self.container.id.encode(), self.source.encode(), (self.path or self.stream).encode(), self.time_ns, self.seq,
        )
        return base64.urlsafe_b64encode(hashlib.blake2b(key, digest_size=15).digest()).decode()
