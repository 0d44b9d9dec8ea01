"""Syscall windows: what the per-thread rings cost a syscall-heavy container, and how soon
a snapshot is searchable.

1. slowdown: a python3 loop of getpid + write(/dev/null) pairs in a container, timed
   inside the container, with the rings probe loaded and the container traced (no
   trigger fires: nothing crosses to user space) vs no probe; runs alternate, medians.
2. snapshot_latency_s: `logship run` with the eBPF source; a container appends
   `Database error` lines to a log file; from each write (the container's clock, the
   host's) to its snapshot document being searchable in Elasticsearch. Goal <= window + 2 s.

Last line: JSON {"slowdown", "snapshot_latency_s", ...}."""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker

from shipper.sources.ebpf.cgroups import cgroup_id
from shipper.config import SnapshotSettings
from shipper.snapshots.ring import RingGeometry, inline_rings

IMAGE = "local/debian:bookworm"
PAIRS = int(os.environ.get("BENCH_SNAPSHOT_PAIRS", "300000"))
RUNS = int(os.environ.get("BENCH_SNAPSHOT_RUNS", "3"))
LOOP = r"""
import os, sys, time
time.sleep(float(sys.argv[2]))
fd = os.open('/dev/null', os.O_WRONLY)
n = int(sys.argv[1]); getpid, write = os.getpid, os.write
t = time.perf_counter()
for _ in range(n):
    getpid(); write(fd, b'x')
print(time.perf_counter() - t)
"""
WRITER = r"""
import sys, time
time.sleep(2)
for i in range(int(sys.argv[1])):
    with open('/var/log/app/php_error.log', 'a') as f:
        t = time.time_ns()
        f.write(f'PHP Warning: Database error {i}\n')
    print(t, flush=True)
    time.sleep(2.5)
time.sleep(30)
"""


def timed_loop(client: docker.DockerClient, bpf: object | None) -> float:
    c = client.containers.run(IMAGE, ["python3", "-c", LOOP, str(PAIRS), "1.5"], detach=True,
                              labels={"logship.test": "1"})
    try:
        if bpf is not None:
            deadline = time.monotonic() + 5
            cg = None
            while cg is None and time.monotonic() < deadline:
                cg = cgroup_id(c.id)
            if cg is None:
                raise RuntimeError(f"no cgroup for container {c.id} after 5 s")
            bpf["shipped_cgroups"][ctypes.c_uint64(cg)] = ctypes.c_uint8(1)  # type: ignore[index]  # bcc's table API is untyped
        c.wait(timeout=600)
        return float(c.logs(stdout=True, stderr=False).decode().split()[-1])
    finally:
        c.remove(force=True)


def slowdown(client: docker.DockerClient) -> tuple[float, float, float]:
    from bcc import BPF

    geom = RingGeometry.from_settings(SnapshotSettings())
    text = inline_rings((ROOT / "tests/integration/bpf/rings_harness.c").read_text())
    bpf = BPF(text=text.encode(), cflags=[f"-DLOGSHIP_SELF_TGID={os.getpid()}", *geom.cflags()])
    off: list[float] = []
    on: list[float] = []
    try:
        timed_loop(client, None)  # warm-up: page cache, image layers
        for i in range(RUNS):
            off.append(timed_loop(client, None))
            on.append(timed_loop(client, bpf))
            print(f"run {i + 1}: probe off {off[-1]:.3f} s, rings on {on[-1]:.3f} s ({PAIRS} getpid+write pairs)")
    finally:
        bpf.cleanup()
    m_off, m_on = statistics.median(off), statistics.median(on)
    return m_off, m_on, m_on / m_off - 1


def es_search(url: str, index: str, body: dict) -> list[dict]:
    req = urllib.request.Request(f"{url}/{index}/_search", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return [h["_source"] for h in json.load(r)["hits"]["hits"]]
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 503):  # not created yet / shards still starting
            return []
        raise


def latency(client: docker.DockerClient, es_url: str, lines: int = 4, **settings: str) -> list[float]:
    prefix = f"lsbench-{uuid.uuid4().hex[:8]}"
    state = tempfile.mkdtemp(prefix="logship-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
    env.update({"LOGSHIP_ES_URL": es_url, "LOGSHIP_ES_INDEX_PREFIX": prefix, "LOGSHIP_STATE_DIR": state,
                "LOGSHIP_EBPF": "on", "LOGSHIP_SNAPSHOT_MESSAGE_REGEX": "Database error",
                "LOGSHIP_HTTP_ADDR": "127.0.0.1:0", "LOGSHIP_ES_FLUSH_INTERVAL_S": "0.2", **settings})
    log = open(Path(state) / "shipper.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "shipper", "run"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    c = None
    try:
        deadline = time.monotonic() + 90
        while b"probe attached" not in (Path(state) / "shipper.log").read_bytes():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the shipper did not attach its probe:\n"
                                   + (Path(state) / "shipper.log").read_text()[-2000:])
            time.sleep(0.2)
        c = client.containers.run(IMAGE, ["python3", "-c", WRITER, str(lines)], detach=True,
                                  tmpfs={"/var/log/app": ""}, labels={"logship.test": "1"})
        seen: dict[str, float] = {}
        deadline = time.monotonic() + 60 + lines * 3
        while len(seen) < lines and time.monotonic() < deadline:
            now = time.time_ns()
            for doc in es_search(es_url, f"{prefix}-snapshots-*", {"size": 100,
                                                                   "query": {"term": {"container.id": c.id}}}):
                sid = doc["logship.snapshot.id"]
                if sid not in seen:
                    seen[sid] = now
            time.sleep(0.1)
        writes = [int(x) for x in c.logs(stdout=True, stderr=False).decode().split()]
        found = sorted(seen.values())
        return [(f - w) / 1e9 for w, f in zip(writes, found, strict=False)]
    finally:
        if c is not None:
            c.remove(force=True)
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            print(f"the shipper did not stop within 60 s of SIGTERM (log: {state}/shipper.log); killed")
            proc.kill()
            proc.wait()
        urllib.request.urlopen(urllib.request.Request(f"{es_url}/{prefix}-*", method="DELETE"), timeout=30).read()


def main() -> None:
    client = docker.from_env(timeout=120)
    es_url = os.environ.get("LOGSHIP_ES_URL", "http://127.0.0.1:9200").split(",")[0]
    m_off, m_on, slow = slowdown(client)
    print(f"median: probe off {m_off:.3f} s, rings on {m_on:.3f} s: slowdown {slow * 100:.1f}% (goal <= 10%)")
    lat = latency(client, es_url)
    window_s = SnapshotSettings().window_after_ms / 1000
    med = statistics.median(lat) if lat else None
    print(f"snapshot latency (write -> searchable), {len(lat)} lines: {', '.join(f'{x:.2f}' for x in lat)} s; "
          f"median {med if med is None else round(med, 2)} s (goal <= window {window_s:.0f} s + 2 s)")
    # The multiline stage holds a line up to LOGSHIP_MULTILINE_TIMEOUT_S before it reaches the trigger.
    lat_nm = latency(client, es_url, LOGSHIP_MULTILINE="false")
    med_nm = statistics.median(lat_nm) if lat_nm else None
    print(f"same with LOGSHIP_MULTILINE=false: {', '.join(f'{x:.2f}' for x in lat_nm)} s; "
          f"median {med_nm if med_nm is None else round(med_nm, 2)} s")
    print(json.dumps({"slowdown": round(slow, 4), "snapshot_latency_s": None if med is None else round(med, 3),
                      "snapshot_latency_s_multiline_off": None if med_nm is None else round(med_nm, 3),
                      "loop_s_probe_off": round(m_off, 3), "loop_s_rings_on": round(m_on, 3), "pairs": PAIRS,
                      "latency_goal_s": window_s + 2}))


if __name__ == "__main__":
    main()
