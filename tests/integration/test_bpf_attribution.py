"""A bcc program loads on this kernel, sees a write() made inside a container, and the
cgroup id it reports is the container's (the attribution the eBPF source relies on)."""

from __future__ import annotations

import ctypes
import time
from pathlib import Path

from shipper.sources.ebpf.cgroups import cgroup_id


def test_write_inside_container_is_attributed_to_its_cgroup(bpf_ready, containers, busybox):
    from bcc import BPF

    b = BPF(text=(Path(__file__).parent / "bpf" / "marked_writes.c").read_text())
    seen: list[tuple[int, bytes]] = []

    def on_event(ctx, data, size):
        class Ev(ctypes.Structure):
            _fields_ = [("cgroup_id", ctypes.c_uint64), ("tgid", ctypes.c_uint32), ("count", ctypes.c_uint32),
                        ("comm", ctypes.c_char * 16), ("data", ctypes.c_char * 48)]
        ev = ctypes.cast(data, ctypes.POINTER(Ev)).contents
        seen.append((ev.cgroup_id, bytes(ev.data)))

    b["events"].open_ring_buffer(on_event)
    try:
        c = containers(busybox, ["sh", "-c", "sleep 1; echo LOGSHIP-MARK-in-container > /tmp/x; sleep 30"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(b"in-container" in d for _, d in seen):
            b.ring_buffer_poll(200)
        marks = [cg for cg, d in seen if b"in-container" in d]
        assert marks, "the probe saw no write from the container"
        expected = cgroup_id(c.id)
        assert expected is not None, "no cgroup directory found for the container"
        assert marks[0] == expected
    finally:
        b.cleanup()
