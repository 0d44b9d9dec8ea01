"""User-space side of syscall_rings.c: its own BPF object (loaded once, attached while a
container is in snapshot scope), the ctypes mirror of its entries, the -D defines that
size it, the per-tgid scope map, reading a thread's ring, arming a thread and draining
the streamed events.

Kernel time is bpf_ktime_get_ns (CLOCK_MONOTONIC); records carry epoch ns, so this
module converts with one offset measured at start."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from shipper.config import SnapshotSettings

log = logging.getLogger("logship.snapshots")

RINGS_C = Path(__file__).resolve().parents[1] / "sources" / "ebpf" / "syscall_rings.c"
ENTRY_HEADER_BYTES = 88  # struct rs_entry without data (see syscall_rings.c)
DATA_NONE, DATA_IO, DATA_PATH, DATA_SOCKADDR = 0, 1, 2, 3
FENTRY, TRACEPOINT = "fentry", "tracepoint"
TRACEFS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))


def ring_syscalls(text: str | None = None) -> list[str]:
    """The syscalls syscall_rings.c keeps (its RS(name, nr, nargs) lines): one list for both sides."""
    return re.findall(r"^RS\((\w+), \d+, \d\)$", text if text is not None else RINGS_C.read_text(), re.M)


def pid_max() -> int:
    try:
        return max(1024, int(Path("/proc/sys/kernel/pid_max").read_text()))
    except (OSError, ValueError):
        return 1 << 22  # the kernel's upper bound


@dataclass(frozen=True, slots=True)
class RingGeometry:
    entries: int  # power of two
    threads: int
    data_bytes: int  # the entry's data field: multiple of 8, >= 128 (paths and sockaddrs share it)
    capture_data: bool
    io_bytes: int = 80  # bytes of each read/write kept (the excerpt, sysdig's snaplen)
    pids: int = 32768  # size of the per-tgid scope map (the kernel's pid_max)

    @classmethod
    def from_settings(cls, s: SnapshotSettings, pids: int | None = None) -> "RingGeometry":
        entries = 1 << max(1, (max(2, s.ring_entries) - 1).bit_length())
        data = max(128, (s.data_bytes + 7) // 8 * 8)
        return cls(entries, max(1, s.max_threads), data, s.capture_data and s.data_bytes > 0, s.data_bytes,
                   pid_max() if pids is None else pids)

    @property
    def entry_bytes(self) -> int:
        return ENTRY_HEADER_BYTES + self.data_bytes

    @property
    def memory_bytes(self) -> int:
        """Kernel memory of the preallocated ring map and the scope map."""
        return self.threads * (8 + self.entries * self.entry_bytes) + self.pids * 8

    def cflags(self) -> list[str]:
        return [f"-DLOGSHIP_RING_ENTRIES={self.entries}", f"-DLOGSHIP_RING_THREADS={self.threads}",
                f"-DLOGSHIP_DATA_BYTES={self.data_bytes}", f"-DLOGSHIP_CAPTURE_DATA={int(self.capture_data)}",
                f"-DLOGSHIP_IO_BYTES={self.io_bytes}", f"-DLOGSHIP_PID_MAX={self.pids}"]

    def entry_type(self) -> type[ctypes.Structure]:
        class Entry(ctypes.Structure):
            _fields_ = [("ts", ctypes.c_uint64), ("dur", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6),
                        ("ret", ctypes.c_int64), ("tid", ctypes.c_uint32), ("nr", ctypes.c_uint16),
                        ("data_len", ctypes.c_uint16), ("kind", ctypes.c_uint8), ("done", ctypes.c_uint8),
                        ("pad", ctypes.c_uint8 * 6), ("data", ctypes.c_char * self.data_bytes)]
        assert ctypes.sizeof(Entry) == self.entry_bytes
        return Entry


@dataclass(slots=True)
class Syscall:
    """One ring entry, decoded from the kernel layout; times in epoch ns."""
    ts_ns: int
    dur_ns: int
    tid: int
    nr: int
    args: tuple[int, ...]
    ret: int
    done: bool
    kind: int = DATA_NONE
    data: bytes = b""

    @property
    def key(self) -> tuple[int, int]:
        return (self.ts_ns, self.nr)


@dataclass(slots=True)
class RingRead:
    head: int  # syscalls the thread completed since its ring was made
    overwritten: int = 0  # completed syscalls of this thread the ring no longer holds
    entries: list[Syscall] = field(default_factory=list)  # oldest first


def to_syscall(raw: Any, mono_to_epoch: int) -> Syscall:
    n = min(int(raw.data_len), type(raw).data.size)  # not len(raw.data): c_char arrays stop at a NUL
    return Syscall(ts_ns=raw.ts + mono_to_epoch, dur_ns=raw.dur, tid=raw.tid, nr=raw.nr, args=tuple(raw.args),
                   ret=raw.ret, done=bool(raw.done), kind=raw.kind,
                   data=ctypes.string_at(ctypes.addressof(raw) + type(raw).data.offset, n) if n else b"")


def decode_ring(head: int, slots: list[Any], tid: int, mono_to_epoch: int) -> RingRead:
    """Slots in ring order -> the thread's entries oldest first. The slot at `head` is
    the syscall in progress (or a stale one from the previous lap: skipped)."""
    size = len(slots)
    out: list[Syscall] = []
    for k in range(min(head, size), 0, -1):
        raw = slots[(head - k) % size]
        if k == size and not raw.done:
            continue  # the oldest slot, already reused by the syscall in progress
        if raw.tid == tid and raw.ts:
            out.append(to_syscall(raw, mono_to_epoch))
    kept = len(out)
    cur = slots[head % size]
    if cur.tid == tid and cur.ts and not cur.done:
        out.append(to_syscall(cur, mono_to_epoch))
    out.sort(key=lambda s: s.ts_ns)
    return RingRead(head, head - kept, out)


def mono_to_epoch_offset() -> int:
    # Bracket the monotonic read to keep the error below a microsecond or so.
    m0 = time.monotonic_ns()
    e = time.time_ns()
    m1 = time.monotonic_ns()
    return e - (m0 + m1) // 2


class RingMaps:
    """The kernel maps of syscall_rings.c in a loaded bcc BPF object."""

    def __init__(self, bpf: Any, geometry: RingGeometry) -> None:
        self.geometry = geometry
        self.entry = geometry.entry_type()

        class Ring(ctypes.Structure):
            _fields_ = [("head", ctypes.c_uint64), ("e", self.entry * geometry.entries)]

        class Armed(ctypes.Structure):
            _fields_ = [("until", ctypes.c_uint64), ("sent", ctypes.c_uint64), ("lost", ctypes.c_uint64)]

        self.Ring, self.Armed = Ring, Armed
        self.rings = bpf["rings"]
        self.armed = bpf["armed_tids"]
        self._armed_any = bpf["armed_any"]
        self._armed_tids: set[int] = set()
        self.offset = mono_to_epoch_offset()
        self._bpf = bpf
        self._rb_manager: int | None = None
        self._rb_cb: Any = None

    def read(self, tid: int) -> RingRead:
        try:
            raw = self.rings[ctypes.c_uint32(tid)]
        except KeyError:
            return RingRead(0)
        ring = ctypes.cast(ctypes.pointer(raw), ctypes.POINTER(self.Ring)).contents
        return decode_ring(int(ring.head), list(ring.e), tid, self.offset)

    def _set_armed_any(self) -> None:
        self._armed_any[ctypes.c_int(0)] = ctypes.c_uint32(1 if self._armed_tids else 0)

    def arm(self, tid: int, until_epoch_ns: int) -> None:
        key = ctypes.c_uint32(tid)
        until = until_epoch_ns - self.offset
        if not self._armed_tids:
            self._armed_tids.add(tid)
            self._set_armed_any()
        self._armed_tids.add(tid)
        try:
            cur = self.armed[key]
            if cur.until >= until:
                return
            self.armed[key] = self.Armed(until, cur.sent, cur.lost)
        except KeyError:
            self.armed[key] = self.Armed(until, 0, 0)

    def disarm(self, tid: int) -> tuple[int, int]:
        """Stop streaming the thread; returns (sent, lost) over its arming."""
        key = ctypes.c_uint32(tid)
        self._armed_tids.discard(tid)
        try:
            cur = self.armed[key]
            sent, lost = int(cur.sent), int(cur.lost)
            del self.armed[key]
            return sent, lost
        except KeyError:
            return 0, 0
        finally:
            if not self._armed_tids:
                self._set_armed_any()

    def lost(self, tid: int) -> int:
        try:
            return int(self.armed[ctypes.c_uint32(tid)].lost)
        except KeyError:
            return 0

    def open_stream(self, on_syscall: Callable[[Syscall], None]) -> None:
        """A ring-buffer manager of our own (not the BPF object's shared one), so draining
        it never runs or races the log source's ring-buffer callbacks."""
        from bcc.libbcc import _RINGBUF_CB_TYPE, lib

        entry, offset = self.entry, self.offset

        def cb(_ctx: Any, data: Any, size: int) -> int:
            if size >= ctypes.sizeof(entry):
                on_syscall(to_syscall(ctypes.cast(data, ctypes.POINTER(entry)).contents, offset))
            return 0

        self._rb_cb = _RINGBUF_CB_TYPE(cb)
        mgr = lib.bpf_new_ringbuf(self._bpf["snap_events"].map_fd, self._rb_cb, None)
        if not mgr:
            raise RuntimeError("could not open the snap_events ring buffer")
        self._rb_manager = mgr

    def drain(self) -> None:
        if self._rb_manager:
            from bcc.libbcc import lib
            lib.bpf_consume_ringbuf(self._rb_manager)

    def close(self) -> None:
        if self._rb_manager:
            from bcc.libbcc import lib
            lib.bpf_free_ringbuf(self._rb_manager)
            self._rb_manager = None


def tracepoint_exists(category: str, event: str) -> bool:
    return any((d / "events" / category / event).is_dir() for d in TRACEFS)


def _fentry_fn(prefix: str, name: str) -> str:
    return f"{prefix}____x64_sys_{name}"


SCHED_FNS = ("tracepoint__sched__sched_process_fork", "tracepoint__sched__sched_process_exit")


def _sched_tp(fn: str) -> bytes:
    return fn.removeprefix("tracepoint__").replace("__", ":", 1).encode()


class RingProgram:
    """syscall_rings.c as its own BPF object: compiled and loaded once (maps and all),
    its programs attached only while some container is in scope.

    The mechanism is fentry/fexit on the syscalls' entry points where the kernel allows
    it (no syscall slow path for anyone), else one classic tracepoint pair per syscall.
    `mechanism` and `fallback` (why fentry was not used) are shown by `logship check`
    and /metrics."""

    def __init__(self, geometry: RingGeometry, *, self_tgid: int | None = None, prefer_fentry: bool = True) -> None:
        from bcc import BPF  # imported here: bcc is optional (the eBPF source explains its absence)

        self.geometry = geometry
        self.syscalls = ring_syscalls()
        self.fallback = ""
        cflags = ["-Wno-unused-function", *geometry.cflags()]
        text = RINGS_C.read_text().encode()
        self.bpf: Any = None
        # A small fentry program first: where the kernel refuses them (EPERM here) the full
        # fentry build would only double the start-up compile (seconds on a loaded host).
        refused = fentry_refusal() if prefer_fentry else "not preferred"
        if refused is None:
            try:
                self.bpf = BPF(text=text, cflags=[*cflags, "-DRS_FENTRY"])
                self.mechanism = FENTRY
            except Exception as exc:  # noqa: BLE001 - any refusal falls back to tracepoints
                refused = describe_refusal(exc)
        if refused is not None:
            self.fallback = f"fentry refused: {refused}"
        if self.bpf is None:
            self.bpf = BPF(text=text, cflags=cflags)
            self.mechanism = TRACEPOINT
        self.self_tgid = os.getpid() if self_tgid is None else self_tgid
        self.attached = True  # bcc attached the autoloaded programs (kfunc__, tracepoint__) at load
        self.detach()
        self.scope = self.bpf["scope_tgids"]
        self._in_scope: set[int] = set()

    # ---- attach / detach ------------------------------------------------------------
    def attach(self) -> None:
        if self.attached:
            return
        b = self.bpf
        if self.mechanism == FENTRY:
            for name in self.syscalls:
                b.attach_kfunc(fn_name=_fentry_fn("kfunc", name).encode())
                b.attach_kretfunc(fn_name=_fentry_fn("kretfunc", name).encode())
        else:
            for name in self.syscalls:
                if not tracepoint_exists("syscalls", f"sys_enter_{name}"):
                    continue  # not on this kernel (or architecture): the window just lacks it
                b.attach_tracepoint(tp=f"syscalls:sys_enter_{name}".encode(), fn_name=f"rs_enter_{name}".encode())
                b.attach_tracepoint(tp=f"syscalls:sys_exit_{name}".encode(), fn_name=f"rs_exit_{name}".encode())
        for fn in SCHED_FNS:
            b.attach_tracepoint(tp=_sched_tp(fn), fn_name=fn.encode())
        self.attached = True

    def detach(self) -> None:
        if not self.attached:
            return
        b = self.bpf
        for fn in SCHED_FNS:
            _quietly(b.detach_tracepoint, _sched_tp(fn))
        for name in self.syscalls:
            if self.mechanism == FENTRY:
                _quietly(b.detach_kfunc, _fentry_fn("kfunc", name).encode())
                _quietly(b.detach_kretfunc, _fentry_fn("kretfunc", name).encode())
            else:
                _quietly(b.detach_tracepoint, f"syscalls:sys_enter_{name}".encode())
                _quietly(b.detach_tracepoint, f"syscalls:sys_exit_{name}".encode())
        self.attached = False

    # ---- scope: which processes keep rings ---------------------------------------------
    def set_scope(self, tgids: Iterable[int]) -> tuple[int, int]:
        """Makes these processes (and the children the kernel adds as they fork) the ones
        with rings; returns (added, removed). Never the shipper itself."""
        want = {t for t in tgids if 0 < t < self.geometry.pids and t != self.self_tgid}
        add, drop = want - self._in_scope, self._in_scope - want
        self._update(add, 1)
        self._update(drop, 0)
        self._in_scope = want
        return len(add), len(drop)

    def clear_scope(self) -> None:
        """Every entry to 0, also those the kernel set at forks user space never saw."""
        keys = (ctypes.c_int * self.geometry.pids)(*range(self.geometry.pids))
        vals = (ctypes.c_uint32 * self.geometry.pids)()
        try:
            self.scope.items_update_batch(keys, vals)
        except Exception:  # noqa: BLE001 - no batch ops (old kernel): one by one
            for k in range(self.geometry.pids):
                self.scope[ctypes.c_int(k)] = ctypes.c_uint32(0)
        self._in_scope = set()

    def _update(self, tgids: set[int], value: int) -> None:
        for t in tgids:
            self.scope[ctypes.c_int(t)] = ctypes.c_uint32(value)

    def close(self) -> None:
        self.detach()
        self.bpf.cleanup()


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - not attached (a syscall this kernel lacks): nothing to undo
        pass


def describe_refusal(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno == errno.EPERM or any(
            w in text for w in ("Operation not permitted", "EPERM", "Need super-user privileges")):
        return "EPERM (the kernel refuses BPF_PROG_TYPE_TRACING programs here, even as root)"
    return text.splitlines()[-1][:200] if text.strip() else type(exc).__name__


def fentry_refusal() -> str | None:
    """None when this kernel loads an fentry program (bcc KFUNC_PROBE), else why not;
    a program of its own, small, for `logship check`."""
    try:
        from bcc import BPF
    except ImportError as exc:
        return f"bcc not importable: {exc}"
    if not BPF.support_kfunc():
        return "bcc reports no kfunc (fentry) support on this kernel"
    try:
        b = BPF(text=b"KFUNC_PROBE(__x64_sys_read, const void *regs) { return 0; }")
    except Exception as exc:  # noqa: BLE001
        return describe_refusal(exc)
    b.cleanup()
    return None
