"""Compiles and attaches probe.c; owns the kernel maps user space writes to. (The
syscall rings of the snapshots are a BPF object of their own: snapshots/ring.py.)"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from shipper.config import EbpfSettings
from shipper.sources.ebpf.events import CG_DROP_REASONS, FD_GONE, FD_SKIP, clears, same_open

PROBE = Path(__file__).with_name("probe.c")
BPF_NOEXIST = 1  # bpf_update_elem flag: create only
MAX_PID_SLOTS = 1 << 22  # the kernel's own pid_max limit; 8 bytes each per array


def pid_slots() -> int:
    """Entries of the per-pid arrays: the host's pid_max (pids beyond are decided per syscall, slower)."""
    try:
        return min(MAX_PID_SLOTS, max(1024, int(Path("/proc/sys/kernel/pid_max").read_text())))
    except (OSError, ValueError):
        return 32768


def budget_cflags(bytes_per_s: int, burst_bytes: int) -> list[str]:
    """The per-cgroup ring budget as the probe's defines: ns of ring time per KiB, burst in ns (0: none)."""
    if bytes_per_s <= 0:
        return ["-DLOGSHIP_BUDGET_NS_PER_KIB=0"]
    ns_per_kib = max(1, round(1e9 * 1024 / bytes_per_s))
    return [f"-DLOGSHIP_BUDGET_NS_PER_KIB={ns_per_kib}ULL",
            f"-DLOGSHIP_BUDGET_BURST_NS={max(0, burst_bytes) * ns_per_kib // 1024}ULL"]



CAPTURE_MAX = 65536


def capture_size(requested: int) -> int:
    """The capture length rounded up to a power of two (the probe masks with it), 64..CAPTURE_MAX."""
    n = 64
    while n < min(max(requested, 64), CAPTURE_MAX):
        n <<= 1
    return n


class FdKey(ctypes.Structure):
    _fields_ = [("tgid", ctypes.c_uint32), ("fd", ctypes.c_uint32)]


class CgDrops(ctypes.Structure):  # probe.c struct cg_drops
    _fields_ = [("events", ctypes.c_uint64 * len(CG_DROP_REASONS)), ("bytes", ctypes.c_uint64)]


class Probe:
    def __init__(self, *, self_tgid: int | None = None, capture_bytes: int | None = None, ring_pages: int = 4096,
                 container_bytes_per_s: int = 0, container_burst_bytes: int = 0,
                 extra_cflags: Iterable[str] = ()) -> None:
        from bcc import BPF  # imported here: bcc is optional (diagnose.py explains its absence)
        from bcc.utils import get_possible_cpus

        self.capture = capture_size(EbpfSettings().capture_bytes if capture_bytes is None else capture_bytes)
        pages = 1 << max(0, (max(1, ring_pages) - 1).bit_length())  # a power of two
        cflags = [
            f"-I{PROBE.parent}",
            f"-DLOGSHIP_SELF_TGID={os.getpid() if self_tgid is None else self_tgid}",
            f"-DLOGSHIP_CAPTURE={self.capture}",
            f"-DLOGSHIP_NCPU={max(get_possible_cpus()) + 1}",
            f"-DLOGSHIP_RINGBUF_PAGES={pages}",
            f"-DLOGSHIP_PID_SLOTS={pid_slots()}",
            *budget_cflags(container_bytes_per_s, container_burst_bytes),
            "-Wno-unused-function",
            *extra_cflags,
        ]
        self.bpf: Any = BPF(text=PROBE.read_text().encode(), cflags=cflags)
        self._cgroups = self.bpf[b"shipped_cgroups"]
        self._fd_state = self.bpf[b"fd_state"]
        self._drops = self.bpf[b"drops"]
        self._cg_drops = self.bpf[b"cg_drops"]
        self._gen = 0
        self.mechanism = "tracepoint"  # classic syscall tracepoints (no kprobes/fentry for the capture)

    # ---- maps user space keeps current --------------------------------------------
    def _changed(self) -> None:
        """The shipped set changed: every process's cached filter decision is made again."""
        self._gen = (self._gen + 1) & 0x3FFFFFFF
        self.bpf[b"filter_gen"][ctypes.c_int(0)] = ctypes.c_uint32(self._gen)

    def add_cgroup(self, cgroup: int) -> None:
        self._cgroups[ctypes.c_uint64(cgroup)] = ctypes.c_uint8(1)
        self._changed()

    def remove_cgroup(self, cgroup: int) -> None:
        try:
            del self._cgroups[ctypes.c_uint64(cgroup)]
        except KeyError:
            pass
        self._changed()

    def container_drops(self) -> dict[int, tuple[tuple[int, ...], int]]:
        """Per cgroup: write events the kernel refused, by CG_DROP_REASONS, and their bytes."""
        return {int(k.value): (tuple(int(n) for n in v.events), int(v.bytes)) for k, v in self._cg_drops.items()}

    def forget_cgroup_counters(self, cgroup: int) -> None:
        """A container gone: its budget and counters leave the (bounded) maps."""
        for name in (b"cg_drops", b"cg_budget"):
            try:
                del self.bpf[name][ctypes.c_uint64(cgroup)]
            except KeyError:
                pass

    def watch_parent(self, level: int, cgroup: int) -> None:
        """Trace new cgroups under this one (at this level of the cgroup v2 tree) before they are shipped."""
        watch = self.bpf[b"watch"]
        watch[ctypes.c_int(1)] = ctypes.c_uint64(cgroup)
        watch[ctypes.c_int(0)] = ctypes.c_uint64(level)
        self._changed()

    def unclaim(self, cgroup: int) -> None:
        """A cgroup under the watched parent that is not shipped: stop tracing it."""
        self.bpf[b"unclaimed_cgroups"][ctypes.c_uint64(cgroup)] = ctypes.c_uint8(1)
        self._changed()

    def claim(self, cgroup: int) -> None:
        try:
            del self.bpf[b"unclaimed_cgroups"][ctypes.c_uint64(cgroup)]
        except KeyError:
            return
        self._changed()

    def forget_unclaimed(self, existing: set[int]) -> None:
        """Drops unclaimed cgroups that no longer exist (the map is bounded)."""
        m = self.bpf[b"unclaimed_cgroups"]
        for k in [k for k in m.keys() if k.value not in existing]:
            try:
                del m[k]
            except KeyError:
                pass

    def set_fd(self, tgid: int, fd: int, value: int) -> None:
        key = FdKey(tgid, fd)
        if value:
            self._fd_state[key] = ctypes.c_uint32(value)
        else:
            try:
                del self._fd_state[key]
            except KeyError:
                pass

    def adopt_fd(self, tgid: int, fd: int, value: int) -> bool:
        """Sets what /proc said an fd is (a scan, a fork's copy) only where the kernel has no
        entry: one it has was set since tracing began, so is newer than any /proc read
        (BPF_NOEXIST makes that one atomic step). Whether it was set."""
        from bcc.libbcc import lib
        key, leaf = FdKey(tgid, fd), ctypes.c_uint32(value)
        return int(lib.bpf_update_elem(self._fd_state.map_fd, ctypes.byref(key), ctypes.byref(leaf),
                                       BPF_NOEXIST)) == 0

    def close_fd(self, tgid: int, fd: int, seen: int) -> None:
        """The fd no longer is what it was (close_range, close-on-exec; `seen`, its value as
        of that event): GONE, not deleted, so neither a fallback to the parent's fds nor a
        later adopt_fd brings it back; unless it was reopened since (a child's close_range,
        exec, then its own log at the same number, all before user space read the first)."""
        if clears(self.fd_state(tgid, fd), seen):
            self.set_fd(tgid, fd, FD_GONE)

    def skip_fd(self, tgid: int, fd: int, seen: int) -> None:
        """Marks the fd no log, unless it was reopened since user space saw value `seen`."""
        if same_open(self.fd_state(tgid, fd), seen):
            self.set_fd(tgid, fd, (seen & ~0xFF) | FD_SKIP)

    def unskip_fd(self, tgid: int, fd: int, seen: int) -> None:
        """Sends the fd's writes again (`seen`, the value its events carried), unless it was
        closed or reopened since skip_fd."""
        if self.fd_state(tgid, fd) == (seen & ~0xFF) | FD_SKIP:
            self.set_fd(tgid, fd, seen)

    def fd_state(self, tgid: int, fd: int) -> int:
        try:
            return int(self._fd_state[FdKey(tgid, fd)].value)
        except KeyError:
            return 0

    def forget_dead(self, alive: Callable[[int], bool]) -> int:
        """Removes the fd entries of processes that are gone; returns how many."""
        dead = [k for k in self._fd_state.keys() if not alive(k.tgid)]
        for k in dead:
            try:
                del self._fd_state[k]
            except KeyError:
                pass
        return len(dead)

    def drops(self) -> list[int]:
        """Per-reason totals of the kernel's per-CPU drop counters."""
        return [sum(v) for _, v in sorted(self._drops.items(), key=lambda kv: kv[0].value)]

    # ---- events ----------------------------------------------------------------------
    def open_events(self, callback: Callable[[Any, Any, int], int | None]) -> None:
        self.bpf[b"events"].open_ring_buffer(callback)

    def consume(self) -> None:
        """Runs the callback for every event in the ring, without waiting, until it returns
        a negative number: the probe never wakes its consumer (BPF_RB_NO_WAKEUP), so the
        caller consumes on a timer."""
        self.bpf.ring_buffer_consume()

    def close(self) -> None:
        self.bpf.cleanup()
