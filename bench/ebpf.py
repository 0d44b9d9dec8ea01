"""eBPF source bench: what the probe costs a writer, and whether the consumer keeps up.

1. Overhead: python3 in a local/debian:bookworm container writes 100-byte lines with
   os.write to an O_APPEND `.log` file, as fast as it can; CPU ns per write (the writer's
   user + system time, which includes the probe's BPF programs) with and without
   the probe attached (and the container in its cgroup filter), alternating, same run,
   median of 5 rounds each.
2. Sustained: the same writer paced at 50,000 writes/s for 30 s with the eBPF source
   running (poll thread, fd table, line assembly, Records to a counting emit): every line
   must arrive, drops (kernel ring full, user space) must be 0; consumer CPU is this
   process's CPU time over the run (cores).
3. Buffered: 400,000 realistic lines (access log, JSON, logfmt, a Python logger's line;
   88-106 bytes) through Python's default buffered text file, as fast as it goes: each
   write() carries 8 KiB, cut mid-line. Run with the default capture (the whole write is
   copied) and with a 4 KiB capture (the rest read back from the file), alternating, 3
   rounds each: lines/s (written to all received), the consumer's CPU per line and the
   writer's CPU per line (its system time includes the probe's copy); every line must
   arrive whole.

Prints human lines, then a last line of JSON:
`{"slowdown", "added_ns_per_write", "drops", "consumer_cpu", "buffered_lines_per_s",
"buffered_cpu_ns_per_line", "buffered_cpu_ratio_vs_4k", "buffered_writer_ratio_vs_4k", ...}`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shipper.sources.ebpf.cgroups import cgroup_id
from shipper.config import EbpfSettings
from shipper.core.container import Container, ContainerRegistry
from shipper.core.metrics import METRICS

IMAGE = "local/debian:bookworm"
LINE = 100
ROUNDS = 15
WRITES = 100_000
RATE = 50_000
SECONDS = 30
BUFFERED_LINES = 400_000

# Paced writer for the sustained run: `n` lines at `rate`/s, prints how long it took.
PACED = r"""
import os, sys, time
n, rate, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
w = os.write
step = rate // 100  # writes per 10 ms tick
start = time.monotonic()
i = 0
while i < n:
    for _ in range(min(step, n - i)):
        w(fd, b"%098d\n" % i)
        i += 1
    lag = start + i / rate - time.monotonic()
    if lag > 0:
        time.sleep(lag)
print(time.monotonic() - start)
"""

# Overhead writer: one long-lived process; each line on stdin is a count of 100-byte
# writes to do; it answers the CPU ns per write (user + system time, BPF programs
# included), not wall time: on a shared 2-core host, time spent preempted would drown
# the difference being measured.
TIMED = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
w, line = os.write, b"x" * 99 + b"\n"
for cmd in sys.stdin:
    n = int(cmd)
    os.ftruncate(fd, 0)
    t = time.process_time_ns()
    for _ in range(n):
        w(fd, line)
    print((time.process_time_ns() - t) / n, flush=True)
"""


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def start_container() -> str:
    try:
        sh("docker", "image", "inspect", IMAGE)
    except subprocess.CalledProcessError:
        sh(str(ROOT / "scripts" / "provision.sh"), "debian-image")
    return sh("docker", "run", "-d", "--rm", "--network", "none", "--label", "logship.bench=1", IMAGE, "sleep", "3600")


# Buffered writer: line i of `n` is TEMPLATES[i % 4] % i, through a default text file
# (Python's buffered writer: 8 KiB per write()). Prints its wall and CPU seconds.
TEMPLATES = (
    '10.0.3.17 - - [03/Dec/2026:10:00:00 +0000] "GET /api/v1/orders/%06d HTTP/1.1" 200 5123 "-" "Mozilla/5.0"',
    '{"ts":"2026-12-03T10:00:00.123Z","level":"info","logger":"orders","msg":"order %06d paid","ms":12}',
    'time=2026-12-03T10:00:00Z level=warn msg="slow query" id=%06d took_ms=912 table=orders',
    '2026-12-03 10:00:00,123 ERROR [worker-3] payment gateway timed out for order %06d; retrying in 2 s',
)
BUFFERED = r"""
import sys, time
n, path, templates = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
start, cpu = time.monotonic(), time.process_time()
with open(path, "a") as f:
    for i in range(n):
        f.write(templates[i % 4] % i + "\n")
print(time.monotonic() - start, time.process_time() - cpu)
"""


def write_buffered(cid: str, n: int, path: str) -> tuple[float, float]:
    wall, cpu = sh("docker", "exec", cid, "python3", "-c", BUFFERED, str(n), path, *TEMPLATES).split()
    return float(wall), float(cpu)


def write_paced(cid: str, n: int, rate: int, path: str = "/var/log/bench.log") -> float:
    out = sh("docker", "exec", cid, "python3", "-c", PACED, str(n), str(rate), path)
    sh("docker", "exec", cid, "truncate", "-s", "0", path)
    return float(out)


def toggle(probe: Any, on: bool) -> None:
    """Attach or detach every tracepoint of the probe (compiled once for the whole run)."""
    b = probe.bpf
    for fn in TRACEPOINT_FNS:
        tp = fn.removeprefix("tracepoint__").replace("__", ":", 1)
        if on:
            b.attach_tracepoint(tp=tp, fn_name=fn)
        else:
            b.detach_tracepoint(tp)


def tracepoint_fns() -> list[str]:
    src = (ROOT / "shipper" / "sources" / "ebpf" / "probe.c").read_text()
    return [f"tracepoint__{c}__{e}" for c, e in re.findall(r"TRACEPOINT_PROBE\((\w+), (\w+)\)", src)]


TRACEPOINT_FNS = tracepoint_fns()


class Writer:
    """A long-lived TIMED writer process (in the container, or on the host)."""

    def __init__(self, cmd: list[str], path: str) -> None:
        self.p = subprocess.Popen([*cmd, "python3", "-c", TIMED, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)

    def run(self, n: int) -> float:
        assert self.p.stdin and self.p.stdout
        self.p.stdin.write(f"{n}\n")
        self.p.stdin.flush()
        return float(self.p.stdout.readline())

    def close(self) -> None:
        assert self.p.stdin
        self.p.stdin.close()
        self.p.wait()


def overhead(cid: str) -> dict[str, tuple[float, float, float]]:
    """Per writer (the container's log writer; a host process the filter rejects): median
    CPU ns per write without and with the probe, and the median paired difference."""
    from shipper.sources.ebpf.loader import Probe

    cg = cgroup_id(cid)
    assert cg is not None, "no cgroup for the bench container"
    probe = Probe()
    probe.add_cgroup(cg)
    probe.open_events(lambda *_: None)
    stop = threading.Event()

    def drain() -> None:  # consume like the source does, so the ring never fills
        while not stop.wait(0.005):
            probe.consume()

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    host_file = f"/tmp/logship-bench-{os.getpid()}.log"
    writers = {"container": Writer(["docker", "exec", "-i", cid], "/var/log/bench.log"),
               "host": Writer([], host_file)}
    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in writers}
    attached = True
    try:
        for w in writers.values():
            w.run(20_000)  # warm up
        for r in range(ROUNDS):
            for on in ((False, True) if r % 2 == 0 else (True, False)):
                if on != attached:
                    toggle(probe, on)
                    attached = on
                for name, w in writers.items():
                    samples[name][on].append(w.run(WRITES))
            without, with_ = samples["container"]
            print(f"round {r + 1}: {without[-1]:.0f} CPU ns/write without the probe, {with_[-1]:.0f} with", flush=True)
    finally:
        for w in writers.values():
            w.close()
        stop.set()
        t.join()
        probe.close()
        Path(host_file).unlink(missing_ok=True)
    return {name: (statistics.median(a), statistics.median(b),
                   statistics.median(y - x for x, y in zip(a, b, strict=True)))
            for name, (a, b) in samples.items()}


async def sustained(cid: str) -> dict[str, float]:
    from shipper.sources.ebpf.source import EbpfSource

    received = 0

    async def emit(batch: list) -> None:
        nonlocal received
        received += len(batch)

    registry = ContainerRegistry()
    task = await EbpfSource(EbpfSettings(), emit, registry, mode="on").start()
    registry.add(Container(id=cid, name="bench", image=IMAGE, pid=0))
    await asyncio.sleep(0.3)
    n = RATE * SECONDS
    cpu0, t0 = time.process_time(), time.monotonic()
    took = await asyncio.to_thread(write_paced, cid, n, RATE)
    deadline = time.monotonic() + 30
    while received < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    drops = METRICS.total("logship_ebpf_drops_total")
    return {"lines": n, "received": received, "writer_s": took, "wall_s": wall, "cpu_s": cpu, "drops": drops,
            "rate": n / took}


async def buffered(cid: str, capture: int) -> dict[str, float]:
    from shipper.sources.ebpf.source import EbpfSource

    received = whole = 0
    lengths = [len(t % 0) for t in TEMPLATES]

    async def emit(batch: list) -> None:
        nonlocal received, whole
        received += len(batch)
        for r in batch:
            m = re.search(rb"\d{6}", r.message)
            whole += m is not None and len(r.message) == lengths[int(m[0]) % 4] and not r.truncated

    registry = ContainerRegistry()
    task = await EbpfSource(EbpfSettings(capture_bytes=capture), emit, registry, mode="on").start()
    registry.add(Container(id=cid, name="bench", image=IMAGE, pid=0))
    await asyncio.sleep(0.3)
    n = BUFFERED_LINES
    cpu0, t0 = time.process_time(), time.monotonic()
    path = f"/var/log/buffered-{time.monotonic_ns()}.log"  # a file of its own: read back while the round lasts
    took, writer_cpu = await asyncio.to_thread(write_buffered, cid, n, path)
    deadline = time.monotonic() + 60
    while received < n and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    sh("docker", "exec", cid, "rm", path)
    return {"lines": n, "received": received, "whole": whole, "writer_s": took, "wall_s": wall, "cpu_s": cpu,
            "lines_per_s": received / wall, "cpu_ns_per_line": cpu / max(1, received) * 1e9,
            "writer_ns_per_line": writer_cpu / n * 1e9}


def buffered_rounds(cid: str) -> dict[int, dict[str, float]]:
    """Medians over alternating rounds, by capture size (the default, and 4 KiB)."""
    default = EbpfSettings().capture_bytes
    runs: dict[int, list[dict[str, float]]] = {default: [], 4096: []}
    for r in range(3):
        for cap in ((default, 4096) if r % 2 == 0 else (4096, default)):
            runs[cap].append(asyncio.run(buffered(cid, cap)))
            b = runs[cap][-1]
            print(f"buffered, capture {cap}: {b['lines']:.0f} lines in {b['writer_s']:.2f} s, received "
                  f"{b['received']:.0f} ({b['whole']:.0f} whole) in {b['wall_s']:.2f} s: {b['lines_per_s']:.0f} "
                  f"lines/s, consumer {b['cpu_ns_per_line']:.0f} CPU ns/line, writer {b['writer_ns_per_line']:.0f}",
                  flush=True)
    return {cap: {k: statistics.median(x[k] for x in xs) if k != "whole" else min(x[k] for x in xs)
                  for k in xs[0]} for cap, xs in runs.items()}


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench/ebpf.py needs root (BPF)")
    cid = start_container()
    try:
        o = overhead(cid)
        base, probed, added = o["container"]
        print(f"100-byte O_APPEND writes to a .log file in a container: {base:.0f} CPU ns without the probe, "
              f"{probed:.0f} with, {added:.0f} added (medians of {ROUNDS} paired rounds)")
        print(f"the same writes by a host process (not traced): {o['host'][0]:.0f} CPU ns without, "
              f"{o['host'][1]:.0f} with, {o['host'][2]:.0f} added")
        s = asyncio.run(sustained(cid))
        lost = s["lines"] - s["received"]
        print(f"sustained: {s['lines']:.0f} lines at {s['rate']:.0f}/s over {s['writer_s']:.1f} s, "
              f"received {s['received']:.0f} (missing {lost:.0f}), drops {s['drops']:.0f}, "
              f"consumer {s['cpu_s'] / s['wall_s']:.2f} cores")
        rounds = buffered_rounds(cid)
        b, b4 = rounds[EbpfSettings().capture_bytes], rounds[4096]
        print(json.dumps({
            "slowdown": round(added / base, 4),
            "added_ns_per_write": round(added, 1),
            "drops": max(s["drops"], lost),  # lines the kernel could not queue are both
            "consumer_cpu": round(s["cpu_s"] / s["wall_s"], 3),
            "ns_per_write_without": round(base, 1),
            "ns_per_write_with": round(probed, 1),
            "sustained_rate": round(s["rate"]),
            "added_ns_per_untraced_write": round(o["host"][2], 1),
            "lines_missing": lost,
            "buffered_lines_per_s": round(b["lines_per_s"]),
            "buffered_cpu_ns_per_line": round(b["cpu_ns_per_line"]),
            "buffered_writer_ns_per_line": round(b["writer_ns_per_line"]),
            "buffered_lines_missing": b["lines"] - b["whole"],
            "buffered_4k_lines_per_s": round(b4["lines_per_s"]),
            "buffered_4k_cpu_ns_per_line": round(b4["cpu_ns_per_line"]),
            "buffered_4k_writer_ns_per_line": round(b4["writer_ns_per_line"]),
            "buffered_cpu_ratio_vs_4k": round(b["cpu_ns_per_line"] / b4["cpu_ns_per_line"], 3),
            "buffered_writer_ratio_vs_4k": round(b["writer_ns_per_line"] / b4["writer_ns_per_line"], 3),
        }))
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


if __name__ == "__main__":
    main()
