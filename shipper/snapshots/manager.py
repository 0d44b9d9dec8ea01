"""Syscall windows, end to end: a log line of a container in scope matches a trigger ->
the writing thread's ring (the "before" half) is read and the thread is armed to stream
its syscalls (the "after" half) -> one snapshot document, decoded and redacted, to
Elasticsearch.

The rings are their own BPF object (ring.RingProgram), loaded at start and attached
only while some container is in scope (scope.SnapshotScope); the processes of those
containers are written to its scope map from their cgroup.procs every SYNC_S (the
kernel adds their children as they fork).

`consider(record)` runs on the pipeline's path for every record: synchronous, and a set
lookup when the container is not in scope. Everything slow happens in `run()`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from shipper.config import Config
from shipper.core.timefmt import iso_ns
from shipper.core.metrics import METRICS
from shipper.snapshots.decode import FdNames, decode_events
from shipper.snapshots.redact import Redactor
from shipper.snapshots.render import render
from shipper.snapshots.ring import RingGeometry, RingMaps, RingProgram, RingRead, Syscall
from shipper.snapshots.scope import SnapshotScope
from shipper.snapshots.store import FAILED, SnapshotStore
from shipper.transforms.triggers import RateLimiter, Triggers
from shipper.core.aio import wait_event

log = logging.getLogger("logship.snapshots")

TAKEN, RATE_LIMITED = "logship_snapshots_taken_total", "logship_snapshots_rate_limited_total"
OVERWRITTEN, LOST = "logship_snapshot_ring_overwritten_total", "logship_snapshot_events_lost_total"
METRICS.describe(TAKEN, "Snapshots (syscall windows) taken for log lines that matched a trigger.")
METRICS.describe(RATE_LIMITED, "Log lines that matched a snapshot trigger past the per-container rate limit.")
METRICS.describe(OVERWRITTEN,
                 "Syscalls of a snapshot's thread its ring had already overwritten (shown in the snapshot).")
METRICS.describe(LOST,
                 "Streamed syscalls of armed threads lost because the ring buffer was full (shown in the snapshot).")

MECHANISM = "logship_snapshot_rings_mechanism"
METRICS.describe(MECHANISM, "1 for the mechanism the syscall rings use (fentry, or tracepoint when fentry is "
                            "refused: see fallback).")
GRACE_NS = 150_000_000  # after the window closes: the last exits reach the stream
CACHE = 256  # finished snapshots kept in memory for /snapshots/ID before ES has them
SYNC_S = 1.0  # the scope map is rewritten from the containers' cgroup.procs this often


@dataclass(slots=True)
class Pending:
    sid: str
    record: Any
    trigger: str
    write_ns: int
    start_ns: int
    until_ns: int
    before: RingRead
    streamed: list[Syscall] = field(default_factory=list)


class SnapshotManager:
    def __init__(self, config: Config, fd_lookup: Callable[[int, int], str | None] | None = None) -> None:
        s = self.settings = config.snapshot
        self.geometry = RingGeometry.from_settings(s)
        self.scope = SnapshotScope(s, lambda: self.triggers.armed)
        self.triggers = Triggers(s, self.scope.__contains__)
        self.triggers.on_change = self.scope.refresh
        self.scope.on_change = self._scope_changed
        self.program: RingProgram | None = None
        self.processes_in_scope = 0
        self.limiter = RateLimiter(s.rate_per_minute)
        self.redactor = Redactor(s.redact_patterns) if s.redact else None
        self.store = SnapshotStore(config.elasticsearch)
        self.hostname = config.pipeline.hostname
        self.fd_lookup = fd_lookup
        self.maps: RingMaps | None = None
        self.pending: dict[str, Pending] = {}
        self._by_tid: dict[int, list[Pending]] = defaultdict(list)
        self.done: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._rescope = False

    # ---- set-up ---------------------------------------------------------------------
    def attach(self, program: RingProgram, fd_lookup: Callable[[int, int], str | None] | None = None) -> None:
        """Open the ring maps of a loaded RingProgram; from then on triggers fire (for
        containers in scope: the programs attach when the first one enters it)."""
        self.program = program
        self.maps = RingMaps(program.bpf, self.geometry)
        self.maps.open_stream(self._on_streamed)
        if fd_lookup is not None:
            self.fd_lookup = fd_lookup
        g = self.geometry
        METRICS.set(MECHANISM, 1, mechanism=program.mechanism, fallback=program.fallback.split(" (")[0])
        METRICS.gauge("logship_snapshot_containers_in_scope", lambda: len(self.scope),
                      "Containers whose processes keep syscall rings (opt-in: label, LOGSHIP_SNAPSHOT_CONTAINERS, "
                      "armed rules).")
        METRICS.gauge("logship_snapshot_processes_in_scope", lambda: self.processes_in_scope,
                      "Processes of the containers in scope, as last read from their cgroup.procs.")
        METRICS.gauge("logship_snapshot_rings_attached", lambda: int(program.attached),
                      "1 while the ring programs are attached (some container in scope), 0 when they cost nothing.")
        log.info("syscall rings: %s%s; %d entries x %d bytes x %d threads + scope map = %.1f MiB of kernel memory; "
                 "%d syscalls kept; attached while a container is in scope", program.mechanism,
                 f" ({program.fallback})" if program.fallback else "", g.entries, g.entry_bytes, g.threads,
                 g.memory_bytes / (1 << 20), len(program.syscalls))
        self.sync_scope()

    def _scope_changed(self) -> None:
        self._rescope = True
        self._wake.set()

    def sync_scope(self) -> None:
        """Attach the programs when some container is in scope, detach them when none is;
        write the processes in scope to the kernel's map."""
        from shipper.sources.ebpf.source import container_pids

        self._rescope = False
        p = self.program
        if p is None:
            return
        if not len(self.scope):
            if p.attached:
                p.detach()
                p.clear_scope()
                self.processes_in_scope = 0
                log.info("syscall rings detached: no container in snapshot scope")
            return
        if not p.attached:
            p.attach()  # first, so forks from now on are followed; then what exists
            log.info("syscall rings attached: in scope %s", ", ".join(
                f"{self.scope.known[c].name} ({why})" for c, why in self.scope.why.items() if c in self.scope.known))
        pids = self.scope.pids_in_scope(container_pids)
        p.set_scope(pids)
        self.processes_in_scope = len(pids)

    # ---- the pipeline's path ----------------------------------------------------------
    def consider(self, record: Any) -> str | None:
        """Take a snapshot if the record triggers one; returns its id (also set as
        record.snapshot_id, which becomes logship.snapshot.id) or None. Needs the
        record's parsed fields (log.level) in record.fields."""
        if self.maps is None or record.tid is None or record.container.id not in self.scope:
            return None
        trigger = self.triggers.match(record)
        if trigger is None:
            return None
        if not self.limiter.allow(record.container.id):
            METRICS.count(RATE_LIMITED)
            return None
        sid = record.doc_id()
        if sid in self.pending or sid in self.done:
            return sid  # the same line again (a replay): one snapshot
        s = self.settings
        until = record.time_ns + s.window_after_ms * 1_000_000
        self.maps.arm(record.tid, until)  # arm first: nothing falls between the read and the stream
        before = self.maps.read(record.tid)
        p = Pending(sid, record, trigger, record.time_ns, record.time_ns - s.window_before_ms * 1_000_000, until,
                    before)
        self.pending[sid] = p
        self._by_tid[record.tid].append(p)
        record.snapshot_id = sid
        METRICS.count(TAKEN)
        self._wake.set()
        return sid

    def _on_streamed(self, sc: Syscall) -> None:
        for p in self._by_tid.get(sc.tid, ()):
            if sc.ts_ns <= p.until_ns:
                p.streamed.append(sc)

    # ---- the background task ----------------------------------------------------------
    async def run(self, source: Any = None, registry: Any = None) -> None:
        """Loads the ring program, follows the registry's containers into and out of scope,
        stores finished snapshots. `source` (the eBPF source) names fds (its `.table`)."""
        try:
            if self.store.settings.setup:  # off when `logship setup` put it: the writer key may not
                await self.store.put_template()
        except Exception as exc:  # noqa: BLE001 - ES may come later; the sink's setup also puts it
            log.warning("snapshot index template not put yet: %r", exc)
        while source is not None and not source.ready.is_set():
            # bcc's compiler is not thread-safe (two BPF() at once crash the process): the
            # log source's probe first, then the rings.
            await asyncio.sleep(0.2)
        if self.maps is None:
            try:
                program = await asyncio.to_thread(RingProgram, self.geometry)
            except Exception as exc:  # noqa: BLE001 - no bcc / no BPF: logs still ship, without windows
                log.error("syscall windows unavailable: the ring program did not load: %s", exc)
                return
            table = getattr(source, "table", None)
            self.attach(program, table.lookup if table is not None else None)
        if registry is not None:
            registry.subscribe(self.scope)
        next_sync = time.monotonic() + SYNC_S
        try:
            while True:
                if not self.pending:
                    self._wake.clear()
                    if len(self.scope):
                        await wait_event(self._wake, max(0.0, next_sync - time.monotonic()))
                    else:
                        await self._wake.wait()
                if self._rescope or time.monotonic() >= next_sync:
                    self.sync_scope()
                    next_sync = time.monotonic() + SYNC_S
                if not self.pending:
                    continue
                await asyncio.sleep(0.05)
                if self.maps is None:
                    continue
                self.maps.drain()
                now = time.time_ns()
                for p in [p for p in self.pending.values() if now >= p.until_ns + GRACE_NS]:
                    self._finish(p)
        finally:
            if self.maps is not None:  # shutting down: windows still open are stored as far as they got
                for p in list(self.pending.values()):
                    p.trigger += " (shipper stopped before the window closed)"
                    self._finish(p)
            if self._tasks:  # bounded: a stopping shipper must not wait out every retry
                _, late = await asyncio.wait(self._tasks, timeout=10)
                for t in late:
                    t.cancel()
                if late:
                    METRICS.count(FAILED, len(late))
                    log.warning("%d snapshot(s) not stored: Elasticsearch did not answer before shutdown", len(late))
            if self.maps is not None:
                self.maps.close()
            if self.program is not None:
                self.program.close()

    def _finish(self, p: Pending) -> None:
        assert self.maps is not None
        self.maps.drain()
        tid = p.record.tid
        del self.pending[p.sid]
        others = self._by_tid[tid]
        others.remove(p)
        lost = self.maps.lost(tid)
        if not others:
            del self._by_tid[tid]
            self.maps.disarm(tid)
        after = self.maps.read(tid)  # what the stream may have missed, while the ring still holds it
        doc = self.build(p, after, lost)
        self.done[p.sid] = doc
        while len(self.done) > CACHE:
            self.done.popitem(last=False)
        t = asyncio.get_running_loop().create_task(self._store(doc, p))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _store(self, doc: dict[str, Any], p: Pending) -> None:
        """PUT the document; says how long each part of its latency took (the log line's
        write -> the window closed -> stored and searchable)."""
        closed = time.time_ns()
        if await self.store.put(doc, p.write_ns):
            now = time.time_ns()
            log.info("snapshot %s stored: %.2f s after the line's write (window closed at %.2f s, PUT %.2f s)", p.sid,
                     (now - p.write_ns) / 1e9, (closed - p.write_ns) / 1e9, (now - closed) / 1e9)

    def build(self, p: Pending, after: RingRead, lost: int) -> dict[str, Any]:
        """The snapshot document of a finished window."""
        r = p.record
        merged: dict[tuple[int, int], Syscall] = {}
        for sc in (*p.before.entries, *after.entries, *p.streamed):
            cur = merged.get(sc.key)
            if cur is None or (sc.done and not cur.done):
                merged[sc.key] = sc
        fds = FdNames(r.pid or 0, self.fd_lookup)
        events: list[dict[str, Any]] = []
        ordered = sorted(merged.values(), key=lambda s: s.ts_ns)
        # Older ones too: they teach fd names and protocol states (a MySQL greeting before the window).
        for sc, ev in zip(ordered, decode_events(ordered, fds, self.redactor), strict=True):
            if p.start_ns <= sc.ts_ns <= p.until_ns:
                ev["phase"] = "before" if sc.ts_ns <= p.write_ns else "after"
                events.append(ev)
        kept = [s for s in p.before.entries if s.done]
        overwritten = p.before.overwritten if kept and kept[0].ts_ns > p.start_ns else 0
        notes: list[str] = []
        if overwritten:
            METRICS.count(OVERWRITTEN, overwritten)
        if lost:
            METRICS.count(LOST, lost)
        if not self.settings.capture_data:
            notes.append("data capture is off (LOGSHIP_SNAPSHOT_CAPTURE_DATA=false)")
        doc: dict[str, Any] = {
            "@timestamp": iso_ns(p.write_ns),
            "logship.snapshot.id": p.sid,
            "message": r.message.decode("utf-8", "replace"),
            "host.name": self.hostname,
            "container.id": r.container.id,
            "container.name": r.container.name,
            "container.image.name": r.container.image,
            "process.pid": r.pid,
            "process.thread.id": r.tid,
            "process.name": r.comm,
            "log.file.path": r.path,
            "log.level": r.fields.get("log.level"),
            "snapshot": {
                "trigger": p.trigger,
                "window_before_ms": self.settings.window_before_ms,
                "window_after_ms": self.settings.window_after_ms,
                "start": iso_ns(p.start_ns),
                "end": iso_ns(p.until_ns),
                "events_count": len(events),
                "ring_overwritten": overwritten,
                "events_lost": lost,
                "notes": notes,
            },
            "events": events,
        }
        doc["text"] = render(doc)
        return doc

    # ---- lookups (HTTP, CLI) ----------------------------------------------------------
    async def get(self, sid: str) -> dict[str, Any] | None:
        if sid in self.done:
            return self.done[sid]
        return await self.store.get(sid)

    def in_progress(self, sid: str) -> bool:
        return sid in self.pending
