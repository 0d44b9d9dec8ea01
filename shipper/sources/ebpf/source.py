"""The eBPF source: what processes in shipped containers write to their log files and
send to /dev/log, live, with no volume mounts (sysdig's spy_logs / spy_syslog).

The kernel side (probe.c) filters by container cgroup and fd; this side keeps the fd
table, assembles lines and makes Records. One thread drains the ring buffer every
POLL_INTERVAL_S (the probe never wakes it: cheaper writes) and does all event processing;
batches of Records go to the event loop with run_coroutine_threadsafe, at most
MAX_INFLIGHT at once: when the pipeline is slow the thread waits, the ring fills, and
the kernel counts drops.

Containers are known from the ContainerRegistry (shipped ones only). A container writes
before Docker reports it, so the probe also traces new cgroups under Docker's parent
cgroup; their events are held here (HOLD_NS) and replayed, in order, once the registry
reports the container, or released and untraced when it never does (LOGSPOUT=ignore).

Log files are also followed as files (filetrack.py): each write is placed at its offset,
bytes past the probe's copy are read back from the file, and per-file checkpoints (the
offset up to which Elasticsearch holds the file) let a restart catch each file up from
where it was before live capture takes over. File records' ids are (container, file
identity, offset): a line read back and the same line captured live are one document."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
import queue
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Coroutine

from shipper.sources.ebpf.cgroups import CGROUP_ROOT, candidate_dirs, cgroup_id, container_of_path
from shipper.config import EbpfSettings
from shipper.core.acks import AckWindow
from shipper.core.checkpoints import FileCheckpoint, FileCheckpointStore, file_key
from shipper.core.container import Container, ContainerRegistry
from shipper.core.metrics import METRICS
from shipper.core.record import FILE, SYSLOG, Record
from shipper.sources.ebpf import events as E
from shipper.sources.ebpf.diagnose import Facts, diagnose, explain_failure
from shipper.sources.ebpf.fdtable import FdTable, links_to_a_stream
from shipper.sources.ebpf.filetrack import BEYOND, READ_CHUNK, FileTracker, TrackedFile, find_by_identity, open_in_root
from shipper.sources.ebpf.lines import LineAssembler, PathFilter, syslog_message

log = logging.getLogger("logship.ebpf")

Emit = Callable[[list[Record]], Coroutine[Any, Any, None]]
Room = Callable[[str, int], bool]  # (container id, bytes): whether the pipeline takes that much more of it now


@dataclass(slots=True)
class Behind:
    """A file read from its cursor at the pipeline's pace; its writers' fds are muted in the
    kernel meanwhile (their events would only be skipped here)."""
    container: Container
    why: str  # catch-up | sweep | paced | exit
    start: int  # the offset it fell behind at
    lines: int = 0  # read since
    muted: set[tuple[int, int, int]] = field(default_factory=set)  # (tgid, fd, fd state value)


def from_a_file(r: Record) -> bool:
    """A line placed in its file (identified by its offset there): one this source can read
    again, so it is paced by the pipeline's room rather than dropped over it."""
    return r.file_id is not None


DEV_LOG = "socket:unix:/dev/log"
MAX_INFLIGHT = 8  # batches handed to the loop and not yet queued by the pipeline
BATCH_MAX = 2048  # records per batch
BATCH_WAIT_NS = 20_000_000  # a batch leaves after this long even when small
POLL_INTERVAL_S = 0.005  # the ring is drained this often (the probe does not wake us: cheaper writes)
# Events handled per consume call: a ring that a flood refills as fast as it is read would
# otherwise keep the poll thread in one call, and nothing else it does (new containers'
# scans, batches, partial lines, drop counters) would ever run.
CONSUME_MAX = 4096
# Events read from the ring and not handled yet, at most this many bytes: the ring is read
# ahead of the handling so that a write's file is opened (FileTracker.pin) while its writer
# still has it, not seconds later when the handling of other containers' floods reaches it.
BACKLOG_MAX_BYTES = 16 << 20
EVENT_OVERHEAD = 128  # bytes counted per event beyond its data (the Event and its fields), backlog and hold alike
TICK_NS = 200_000_000  # partial-line timeouts and drop counters are looked at this often
# Events of a new container wait this long for Docker to report it ... (a busy host's event
# handling lags seconds; seen: a container's first file lines lost at 3 s while a compose stack
# started beside). Containers Docker declines are let go at once (ContainerRegistry.decline), so
# only cgroups Docker never mentions wait it out.
HOLD_NS = 30_000_000_000
HOLD_MAX_BYTES = 16 << 20  # ... within this much memory, all new containers together
# A file of a container whose write events the kernel refused (its ring budget) or lost (a full
# ring) is read from its cursor once it had no write event for this long: the file keeps the bytes.
SWEEP_IDLE_NS = 1_000_000_000
DRAIN_NS = 60_000_000_000  # a removed container's files are read to their end within this (then: a gap)
PACE_BYTES = 64 << 10  # a file behind the pipeline is read this much at a time, while its container has room
PACE_MAX_BYTES = 256 << 10  # ... and at most this much per poll, all files together (the ring waits meanwhile)
# A file written more often than this per tick is read from the file instead (muted in the kernel):
# one pread of many lines costs a fraction of an event each, and the ring stays free for the others.
HEAVY_WRITES_PER_TICK = 2000
ROOM_PROBE = 4096  # "room" is room for this many more bytes of the container
GC_INTERVAL_NS = 60_000_000_000  # processes whose exit event was lost are forgotten this often
WARN_INTERVAL_S = 60.0


class EbpfUnavailable(RuntimeError):
    """The probe cannot run here; the message says why and how to fix it."""


def realtime_offset_ns() -> int:
    """Add to bpf_ktime_get_ns() (CLOCK_MONOTONIC) to get epoch ns."""
    return time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def raise_priority(nice: int = -10) -> None:
    """For the calling thread only. The kernel ring is the one place lines can be lost:
    under CPU contention its consumer must not wait behind the writers it keeps up with."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:  # not permitted (no CAP_SYS_NICE): the default priority still works
        log.debug("ebpf: could not raise the poll thread's priority", exc_info=True)


def docker_parent_cgroup(root: Path = CGROUP_ROOT) -> tuple[int, int] | None:
    """(level, id) of the cgroup v2 directory Docker's cgroupfs driver creates containers
    in, so the probe can trace a container before Docker has reported it. None with the
    systemd driver (its parent, system.slice, holds every service: not watched)."""
    for v2 in (root / "unified", root):
        parent = v2 / "docker"
        if (v2 / "cgroup.controllers").exists() and parent.is_dir():
            return 1, os.stat(parent).st_ino
    return None


def child_cgroups(root: Path = CGROUP_ROOT) -> dict[str, int]:
    """Container id -> cgroup id, for the cgroups under Docker's parent that exist now."""
    out: dict[str, int] = {}
    for v2 in (root / "unified", root):
        try:
            out.update((e.name, e.inode()) for e in os.scandir(v2 / "docker") if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
    return out


def pid_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def container_pids(container_id: str) -> list[int]:
    """Host pids in the container's cgroup (its processes, as /proc names them)."""
    for d in candidate_dirs(container_id):
        try:
            return [int(x) for x in (d / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            continue
    return []


class EbpfSource:
    def __init__(self, settings: EbpfSettings, emit: Emit, registry: ContainerRegistry, *, mode: str = "auto",
                 self_tgid: int | None = None, state_dir: Path | None = None, room: Room | None = None) -> None:
        self.settings = settings
        self.emit = emit
        self.room = room
        self.registry = registry
        self.mode = mode
        self.self_tgid = os.getpid() if self_tgid is None else self_tgid
        self.probe: Any = None  # loader.Probe once attached
        self.table = FdTable()
        self.is_log = PathFilter(settings.paths, settings.exclude_paths)
        self.lines = LineAssembler(settings.max_line_bytes, int(settings.partial_timeout_s * 1e9))
        self.ready = threading.Event()  # set once the probe is attached and the poll thread runs
        self.settled = threading.Event()  # ... or once it is known that it will not be
        self.state = "starting"  # starting (compiling, attaching) | attached | unavailable: /health
        self.files = FileTracker()
        self.checkpoints = FileCheckpointStore(state_dir) if state_dir is not None else None
        self._windows: dict[tuple[str, str], AckWindow] = {}  # (container id, file_id) -> its delivered prefix
        self._window_files: dict[tuple[str, str], tuple[TrackedFile, int]] = {}  # ... -> (file, first offset)
        self._notes_seen: Counter[str] = Counter()
        self._offset = realtime_offset_ns()
        self._by_cgroup: dict[int, Container] = {}
        self._cgroup_of: dict[str, int] = {}
        self._commands: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._forgets: list[tuple[int, Container, int]] = []  # removed (and when), forgotten once drained
        self._stop = threading.Event()
        self._inflight = threading.BoundedSemaphore(MAX_INFLIGHT)
        self._futures: set[Future[None]] = set()
        self._batch: list[Record] = []
        self._batch_since = 0
        self._seq: dict[tuple[str, str], int] = {}
        self._writer: dict[tuple[int, str], tuple[Container, int, str, str | None]] = {}  # partial line -> writer
        self._drops: Counter[str] = Counter()
        self._kernel_drops = [0] * len(E.DROP_REASONS)
        self._cg_drops_seen: dict[int, tuple[int, ...]] = {}  # cgroup -> its kernel drop counters, as last read
        self._backlog: deque[E.Event] = deque()  # read from the ring, handled in order by _handle_backlog
        self._backlog_bytes = 0
        self._ring_more = False  # the last consume stopped at a full backlog: the ring may hold more
        self._to_sweep: set[int] = set()  # cgroups with write events refused or lost since their files were swept
        # Files read from their cursor at the pipeline's pace (their live events are skipped meanwhile):
        self._behind: dict[TrackedFile, Behind] = {}
        self._writes: Counter[TrackedFile] = Counter()  # live write events per file this tick
        self._cg_names: dict[int, str] = {}  # cgroup -> container name, kept for the last read after removal
        self._cg_unreported: dict[str, Counter[str]] = {}
        self._cg_last_warn: dict[str, float] = {}
        self._unreported: Counter[str] = Counter()
        self._last_warn = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        # Events of cgroups not reported (yet) by the registry: cgroup -> (first seen, events)
        self._held: dict[int, tuple[int, list[E.Event]]] = {}
        self._held_bytes = 0
        self._hold_lost: set[int] = set()  # cgroups with events dropped from a full hold
        # Container id -> (cgroup id, when learnt) of new cgroups, from their cgroup_mkdir event
        # or read while they exist: a container that is gone when Docker reports it has no
        # cgroup directory left to stat.
        self._seen_cgroups: dict[str, tuple[int, int]] = {}
        # Containers reported before their cgroup was known: id -> (container, since, removed)
        self._unresolved: dict[str, tuple[Container, int, bool]] = {}
        self._stream_links: dict[tuple[int, str], bool] = {}  # (cgroup, path) -> links to /dev/stdout & co
        self._handlers = {E.WRITE: self._on_write, E.OPEN: self._on_open, E.DUP: self._on_dup,
                          E.CLOSE: self._on_close, E.SOCKET: self._on_socket, E.CONNECT: self._on_connect,
                          E.FORK: self._on_fork, E.EXEC: self._on_exec, E.EXIT: self._on_exit}

    # ---- lifecycle -------------------------------------------------------------------
    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        facts: Facts | None = None
        try:
            facts = await asyncio.to_thread(Facts.gather)
            cause = diagnose(facts)
            if cause:
                raise EbpfUnavailable(cause)
            self.probe = await asyncio.to_thread(self._load)
        except Exception as exc:  # noqa: BLE001 - every failure to start is explained the same way
            msg = str(exc) if isinstance(exc, EbpfUnavailable) else explain_failure(exc, facts or Facts.gather())
            if self.mode == "on":
                log.error("ebpf: cannot start (LOGSHIP_EBPF=on): %s", msg)
                raise EbpfUnavailable(msg) from None
            log.warning("ebpf: not started, container log files and /dev/log are not shipped "
                        "(LOGSHIP_EBPF=auto; =off silences this): %s", msg)
            self.state = "unavailable"
            self.settled.set()
            await asyncio.Future()  # stay "running": the Docker source goes on alone
        finally:
            if self.probe is None and self.mode == "on":
                self.state = "unavailable"
                self.settled.set()
        self.probe.open_events(self._on_raw)
        parent = docker_parent_cgroup()
        if parent is not None:
            self.probe.watch_parent(*parent)
        self.registry.subscribe(self)
        thread = threading.Thread(target=self._poll_loop, name="ebpf-poll", daemon=True)
        thread.start()
        saver = asyncio.create_task(self.checkpoints.run(), name="ebpf-file-checkpoints") if self.checkpoints else None
        self.state = "attached"
        self.ready.set()
        self.settled.set()
        METRICS.gauge("logship_ebpf_processes", lambda: len(self.table), "Processes in the eBPF source's fd table.")
        METRICS.gauge("logship_ebpf_partial_lines", lambda: len(self.lines), "Lines waiting for their newline.")
        METRICS.gauge("logship_ebpf_held_bytes", lambda: self._held_bytes,
                      "Bytes of events of new containers waiting for Docker to report them.")
        METRICS.gauge("logship_ebpf_files_open", lambda: len(self.files), "Log files the eBPF source holds open.")
        METRICS.set("logship_ebpf_probe_mechanism", 1, mechanism=self.probe.mechanism)
        log.info("ebpf: probe attached (capture %d bytes, ring %d pages, paths %s)", self.probe.capture,
                 self.settings.ring_pages, ",".join(self.settings.paths))
        try:
            await asyncio.Future()
        finally:
            self._stop.set()
            await asyncio.shield(asyncio.to_thread(thread.join))
            self.probe.close()
            if saver is not None:
                saver.cancel()

    def close(self) -> None:
        """The final file checkpoints, once the sink has delivered what it could."""
        if self.checkpoints is not None:
            self.checkpoints.save()
        for tf in list(self.files.files.values()):
            self.files.close(tf)

    async def start(self) -> "asyncio.Task[None]":
        """run() as a task, returned once the probe is attached, or (LOGSHIP_EBPF=auto) once it
        is known it will not be; raises why it could not start (LOGSHIP_EBPF=on)."""
        task = asyncio.create_task(self.run(), name="ebpf-source")
        while not self.settled.is_set():
            await asyncio.sleep(0.05)
            if task.done():
                task.result()
        return task

    def _load(self) -> Any:
        from shipper.sources.ebpf.loader import Probe
        return Probe(self_tgid=self.self_tgid, capture_bytes=self.settings.capture_bytes,
                     ring_pages=self.settings.ring_pages,
                     container_bytes_per_s=self.settings.container_ring_bytes_per_s,
                     container_burst_bytes=self.settings.container_ring_burst_bytes)

    # ---- the registry (event loop thread): handed to the poll thread, in order ----------------
    def container_added(self, c: Container) -> None:
        self._commands.put(("add", c))

    def container_declined(self, container_id: str) -> None:
        self._commands.put(("decline", container_id))

    def container_removed(self, c: Container) -> None:
        self._commands.put(("remove", c))

    # ---- the registry's changes (poll thread) -----------------------------------------------
    def _cgroup_of_id(self, container_id: str) -> int | None:
        cg = cgroup_id(container_id)  # (the directory as it is now: a restarted container's new one)
        if cg is None:
            seen = self._seen_cgroups.get(container_id)
            cg = seen[0] if seen is not None else None
        return cg

    def _added(self, c: Container) -> None:
        cg = self._cgroup_of_id(c.id)
        if cg is None:  # gone before its cgroup_mkdir event was read (a busy machine): it comes later
            self._unresolved[c.id] = (c, time.monotonic_ns(), False)
            return
        self._ship(c, cg)

    def _ship(self, c: Container, cg: int) -> None:
        self._unresolved.pop(c.id, None)
        self._by_cgroup[cg] = c
        self._cgroup_of[c.id] = cg
        self._cg_names[cg] = c.name
        if self.probe is not None:
            self.probe.add_cgroup(cg)  # first, so fds opened from now on are seen ...
            self.probe.claim(cg)  # (Docker took longer than HOLD_NS to report it)
        self._catch_up(c)  # ... then what it did before: checkpointed files first, so that held and
        self._replay(cg)  # live writes find them placed; held events; existing fds
        self._scan(c.id)

    def _declined(self, container_id: str) -> None:
        cg = self._cgroup_of_id(container_id)
        if cg is not None and cg not in self._by_cgroup:
            self._release(cg)

    def _removed(self, c: Container) -> None:
        waiting = self._unresolved.get(c.id)
        if waiting is not None:  # shipped (and then removed) once its cgroup is known
            self._unresolved[c.id] = (waiting[0], waiting[1], True)
            return
        cg = self._cgroup_of.pop(c.id, None)
        if cg is not None:
            if self.probe is not None:
                self.probe.remove_cgroup(cg)
                self.probe.unclaim(cg)  # not "new" either
            self._forgets.append((cg, c, time.monotonic_ns()))  # after the events already in the ring

    def _on_cgroup(self, ev: E.Event) -> None:
        """A new cgroup: a container's is remembered by id; a container reported before this
        event was read is shipped now (its events follow this one in the ring)."""
        cid = container_of_path(ev.data.decode(errors="replace"))
        if cid is None:
            return
        self._seen_cgroups[cid] = (ev.arg1, time.monotonic_ns())
        waiting = self._unresolved.get(cid)
        if waiting is not None:
            self._ship(waiting[0], ev.arg1)
            if waiting[2]:
                self._removed(waiting[0])

    def _expire_unresolved(self, now: int) -> None:
        """Containers reported whose cgroup never became known (its cgroup_mkdir event lost):
        what the probe saw of them cannot be told apart from other cgroups' events."""
        for cid, (_, since, _) in list(self._unresolved.items()):
            if now - since >= HOLD_NS:
                del self._unresolved[cid]
                self._drops["no_cgroup"] += 1

    # ---- the poll thread ----------------------------------------------------------------
    def _poll_loop(self) -> None:
        raise_priority()
        next_tick = 0
        next_gc = time.monotonic_ns() + GC_INTERVAL_NS
        try:
            while not self._stop.is_set():
                self._run_commands()
                if not self._backlog and not self._ring_more:
                    self._stop.wait(POLL_INTERVAL_S)
                forgets = bool(self._forgets)
                self._consume()
                self._handle_backlog()
                if forgets:
                    self._forget_cgroups()
                if self._behind:
                    self._pace()
                now = time.monotonic_ns()
                if now >= next_tick:
                    self._expire(now)
                    self._release_unclaimed(now)
                    self._count_kernel_drops()
                    self._sweep(now)
                    next_tick = now + TICK_NS
                    self._writes.clear()
                if now >= next_gc:
                    self._collect()
                    next_gc = now + GC_INTERVAL_NS
                if self._batch and (len(self._batch) >= BATCH_MAX or now - self._batch_since >= BATCH_WAIT_NS):
                    self._submit()
            while True:
                self._consume()
                while self._backlog:
                    self._handle_backlog()
                if not self._ring_more:
                    break
            for key in self.lines.keys():
                self._flush_partial(key)
            self._submit()
            self._count_kernel_drops()
            for fut in list(self._futures):
                fut.result(timeout=30)
        except Exception:  # a bug here must be loud, not a silent stop
            log.exception("ebpf: the poll thread failed")
            raise

    def _run_commands(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            if cmd[0] == "add":
                self._added(cmd[1])
            elif cmd[0] == "decline":
                self._declined(cmd[1])
            elif cmd[0] == "remove":
                self._removed(cmd[1])

    def _forget_cgroups(self) -> None:
        """Removed containers, once the ring was drained after their removal (their last
        events, a job's removed as soon as it exits, are handled as theirs, not held) and
        their files read to the end (the shipper's fds keep a removed container's files)."""
        if self._backlog or self._ring_more:
            return
        forgets, self._forgets = self._forgets, []
        now = time.monotonic_ns()
        for cg, removed, since in forgets:
            if self._by_cgroup.get(cg) is not removed:
                continue  # reported again meanwhile
            if now - since < DRAIN_NS and self._unread(removed):
                self._forgets.append((cg, removed, since))
                continue
            del self._by_cgroup[cg]
            self._forget_behind(removed)
            self.files.forget_container(removed.id)
            self._count_container_drops()  # its last counts, before they leave the kernel's map
            self.probe.forget_cgroup_counters(cg)
            self._cg_drops_seen.pop(cg, None)
            self._to_sweep.discard(cg)
            self._cg_names.pop(cg, None)
            self.files.unpin(cg)

    def _unread(self, c: Container) -> bool:
        """Whether a file of the removed container still has bytes past its cursor (write
        events refused or lost, and its writers gone before a sweep): they are read now."""
        left = False
        for tf in [f for f in self.files.files.values() if f.container == c.id and f.cursor is not None]:
            if tf in self._behind:
                left = True
                continue
            try:
                size = os.fstat(tf.fd).st_size
            except OSError:
                continue
            if size > (tf.cursor or 0):  # (a line begun is read again whole: _fall_behind)
                self._fall_behind(c, tf, "exit")
                self.files.notes["drained_files"] += 1
                left = True
        return left

    # ---- catch-up: what checkpointed files got while the shipper was away ------------------
    def _catch_up(self, c: Container) -> None:
        """Each checkpointed file of the container, from its checkpoint to its end, before
        live capture takes over: writes that ended before the hand-over point were read here
        and are dropped live (FileTracker.place), later ones land at the cursor. What cannot
        be read back (the file rotated away and deleted, or truncated, meanwhile) is a gap:
        counted and reported with its range."""
        if self.checkpoints is None or not c.pid:
            return
        root = f"/proc/{c.pid}/root"
        for cp in self.checkpoints.of_container(c.id):
            if (c.id, cp.dev, cp.ino) in self.files.files:
                continue  # followed already (the container was reported again)
            path, fd = cp.path, -1
            try:
                fd = open_in_root(root, cp.path)
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != (cp.dev, cp.ino):
                    os.close(fd)
                    fd = -1
            except OSError:
                pass
            if fd < 0:
                found = find_by_identity(root, cp.path, cp.dev, cp.ino)
                if found is None:
                    self._gap(c, cp, "gone (rotated away and deleted, or the container's file system changed)")
                    self.checkpoints.forget(cp.key)
                    continue
                fd, path = found
                st = os.fstat(fd)
            tf = self.files.add(TrackedFile(c.id, cp.path, fd, st, cp.gen))
            tf.handover_ns = time.monotonic_ns()  # (before the size: writes ending earlier are in what is read)
            size = tf.size()
            tf.cursor = cp.offset  # (its tail unknown: a write found before it means a truncation)
            if size < cp.offset:
                self._gap(c, cp, f"truncated to {size} bytes; bytes written after offset {cp.offset} before the "
                                 "truncation are lost")
                tf.truncated()
            self._window_files[(c.id, tf.file_id)] = (tf, tf.cursor)
            tf.announced = tf.file_id
            self._behind[tf] = Behind(c, "catch-up", tf.cursor)  # read by _pace, at the pipeline's pace

    def _sweep(self, now: int) -> None:
        """The files of containers whose write events the kernel refused or lost: those with
        bytes past their cursor and no write event for SWEEP_IDLE_NS are read from the cursor
        (by _pace) as a catch-up is (later events of those bytes are then dropped: read back
        already). A file still written is not: its next write event ships the bytes before it."""
        for cg in list(self._to_sweep):
            c = self._by_cgroup.get(cg)
            if c is None:
                continue  # not reported yet (its losses may come from the hold): swept once it is, or forgotten
            pending = {k[1] for k in self.lines.keys()}  # a partial line waits for its live write
            done = True
            for tf in [f for f in self.files.files.values() if f.container == c.id]:
                if tf.cursor is None:
                    continue
                try:
                    st = os.fstat(tf.fd)
                except OSError:
                    continue
                if st.st_size <= tf.cursor:
                    continue  # all shipped (or truncated: its next write finds out)
                if now - tf.event_ns < SWEEP_IDLE_NS or tf.path in pending:
                    done = False
                    continue
                if tf not in self._behind:
                    self._fall_behind(c, tf, "sweep")  # (read by _pace)
                    self.files.notes["swept_files"] += 1
            if done:
                self._to_sweep.discard(cg)

    def _read_ahead(self, c: Container, tf: TrackedFile, most: int) -> tuple[int, bool]:
        """Up to `most` bytes of the file from its cursor, shipped as a catch-up is (live write
        events of them are then dropped as read back, later ones placed by content): (lines,
        whether it read to the file's end)."""
        assert tf.cursor is not None
        tf.handover_ns = time.monotonic_ns()  # (before the size: writes ending earlier are in what is read)
        st = tf.stat()
        size = st.st_size
        if size < tf.cursor:  # cut (copytruncate) before all was read: what was not is lost
            self._drops["file_gap"] += 1
            log.warning("ebpf: gap in %s of %s (%s): truncated to %d bytes before offset %d was read", tf.path,
                        c.name, c.id[:12], size, tf.cursor)
            tf.truncated()
        end = min(size, tf.cursor + most)
        tf.synced = False
        if tf.announced is not tf.file_id:
            tf.announced = tf.file_id
            self._window_files.setdefault((c.id, tf.file_id), (tf, tf.cursor))
        n = self._read_back(c, tf, tf.path, end, st.st_mtime_ns, whole=end == size)
        return n, end == size

    # ---- files behind the pipeline -----------------------------------------------------------
    def _has_room(self, c: Container) -> bool:
        return self.room is None or self.room(c.id, ROOM_PROBE)

    def _fall_behind(self, c: Container, tf: TrackedFile, why: str = "paced") -> Behind:
        """The container has no room in the pipeline: its file waits in the file, not in memory
        and not dropped. A line its writer had begun is read with the rest from the file."""
        assert tf.cursor is not None
        for key in [k for k, w in self._writer.items() if w[3] == tf.file_id and w[0] is c]:
            start = self.lines.discard(key)
            del self._writer[key]
            if start >= 0 and start < tf.cursor:
                tf.moved_to(start)
        b = self._behind[tf] = Behind(c, why, tf.cursor)
        return b

    def _pace(self) -> None:
        """Files behind, read from their cursor while their container has room: a flooding
        writer's file is read as fast as the pipeline takes its lines, the others' live."""
        budget = [PACE_MAX_BYTES]
        for tf, b in list(self._behind.items()):
            c = b.container
            try:
                whole = self._pace_file(c, tf, b, budget)
                if whole and b.muted:
                    # Its writes are sent again from here: one that ended before the read below
                    # began is in it (and its event dropped), a later one is placed by content.
                    self._unmute(b)
                    whole = self._pace_file(c, tf, b, budget)
            except OSError:
                log.warning("ebpf: %s of %s no longer readable at offset %s", tf.path, c.name, tf.cursor)
                self._drops["file_gap"] += 1
                self._unmute(b)
                del self._behind[tf]
                continue
            if whole:
                del self._behind[tf]
                if b.why == "catch-up":
                    log.info("ebpf: caught up %s in %s from offset %d: %d lines", tf.path, c.name, b.start, b.lines)

    def _unmute(self, b: Behind) -> None:
        for tgid, fd, seen in b.muted:
            self.probe.unskip_fd(tgid, fd, seen)
        b.muted.clear()

    def _pace_file(self, c: Container, tf: TrackedFile, b: Behind, budget: list[int]) -> bool:
        """What the container has room for of the file, within this poll's budget of bytes:
        whether it read to the end."""
        read, whole = 0, False
        while self._has_room(c) and read < budget[0]:
            at = tf.cursor or 0
            n, whole = self._read_ahead(c, tf, PACE_BYTES)
            b.lines += n
            read += (tf.cursor or 0) - at
            if whole or tf.cursor == at:
                break
        self.files.notes["paced_bytes"] += read
        budget[0] -= read
        return whole

    def _forget_behind(self, c: Container) -> None:
        """The container is removed: what its files behind still had unread is a gap."""
        for tf in [f for f in self._behind if f.container == c.id]:
            del self._behind[tf]
            try:
                left = os.fstat(tf.fd).st_size - (tf.cursor or 0)
            except OSError:
                left = -1
            if left:
                self._drops["file_gap"] += 1
                log.warning("ebpf: gap in %s of %s (%s): removed with %s bytes past offset %s not read yet", tf.path,
                            c.name, c.id[:12], left if left > 0 else "some", tf.cursor)

    def _read_back(self, c: Container, tf: TrackedFile, path: str, end: int, mtime_ns: int,
                   whole: bool = True) -> int:
        """Lines of [cursor, end) of the file; the cursor ends after the last whole line (a
        line still being written is completed by its live write; `whole`: `end` is the file's
        end, so an unfinished last line not written to for the partial-line timeout is shipped).
        Their write time is not known: they carry the file's modification time."""
        assert tf.cursor is not None
        asm = LineAssembler(self.settings.max_line_bytes)
        clock = mtime_ns - time.monotonic_ns()  # (_add_lines adds it to the monotonic time below)
        key, pos, n, now = (0, "catch-up"), tf.cursor, 0, time.monotonic_ns()
        start = pos
        while pos < end:
            chunk = tf.read(pos, min(READ_CHUNK, end - pos))
            if not chunk:
                break
            lines = asm.feed(key, chunk, now, False, pos)
            pos += len(chunk)
            if lines:
                self._add_lines(c, None, None, None, path, lines, tf.file_id, clock)
                n += len(lines)
            if len(self._batch) >= BATCH_MAX:
                self._submit()
        rest = asm.flush(key)
        if rest and whole and time.time_ns() - mtime_ns > self.settings.partial_timeout_s * 1e9:
            self._add_lines(c, None, None, None, path, rest, tf.file_id, clock)  # its writer is done with it
            n += 1
        elif rest:
            pos = rest[0][3]
        tf.shipped_unclaimed(start, pos)
        tf.moved_to(pos)
        if asm.overflows:
            self._drops["partial_overflow"] += asm.overflows
        return n

    def _gap(self, c: Container, cp: FileCheckpoint, why: str) -> None:
        self._drops["file_gap"] += 1
        log.warning("ebpf: gap in %s of %s (%s): from offset %d: %s", cp.path, c.name, c.id[:12], cp.offset, why)

    def _scan(self, container_id: str) -> None:
        """Fds the container's processes opened before the probe saw them."""
        for pid in container_pids(container_id):
            if self.table.scan(pid):
                self._adopt_fds(pid)

    def _adopt_fds(self, tgid: int) -> None:
        """The process's log fds, as the table has them, into the kernel's fd_state wherever
        the kernel has no entry of its own (which is newer than the table's)."""
        for fd, desc in self.table.fds(tgid).items():
            state = E.FD_SYSLOG if desc == DEV_LOG else E.FD_SEND if desc.startswith("/") and self.is_log(desc) else 0
            if state and self.probe.adopt_fd(tgid, fd, state):
                self.table.adopted(tgid, fd, state)

    def _consume(self) -> None:
        self.probe.consume()
        self._ring_more = self._backlog_bytes >= BACKLOG_MAX_BYTES

    def _on_raw(self, _ctx: Any, data: Any, size: int) -> int:
        """One event read into the backlog; -1 (libbpf: stop consuming, this event counts as
        read) once the backlog is full. A write's file is pinned now, while its writer lives."""
        try:
            ev = E.decode(ctypes.string_at(data, size))
            if ev.kind == E.WRITE:
                self.files.pin(ev.cgroup, ev.tgid, ev.fd, ev.fdval, self.is_log)
        except Exception:  # one bad event must not stop the source
            self._drops["bad_event"] += 1
            log.debug("ebpf: event failed", exc_info=True)
            return 0
        self._backlog.append(ev)
        self._backlog_bytes += len(ev.data) + EVENT_OVERHEAD
        return -1 if self._backlog_bytes >= BACKLOG_MAX_BYTES else 0

    def _handle_backlog(self) -> None:
        """Up to CONSUME_MAX events of the backlog, in order (then the poll loop does its other work)."""
        for _ in range(min(CONSUME_MAX, len(self._backlog))):
            ev = self._backlog.popleft()
            self._backlog_bytes -= len(ev.data) + EVENT_OVERHEAD
            try:
                if ev.kind == E.CGROUP:  # (made by dockerd/runc, from their cgroup: never held)
                    self._on_cgroup(ev)
                elif ev.cgroup not in self._by_cgroup or ev.cgroup in self._held:  # (in order, after what is held)
                    self._hold(ev)
                else:
                    self._handlers[ev.kind](ev)
            except Exception:  # one bad event must not stop the source
                self._drops["bad_event"] += 1
                log.debug("ebpf: event failed", exc_info=True)

    # ---- containers not reported yet -------------------------------------------------------
    def _hold(self, ev: E.Event) -> None:
        size = len(ev.data) + EVENT_OVERHEAD
        if self._held_bytes + size > HOLD_MAX_BYTES:
            self._drops["hold_full"] += 1
            self._hold_lost.add(ev.cgroup)
            return
        held = self._held.get(ev.cgroup)
        if held is None:
            held = self._held[ev.cgroup] = (time.monotonic_ns(), [])
            if all(cg != ev.cgroup for cg, _ in self._seen_cgroups.values()):
                self._learn_cgroups(child_cgroups())
        held[1].append(ev)
        self._held_bytes += size

    def _replay(self, cg: int) -> None:
        """The container is shipped: what it did before Docker reported it, in order."""
        held = self._held.pop(cg, None)
        if held is None:
            return
        lost = cg in self._hold_lost  # events of it were dropped from a full hold: place its writes by content
        self._hold_lost.discard(cg)
        for ev in held[1]:
            self._held_bytes -= len(ev.data) + EVENT_OVERHEAD
            if lost and ev.kind == E.WRITE:
                ev.flags |= E.WF_AFTER_LOSS
            self._handlers[ev.kind](ev)
        # (its pins stay: writes still in the backlog, read after the held ones, take them)
        c = self._by_cgroup.get(cg)
        if lost and c is not None:
            self._writes_lost(c.id, cg)  # (the next live write too)

    def _release_unclaimed(self, now: int) -> None:
        """Cgroups Docker never reported as shipped within HOLD_NS (LOGSPOUT=ignore, not a
        Docker container, ...): their events go, and the probe stops tracing them."""
        for cg, (since, _) in list(self._held.items()):
            if now - since >= HOLD_NS and cg not in self._by_cgroup:  # (reported: its scan command replays it)
                self._release(cg)

    def _release(self, cg: int) -> None:
        """A cgroup that is not shipped: its held events go (counted), the probe stops tracing it."""
        _, evs = self._held.pop(cg, (0, []))
        self._to_sweep.discard(cg)
        self._hold_lost.discard(cg)
        self._held_bytes -= sum(len(e.data) + EVENT_OVERHEAD for e in evs)
        self.files.unpin(cg)
        self.probe.unclaim(cg)
        if evs and self._loop is not None:
            self._loop.call_soon_threadsafe(METRICS.count, "logship_ebpf_unclaimed_events_total", len(evs))

    # ---- events -----------------------------------------------------------------------------
    def _read_from_file(self, c: Container, tf: TrackedFile, ev: E.Event, why: str) -> None:
        """The write's bytes are read from the file by _pace (from the cursor, in order); its
        fd's writes are not sent meanwhile."""
        b = self._behind.get(tf) or self._fall_behind(c, tf, why)
        if (ev.tgid, ev.fd, ev.fdval) not in b.muted:
            b.muted.add((ev.tgid, ev.fd, ev.fdval))
            self.probe.skip_fd(ev.tgid, ev.fd, ev.fdval)
        self.files.notes[f"{why}_events"] += 1

    def _writes_lost(self, container_id: str, cgroup: int) -> None:
        """Write events of the container may be missing: each of its files' next write is
        placed by content (the bytes before it shipped with it), and its idle files swept."""
        self.files.lost_before(container_id)
        self._to_sweep.add(cgroup)

    def _on_write(self, ev: E.Event) -> None:
        c = self._by_cgroup.get(ev.cgroup)
        if c is None:
            self._drops["unknown_container"] += 1
            return
        truncated = bool(ev.flags & E.WF_TRUNCATED)
        desc = self.table.lookup(ev.tgid, ev.fd)
        if ev.flags & E.WF_SYSLOG_ADDR or desc == DEV_LOG or (desc is None and ev.fdval & 0xFF == E.FD_SYSLOG):
            # (one datagram, or one write to a stream socket, is one message)
            if truncated:
                self._drops["truncated"] += 1
            msg = syslog_message(ev.data)
            if msg:
                self._add(Record(message=msg, time_ns=ev.ktime + self._offset, stream=SYSLOG, container=c,
                                 seq=self._next_seq(c.id, SYSLOG), source="ebpf", pid=ev.tgid, tid=ev.tid,
                                 comm=ev.comm, truncated=truncated))
            return
        if desc is None or not (desc.startswith("/") and self.is_log(desc)):
            # The table may lag the process (a /proc scan read in the middle of a redirect): if
            # this write went to one of its log files after all, the next write there must be
            # located by content, so that this one's bytes are shipped with it, not overwritten
            # (and if none comes, the sweep reads them).
            self._writes_lost(c.id, ev.cgroup)
            if desc is None:
                self._drops["unknown_fd"] += 1
            else:
                self.probe.skip_fd(ev.tgid, ev.fd, ev.fdval)  # e.g. a dup of a non-log file: stop sending it
            return
        key = (ev.tgid, desc)
        data, offset, file_id = ev.data, -1, None
        if ev.flags & E.WF_AFTER_LOSS:  # writes may be missing before this one: place by content
            self._writes_lost(c.id, ev.cgroup)
        tf = self.files.for_write(c.id, c.pid, ev.tgid, ev.fd, ev.fdval, desc)
        if tf is not None and tf.cursor is not None and (tf in self._behind or not self._has_room(c) or
                                                         self._writes[tf] >= HEAVY_WRITES_PER_TICK):
            self._read_from_file(c, tf, ev, "paced")
            return
        if tf is not None:
            self._writes[tf] += 1
            placed = self.files.place(tf, ev.data, ev.arg1, ev.ktime)
            if placed is None:  # read back from the file already (catch-up)
                return
            if placed is BEYOND:  # further on than the search reaches: read there from the cursor
                self._read_from_file(c, tf, ev, "sweep")
                return
            offset, data, truncated = placed
            if offset >= 0:
                file_id = tf.file_id
                if tf.announced is not file_id:  # the first placed write of this generation
                    tf.announced = file_id
                    self._window_files.setdefault((c.id, file_id), (tf, offset))
        if truncated:  # neither the probe's copy nor the file had the rest of the write
            self._drops["truncated"] += 1
        lines = self.lines.feed(key, data, ev.ktime, truncated, offset)
        if self.lines.overflows:
            self._drops["partial_overflow"] += self.lines.overflows
            self.lines.overflows = 0
        if lines:
            self._add_lines(c, ev.tgid, ev.tid, ev.comm, desc, lines, file_id)
        if key in self.lines:  # a partial line waits: remember who wrote it for its flush
            self._writer[key] = (c, ev.tid, ev.comm, file_id)

    def _add_lines(self, c: Container, tgid: int | None, tid: int | None, comm: str | None, path: str,
                   lines: list[tuple[bytes, int, bool, int]], file_id: str | None, clock: int | None = None) -> None:
        """Records of lines; those with a file offset are identified by it (file_id)."""
        off, add, seq_key = self._offset if clock is None else clock, self._batch.append, (c.id, path)
        if not self._batch:
            self._batch_since = time.monotonic_ns()
        seq = self._seq.get(seq_key, 0)
        for data, t, trunc, pos in lines:
            if pos >= 0 and file_id is not None:
                add(Record(message=data, time_ns=t + off, stream=FILE, container=c, seq=pos, source="ebpf", pid=tgid,
                           tid=tid, comm=comm, path=path, truncated=trunc, file_id=file_id))
                continue
            add(Record(message=data, time_ns=t + off, stream=FILE, container=c, seq=seq, source="ebpf", pid=tgid,
                       tid=tid, comm=comm, path=path, truncated=trunc))
            seq += 1
        self._seq[seq_key] = seq

    def _next_seq(self, container_id: str, path: str) -> int:
        # Unique per (container, path) for this run: lines of one write share their time.
        key = (container_id, path)
        n = self._seq.get(key, 0)
        self._seq[key] = n + 1
        return n

    def _on_open(self, ev: E.Event) -> None:
        path = self.table.opened(ev.tgid, ev.fd, ev.arg1, ev.data.decode(errors="surrogateescape"), ev.arg2, ev.fdval)
        if not self.is_log(path) or self._is_stream_link(ev, path):
            self.probe.skip_fd(ev.tgid, ev.fd, ev.fdval)

    def _is_stream_link(self, ev: E.Event, path: str) -> bool:
        """A log path linked to /dev/stdout (nginx's images do it): not a file; those lines
        come through the Docker source, so shipping them here would ship them twice."""
        key = (ev.cgroup, path)
        hit = self._stream_links.get(key)
        if hit is None:
            c = self._by_cgroup.get(ev.cgroup)
            hit = links_to_a_stream(Path(f"/proc/{ev.tgid}/root"), path) or bool(
                c and c.pid and links_to_a_stream(Path(f"/proc/{c.pid}/root"), path))
            if len(self._stream_links) > 10000:
                self._stream_links.clear()
            self._stream_links[key] = hit
        if hit:
            self.table.set(ev.tgid, ev.fd, f"stream-link:{path}", fdval=ev.fdval)  # lookups: no log file
        return hit

    def _on_dup(self, ev: E.Event) -> None:
        self.table.dup(ev.tgid, ev.arg1, ev.fd, ev.arg2, ev.fdval)

    def _on_close(self, ev: E.Event) -> None:
        if ev.arg1 == ev.fd and ev.arg2 == 0:
            self.table.close(ev.tgid, ev.fd)
            return
        for fd, seen in self.table.close_range(ev.tgid, ev.fd, ev.arg1, ev.arg2):
            self.probe.close_fd(ev.tgid, fd, seen)

    def _on_socket(self, ev: E.Event) -> None:
        self.table.socket(ev.tgid, ev.fd, ev.arg1, ev.arg2)

    def _on_connect(self, ev: E.Event) -> None:
        self.table.connect(ev.tgid, ev.fd, ev.data, ev.fdval)

    def _on_fork(self, ev: E.Event) -> None:
        child = ev.arg1
        self.table.fork(ev.tgid, child)
        # The probe falls back to the parent's fds for one generation; copy the log fds so
        # the child's own children find them too (unless the child changed them already).
        self._adopt_fds(child)

    def _on_exec(self, ev: E.Event) -> None:
        for fd, seen in self.table.exec(ev.tgid):
            self.probe.close_fd(ev.tgid, fd, seen)

    def _on_exit(self, ev: E.Event) -> None:
        if ev.tid != ev.tgid:
            self._forget_process(ev.tid)  # a thread's copy made at its clone
        if ev.arg1:  # group_dead: the process is gone
            for key in [k for k in self.lines.keys() if k[0] == ev.tgid]:
                self._flush_partial(key)
            self._forget_process(ev.tgid)

    def _collect(self) -> None:
        """Processes whose exit event was lost (a full ring): forget them, here and in the
        kernel's fd map, which would otherwise fill up and stop marking new log fds."""
        for tgid in [t for t in self.table.processes() if not pid_alive(t)]:
            self._forget_process(tgid)
        now = time.monotonic_ns()
        self.files.close_idle(now)
        self._offset = realtime_offset_ns()  # follows NTP adjustments of the wall clock
        existing = child_cgroups()
        self.probe.forget_unclaimed(set(existing.values()))
        self._to_sweep &= set(existing.values()) | set(self._by_cgroup)  # (cgroups gone unreported)
        # (kept while held, or new: a job removed at once is reported after its cgroup is gone)
        self._seen_cgroups = {k: v for k, v in self._seen_cgroups.items()
                              if v[0] in self._held or now - v[1] < HOLD_NS}
        self._learn_cgroups(existing)
        self._expire_unresolved(now)
        n = self.probe.forget_dead(pid_alive)
        if n:
            log.debug("ebpf: forgot %d fd entries of processes gone", n)

    def _learn_cgroups(self, found: dict[str, int]) -> None:
        now = time.monotonic_ns()
        self._seen_cgroups.update((cid, (cg, now)) for cid, cg in found.items())

    def _forget_process(self, tgid: int) -> None:
        for fd in self.table.exit(tgid):
            self.probe.set_fd(tgid, fd, 0)

    # ---- batches ----------------------------------------------------------------------------
    def _flush_partial(self, key: tuple[int, str]) -> None:
        lines = self.lines.flush(key)
        who = self._writer.pop(key, None)
        if lines and who is not None:
            c, tid, comm, file_id = who
            self._add_lines(c, key[0], tid, comm, key[1], lines, file_id)

    def _expire(self, now: int) -> None:
        for key in self.lines.expired(now):
            self._flush_partial(key)
        self.files.unpin(older_than_ns=now - HOLD_NS)  # (a held write is handled within the hold)

    def _add(self, r: Record) -> None:
        if not self._batch:
            self._batch_since = time.monotonic_ns()
        self._batch.append(r)

    def _submit(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        while not self._inflight.acquire(timeout=0.5):  # the pipeline is behind: wait, the ring absorbs
            if self._stop.is_set() and self._loop is not None and self._loop.is_closed():
                self._drops["shutdown"] += len(batch)
                return
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(self._emit_tracked(batch), self._loop)
        self._futures.add(fut)
        fut.add_done_callback(self._emitted)

    async def _emit_tracked(self, batch: list[Record]) -> None:
        """On the event loop (where the sink acknowledges): file records join their file's
        ack window, whose delivered prefix is the file's checkpoint."""
        if self.checkpoints is not None:
            runs: dict[tuple[str, str], list[Record]] = {}
            for r in batch:
                if r.file_id is not None:
                    runs.setdefault((r.container.id, r.file_id), []).append(r)
            for k, recs in runs.items():
                self._window(k).track(recs, [r.seq + len(r.message) + 1 for r in recs])
        await self.emit(batch)

    def _window(self, k: tuple[str, str]) -> AckWindow:
        w = self._windows.get(k)
        if w is None:
            tf, first = self._window_files[k]
            gen, store = tf.gen, self.checkpoints
            assert store is not None

            def advanced(_key: str, mark: int) -> None:
                store.advance(FileCheckpoint(tf.container, tf.path, tf.dev, tf.ino, gen, mark))
            w = self._windows[k] = AckWindow(file_key(*tf.key), advanced, first)
            if len(self._windows) > 4 * 4096:  # windows of files long gone (all delivered)
                for old in [key for key, win in self._windows.items() if not len(win) and key != k][:4096]:
                    del self._windows[old]
                    self._window_files.pop(old, None)
        return w

    def _emitted(self, fut: Future[None]) -> None:
        self._futures.discard(fut)
        self._inflight.release()

    # ---- drops --------------------------------------------------------------------------------
    def _count_container_drops(self) -> None:
        """The kernel's per-cgroup counters (budget, ring full) as per-container counts."""
        got: dict[str, Counter[str]] = {}
        for cg, (events, _nbytes) in self.probe.container_drops().items():
            seen = self._cg_drops_seen.get(cg, (0,) * len(events))
            if events == seen:
                continue
            self._cg_drops_seen[cg] = events
            self._to_sweep.add(cg)
            name = self._cg_names.get(cg) or f"cgroup-{cg}"  # a new container not reported (yet)
            for reason, n, before in zip(E.CG_DROP_REASONS, events, seen, strict=True):
                if n > before:
                    got.setdefault(name, Counter())[reason] += n - before
        if got and self._loop is not None:
            self._loop.call_soon_threadsafe(self._export_container_drops, got)

    def _export_container_drops(self, got: dict[str, Counter[str]]) -> None:
        """Counts per container and reports each container at most once per interval (event loop)."""
        now = time.monotonic()
        for name, drops in got.items():
            for reason, n in drops.items():
                METRICS.count("logship_ebpf_dropped_total", n, container=name, reason=reason)
            pending = self._cg_unreported.setdefault(name, Counter())
            pending.update(drops)
            if now - self._cg_last_warn.get(name, -WARN_INTERVAL_S) >= WARN_INTERVAL_S:
                self._cg_last_warn[name] = now
                log.warning("ebpf: container %s: write events refused in the kernel since the last report: %s "
                            "(logship_ebpf_dropped_total; budget LOGSHIP_EBPF_CONTAINER_RING_BYTES_PER_S=%d)",
                            name, ", ".join(f"{k}={v}" for k, v in sorted(pending.items())),
                            self.settings.container_ring_bytes_per_s)
                del self._cg_unreported[name]
        if len(self._cg_last_warn) > 4096:
            self._cg_last_warn.clear()

    def _count_kernel_drops(self) -> None:
        self._count_container_drops()
        totals = self.probe.drops()
        for i, total in enumerate(totals[:len(self._kernel_drops)]):
            if total > self._kernel_drops[i]:
                self._drops[E.DROP_REASONS[i]] += total - self._kernel_drops[i]
                self._kernel_drops[i] = total
        if self._drops and self._loop is not None:
            drops, self._drops = self._drops, Counter()
            self._loop.call_soon_threadsafe(self._export, drops)
        notes = self.files.notes - self._notes_seen
        if notes and self._loop is not None:
            self._notes_seen = self.files.notes.copy()
            for kind, n in notes.items():
                self._loop.call_soon_threadsafe(functools.partial(METRICS.count, "logship_ebpf_file_events_total", n,
                                                                  kind=kind))

    def _export(self, drops: Counter[str]) -> None:
        """Counts and (at most once per interval) reports drops; runs on the event loop."""
        self._unreported.update(drops)
        for reason, n in drops.items():
            METRICS.count("logship_ebpf_drops_total", n, reason=reason)
        now = time.monotonic()
        if now - self._last_warn >= WARN_INTERVAL_S and self._unreported:
            self._last_warn = now
            log.warning("ebpf: not shipped since the last report: %s (logship_ebpf_drops_total)",
                        ", ".join(f"{k}={v}" for k, v in sorted(self._unreported.items())))
            self._unreported = Counter()


__all__ = ["EbpfSource", "EbpfUnavailable", "from_a_file", "realtime_offset_ns"]
