"""The per-cgroup ring budget in the kernel probe: a container writing faster than its
budget has its excess write events refused in the kernel and counted for it, while a
quiet container beside it loses nothing."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import threading
import time
from typing import Any

from shipper.config import EbpfSettings
from shipper.core.container import Container, ContainerRegistry
from shipper.core.metrics import METRICS
from shipper.core.record import Record
from shipper.sources.ebpf.cgroups import cgroup_id
from tests.conftest import wait_until

FLOOD_LINES, QUIET_LINES, LINE = 3000, 20, 200
RATE, BURST = 64 << 10, 16 << 10  # bytes/s and bytes of ring per container: the flooder needs ~10x that

# Waits for the go (the probe and the registry know the container), writes, then says so on stdout.
WRITER = r"""
import os, sys, time
n, pause, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + 120
while not os.path.exists("/tmp/go") and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.5)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
for i in range(n):
    os.write(fd, b"%-199d\n" % i)  # LINE bytes
    if pause:
        time.sleep(pause)
print("done", flush=True)
time.sleep(600)
"""


def _writer(containers: Any, image: str, n: int, pause: float, path: str) -> Any:
    c = containers(image, ["python3", "-c", WRITER, str(n), str(pause), path], network_mode="none")
    c.reload()
    return c


def _done(c: Any) -> bool:
    return b"done" in c.logs()


def _go(*cs: Any) -> None:
    for c in cs:
        c.exec_run(["touch", "/tmp/go"])


def _line(i: int) -> bytes:
    return b"%-*d\n" % (LINE - 1, i)


def test_flooding_container_is_cut_to_its_budget_in_the_kernel_and_a_quiet_one_is_not(bpf_ready, containers,
                                                                                      debian_image):
    from shipper.sources.ebpf import events as E
    from shipper.sources.ebpf.loader import Probe

    p = Probe(container_bytes_per_s=RATE, container_burst_bytes=BURST)
    seen: list[Any] = []
    p.open_events(lambda _c, data, size: seen.append(E.decode(ctypes.string_at(data, size))))
    stop = threading.Event()

    def consume() -> None:  # like the source: the probe never wakes its consumer
        while not stop.wait(0.005):
            p.consume()

    drain = threading.Thread(target=consume, daemon=True)
    drain.start()
    try:
        flood = _writer(containers, debian_image, FLOOD_LINES, 0, "/var/log/flood.log")
        quiet = _writer(containers, debian_image, QUIET_LINES, 0.05, "/var/log/quiet.log")
        cg_flood, cg_quiet = cgroup_id(flood.id), cgroup_id(quiet.id)
        assert cg_flood and cg_quiet
        p.add_cgroup(cg_flood)
        p.add_cgroup(cg_quiet)
        _go(flood, quiet)
        t0 = time.monotonic()
        for c in (flood, quiet):
            wait_until(functools.partial(_done, c), 60, what=f"{c.name} to finish writing")
        elapsed = time.monotonic() - t0
        time.sleep(0.2)
        stop.set()
        drain.join()
        p.consume()
        writes = {cg: [e for e in seen if e.kind == E.WRITE and e.cgroup == cg] for cg in (cg_flood, cg_quiet)}
        assert [e.data for e in writes[cg_quiet]] == [_line(i) for i in range(QUIET_LINES)]
        drops = p.container_drops()
        assert cg_quiet not in drops, drops
        (by_reason, nbytes) = drops[cg_flood]
        refused = by_reason[E.CG_DROP_REASONS.index("budget")]
        delivered = len(writes[cg_flood])
        assert refused > 0 and delivered + refused + by_reason[E.CG_DROP_REASONS.index("ring_full")] == FLOOD_LINES
        assert nbytes == refused * (LINE + E.DATA_OFFSET)
        # What got through is the burst plus the rate over the run (a margin for racing CPUs).
        per_event = LINE + E.DATA_OFFSET
        assert delivered <= (BURST + RATE * elapsed) / per_event * 1.2 + 4, (delivered, elapsed)
        assert p.drops()[E.DROP_REASONS.index("budget")] == refused
    finally:
        stop.set()
        p.close()


def test_the_source_counts_budget_drops_per_container_and_reads_the_refused_bytes_from_the_file(
        bpf_ready, containers, debian_image):
    """The flooder's write events past its budget are refused in the kernel and counted for it;
    its file keeps the bytes, read from the cursor once it is idle: every line of both arrives, once."""
    from shipper.sources.ebpf.source import EbpfSource

    got: list[Record] = []

    async def emit(batch: list[Record]) -> None:
        got.extend(batch)

    async def scenario() -> tuple[Any, Any]:
        registry = ContainerRegistry()
        settings = EbpfSettings(container_ring_bytes_per_s=RATE, container_ring_burst_bytes=BURST)
        task = await EbpfSource(settings, emit, registry, mode="on").start()
        try:
            flood = _writer(containers, debian_image, FLOOD_LINES, 0, "/var/log/flood.log")
            quiet = _writer(containers, debian_image, QUIET_LINES, 0.05, "/var/log/quiet.log")
            for c in (flood, quiet):
                registry.add(Container(id=c.id, name=c.name, image=debian_image))
            await asyncio.sleep(0.5)  # the poll thread's scan of them
            _go(flood, quiet)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                    sum(r.container.id == quiet.id for r in got) >= QUIET_LINES
                    and sum(r.container.id == flood.id for r in got) >= FLOOD_LINES
                    and METRICS.get("logship_ebpf_dropped_total", container=flood.name, reason="budget")):
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            return flood, quiet
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    flood, quiet = asyncio.run(scenario())
    assert sorted(r.message for r in got if r.container.id == quiet.id) == sorted(
        _line(i).rstrip(b"\n") for i in range(QUIET_LINES))
    assert METRICS.get("logship_ebpf_dropped_total", container=flood.name, reason="budget") > 0
    assert METRICS.get("logship_ebpf_dropped_total", container=quiet.name, reason="budget") == 0
    flooded = [r for r in got if r.container.id == flood.id]
    nums = sorted(int(r.message) for r in flooded)
    assert nums == list(range(FLOOD_LINES)), (len(nums), sorted(set(range(FLOOD_LINES)) - set(nums))[:20],
                                              [n for n in set(nums) if nums.count(n) > 1][:20])
    assert len({r.doc_id() for r in flooded}) == FLOOD_LINES
