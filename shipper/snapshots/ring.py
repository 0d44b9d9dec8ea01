"""User-space side of syscall_rings.c: the ctypes mirror of its entries, the -D defines
that size it, reading a thread's ring, arming a thread and draining the streamed events.

Kernel time is bpf_ktime_get_ns (CLOCK_MONOTONIC); records carry epoch ns, so this
module converts with one offset measured at start."""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from shipper.config import SnapshotSettings

RINGS_C = Path(__file__).resolve().parents[1] / "sources" / "ebpf" / "syscall_rings.c"
ENTRY_HEADER_BYTES = 88  # struct rs_entry without data (see syscall_rings.c)
DATA_NONE, DATA_IO, DATA_PATH, DATA_SOCKADDR = 0, 1, 2, 3


def inline_rings(text: str) -> str:
    """A probe source with `#include "syscall_rings.c"` replaced by the file's text: bcc
    loads and attaches only the functions of its main file."""
    return text.replace('#include "syscall_rings.c"', RINGS_C.read_text())


@dataclass(frozen=True, slots=True)
class RingGeometry:
    entries: int  # power of two
    threads: int
    data_bytes: int  # multiple of 8, >= 128 (paths and sockaddrs share the field)
    capture_data: bool

    @classmethod
    def from_settings(cls, s: SnapshotSettings) -> "RingGeometry":
        entries = 1 << max(1, (max(2, s.ring_entries) - 1).bit_length())
        data = max(128, (s.data_bytes + 7) // 8 * 8)
        return cls(entries, max(1, s.max_threads), data, s.capture_data)

    @property
    def entry_bytes(self) -> int:
        return ENTRY_HEADER_BYTES + self.data_bytes

    @property
    def memory_bytes(self) -> int:
        """Kernel memory of the preallocated ring map."""
        return self.threads * (8 + self.entries * self.entry_bytes)

    def cflags(self) -> list[str]:
        return [f"-DLOGSHIP_RING_ENTRIES={self.entries}", f"-DLOGSHIP_RING_THREADS={self.threads}",
                f"-DLOGSHIP_DATA_BYTES={self.data_bytes}", f"-DLOGSHIP_CAPTURE_DATA={int(self.capture_data)}"]

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

    def arm(self, tid: int, until_epoch_ns: int) -> None:
        key = ctypes.c_uint32(tid)
        until = until_epoch_ns - self.offset
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
        try:
            cur = self.armed[key]
            sent, lost = int(cur.sent), int(cur.lost)
            del self.armed[key]
            return sent, lost
        except KeyError:
            return 0, 0

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
