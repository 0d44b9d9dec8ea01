"""Syscall windows: what they cost the host and the containers, and how soon a snapshot
is searchable. Needs root, dockerd, Elasticsearch (LOGSHIP_ES_URL), gcc and wrk.

Every syscall loop is a C program (bench/snapshots.py writes and builds it): N calls,
repeated, the minimum CPU ns per call of the repetitions (thread CPU time: BPF programs
run in the caller's context, preemption on a shared host does not count); each figure
below is the median over ROUNDS such loops. Four states, measured in one run, in this order:

  none     no shipper, no BPF program
  floor    one empty classic tracepoint pair on an unrelated syscall (getpgid): the
           syscall slow-path tax any syscall tracepoint puts on every process
  capture  `logship run` with the eBPF source, snapshots off (the capture probe alone)
  rings    `logship run`, snapshots on, one container in scope (label logship.snapshots=true)

Keys of the last line (JSON):
  floor_ns            getppid, host process: floor - none
  host_tax_ns         getppid, host process: rings - none            (goal <= 1.25 x floor_ns)
  host_write_tax_ns   write(/dev/null), host process: rings - none   (goal <= 2 x floor_ns)
  rings_slowdown      getpid+write pairs in the container in scope: rings / none - 1  (goal <= 0.30)
  out_of_scope_slowdown  the same loop in a container not in scope: rings / capture - 1 (goal <= 0.05)
  app_throughput_ratio   nginx (nginx-light) in scope serving a small file to wrk, its access
                      log shipped by the probe: requests/s rings / none (goal >= 0.90), every
                      process on every core (the shipper, Elasticsearch, nginx and wrk share them)
  app_throughput_ratio_own_cores  the same with nginx and wrk on one core and the shipper and
                      Elasticsearch on the others (as on a host with cores to spare): what the
                      probe costs inside nginx's own syscalls, apart from the CPU the shipper and
                      Elasticsearch take from a small machine
  shipper_cpu_us_per_request, es_cpu_us_per_request  their CPU during the shared wrk run
  snapshot_latency_s  a `Database error` line written -> its snapshot searchable (goal <= window + 2 s)
  mechanism           what the rings run on (the shipper's /metrics)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker

from shipper.config import SnapshotSettings

IMAGE = "local/debian:bookworm"
NGINX_IMAGE = "local/nginx-light:bench"
ROUNDS = int(os.environ.get("BENCH_SNAPSHOT_ROUNDS", "7"))
CALLS = int(os.environ.get("BENCH_SNAPSHOT_CALLS", "200000"))
WRK_S = int(os.environ.get("BENCH_SNAPSHOT_WRK_S", "8"))
OPT_IN = {"logship.snapshots": "true", "logship.bench": "1"}

CLOOP = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
/* loop MODE N REPS DELAY_S: g = getppid, w = write(/dev/null, 1 byte), p = getpid + write pairs.
   Prints the minimum CPU ns per call (per pair for p) over REPS repetitions of N: the thread's
   CPU time (user + system, BPF programs included), not wall time, which on a shared,
   loaded host is mostly time spent preempted. */
static long long now(void) {
    struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1000000000LL + t.tv_nsec;
}
int main(int argc, char **argv) {
    char m = argv[1][0]; long n = atol(argv[2]); int reps = atoi(argv[3]);
    usleep((useconds_t)(atof(argv[4]) * 1e6));
    int fd = open("/dev/null", O_WRONLY); char b = 'x'; double best = 1e18;
    for (int r = 0; r < reps; r++) {
        long long t = now();
        if (m == 'g') for (long i = 0; i < n; i++) syscall(SYS_getppid);
        else if (m == 'w') for (long i = 0; i < n; i++) write(fd, &b, 1);
        else for (long i = 0; i < n; i++) { syscall(SYS_getpid); write(fd, &b, 1); }
        double d = (double)(now() - t) / n; if (d < best) best = d;
    }
    printf("%.1f\n", best); return 0;
}
"""

FLOOR_BPF = b"""
TRACEPOINT_PROBE(syscalls, sys_enter_getpgid) { return 0; }
TRACEPOINT_PROBE(syscalls, sys_exit_getpgid) { return 0; }
"""

WRITER = r"""
import sys, time
time.sleep(3)
for i in range(int(sys.argv[1])):
    with open('/var/log/app/php_error.log', 'a') as f:
        t = time.time_ns()
        f.write(f'PHP Warning: Database error {i}\n')
    print(t, flush=True)
    time.sleep(2.5)
time.sleep(30)
"""


def sh(*cmd: str, **kw: Any) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def build_loop(d: Path) -> Path:
    (d / "loop.c").write_text(CLOOP)
    sh("gcc", "-O2", "-static", "-o", str(d / "loop"), str(d / "loop.c"))
    return d / "loop"


class Box:
    """A long-running container with the loop mounted; loops run in it by docker exec."""

    def __init__(self, client: docker.DockerClient, bindir: Path, labels: dict[str, str]) -> None:
        self.c = client.containers.run(IMAGE, ["sleep", "3600"], detach=True, network_mode="none",
                                       labels={"logship.bench": "1", **labels},
                                       volumes={str(bindir): {"bind": "/bench", "mode": "ro"}})

    def loop(self, mode: str, delay: float = 1.5) -> float:
        # The delay lets the shipper's scope pass (every 1 s) see the exec'd process.
        return float(sh("docker", "exec", self.c.id, "/bench/loop", mode, str(CALLS), "7", str(delay)))

    def remove(self) -> None:
        self.c.remove(force=True)


def host_loop(loop: Path, mode: str) -> float:
    return float(sh(str(loop), mode, str(CALLS), "7", "0"))


class Shipper:
    def __init__(self, es_url: str, **settings: str) -> None:
        self.prefix = f"lsbench-{uuid.uuid4().hex[:8]}"
        self.state = tempfile.mkdtemp(prefix="logship-bench-")
        self.es_url = es_url
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
        env.update({"LOGSHIP_ES_URL": es_url, "LOGSHIP_ES_INDEX_PREFIX": self.prefix, "LOGSHIP_STATE_DIR": self.state,
                    "LOGSHIP_EBPF": "on", "LOGSHIP_HTTP_ADDR": "127.0.0.1:0", "LOGSHIP_ES_FLUSH_INTERVAL_S": "0.2",
                    **settings})
        self.logfile = Path(self.state) / "shipper.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "shipper", "run"], cwd=ROOT, env=env,
                                     stdout=open(self.logfile, "wb"), stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the shipper did not log {text!r}:\n" + self.log()[-3000:])
            time.sleep(0.2)

    def metrics(self) -> str:
        m = re.search(r"http: listening on ([\d.]+:\d+)", self.log())
        if not m:
            return ""
        with urllib.request.urlopen(f"http://{m.group(1)}/metrics", timeout=10) as r:
            return r.read().decode()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            print(f"the shipper did not stop within 60 s of SIGTERM (log: {self.logfile}); killed")
            self.proc.kill()
            self.proc.wait()
        for what in (f"{self.prefix}-*", f"_index_template/{self.prefix}-*"):  # indices, and the shipper's templates
            try:
                urllib.request.urlopen(urllib.request.Request(f"{self.es_url}/{what}", method="DELETE"),
                                       timeout=30).read()
            except OSError:
                pass
        shutil.rmtree(self.state, ignore_errors=True)


def measure(loop: Path, boxes: dict[str, Box], state: str, samples: dict[str, dict[str, list[float]]]) -> None:
    for _ in range(ROUNDS):
        row = samples.setdefault(state, {})
        row.setdefault("host_getppid", []).append(host_loop(loop, "g"))
        row.setdefault("host_write", []).append(host_loop(loop, "w"))
        for name, box in boxes.items():
            row.setdefault(name, []).append(box.loop("p"))
    med = {k: round(statistics.median(v), 1) for k, v in samples[state].items()}
    print(f"{state:8} ns: " + ", ".join(f"{k} {v}" for k, v in med.items()) + f"  (load {os.getloadavg()[0]:.2f})",
          flush=True)


def floor_rounds(loop: Path, samples: dict[str, dict[str, list[float]]]) -> None:
    """none and floor alternating, so both see the same machine."""
    from bcc import BPF

    b = BPF(text=FLOOR_BPF)
    try:
        for _ in range(ROUNDS):
            b.detach_tracepoint(b"syscalls:sys_enter_getpgid")
            b.detach_tracepoint(b"syscalls:sys_exit_getpgid")
            samples.setdefault("none_floor", {}).setdefault("host_getppid", []).append(host_loop(loop, "g"))
            b.attach_tracepoint(tp=b"syscalls:sys_enter_getpgid", fn_name=b"tracepoint__syscalls__sys_enter_getpgid")
            b.attach_tracepoint(tp=b"syscalls:sys_exit_getpgid", fn_name=b"tracepoint__syscalls__sys_exit_getpgid")
            samples.setdefault("floor", {}).setdefault("host_getppid", []).append(host_loop(loop, "g"))
    finally:
        b.cleanup()


def ensure_nginx_image(client: docker.DockerClient) -> None:
    try:
        client.images.get(NGINX_IMAGE)
        return
    except docker.errors.ImageNotFound:
        pass
    d = Path(tempfile.mkdtemp(prefix="logship-nginx-"))
    (d / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN apt-get update -q && apt-get install -y -q "
                                  "--no-install-recommends nginx-light && rm -rf /var/lib/apt/lists/*\n")
    sh("docker", "build", "-q", "-t", NGINX_IMAGE, str(d), timeout=600)
    shutil.rmtree(d, ignore_errors=True)


def es_pid() -> int | None:
    out = subprocess.run(["pgrep", "-f", "org.elasticsearch.bootstrap.Elasticsearch"], capture_output=True,
                         text=True).stdout.split()
    return int(out[0]) if out else None


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of the process onto `cpus`."""
    sh("taskset", "-a", "-p", "-c", ",".join(map(str, sorted(cpus))), str(pid))


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of the process and its waited-for children."""
    if pid is None:
        return 0.0
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")


class Nginx:
    def __init__(self, client: docker.DockerClient, cpus: set[int] | None = None) -> None:
        # Debian's nginx logs to /var/log/nginx/access.log, a real file: the probe ships it.
        self.cpus = cpus
        extra = {"cpuset_cpus": ",".join(map(str, sorted(cpus)))} if cpus else {}
        self.c = client.containers.run(NGINX_IMAGE, ["nginx", "-g", "daemon off;"], detach=True,
                                       labels=OPT_IN, **extra)
        self.c.reload()
        self.ip = self.c.attrs["NetworkSettings"]["IPAddress"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.ip}/", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("nginx did not answer")

    def wrk(self) -> float:
        cmd = ["wrk", "-t1", "-c8", f"-d{WRK_S}s", f"http://{self.ip}/index.nginx-debian.html"]
        if self.cpus:
            cmd = ["taskset", "-c", ",".join(map(str, sorted(self.cpus))), *cmd]
        out = sh(*cmd)
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def remove(self) -> None:
        self.c.remove(force=True)


def es_search(url: str, index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    req = urllib.request.Request(f"{url}/{index}/_search", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return [h["_source"] for h in json.load(r)["hits"]["hits"]]
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 503):  # not created yet / shards still starting
            return []
        raise


def latency(client: docker.DockerClient, es_url: str, lines: int = 4, **settings: str) -> tuple[list[float], int]:
    """Write -> searchable snapshot, per line, for an opted-in writer; and how many
    snapshots a twin writer that did not opt in got (must be 0)."""
    s = Shipper(es_url, LOGSHIP_SNAPSHOT_MESSAGE_REGEX="Database error", **settings)
    cs: list[Any] = []
    try:
        s.wait_for("syscall rings:")
        c = client.containers.run(IMAGE, ["python3", "-c", WRITER, str(lines)], detach=True,
                                  tmpfs={"/var/log/app": ""}, labels=OPT_IN)
        twin = client.containers.run(IMAGE, ["python3", "-c", WRITER, str(lines)], detach=True,
                                     tmpfs={"/var/log/app": ""}, labels={"logship.bench": "1"})
        cs = [c, twin]
        seen: dict[str, float] = {}
        deadline = time.monotonic() + 60 + lines * 3
        while len(seen) < lines and time.monotonic() < deadline:
            now = time.time_ns()
            query = {"size": 100, "query": {"term": {"container.id": c.id}}}
            for doc in es_search(es_url, f"{s.prefix}-snapshots-*", query):
                sid = doc["logship.snapshot.id"]
                if sid not in seen:
                    seen[sid] = now
            time.sleep(0.1)
        writes = [int(x) for x in c.logs(stdout=True, stderr=False).decode().split()]
        found = sorted(seen.values())
        twin_snaps = len(es_search(es_url, f"{s.prefix}-snapshots-*", {"size": 100,
                                                                       "query": {"term": {"container.id": twin.id}}}))
        return [(f - w) / 1e9 for w, f in zip(writes, found, strict=False)], twin_snaps
    finally:
        for c in cs:
            c.remove(force=True)
        s.stop()


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench/snapshots.py needs root (BPF)")
    if not shutil.which("wrk"):
        sys.exit("bench/snapshots.py needs wrk (apt-get install wrk)")
    client = docker.from_env(timeout=120)
    es_url = os.environ.get("LOGSHIP_ES_URL", "http://127.0.0.1:9200").split(",")[0]
    ensure_nginx_image(client)
    bindir = Path(tempfile.mkdtemp(prefix="logship-loop-"))
    os.chmod(bindir, 0o755)
    loop = build_loop(bindir)
    boxes = {"in_scope": Box(client, bindir, OPT_IN), "out_of_scope": Box(client, bindir, {})}
    samples: dict[str, dict[str, list[float]]] = {}
    rps: dict[str, list[float]] = {}
    cpu_per_req: dict[str, float] = {}
    all_cpus = os.sched_getaffinity(0)
    mechanism = ""
    print(f"uptime: {sh('uptime')}")
    try:
        floor_rounds(loop, samples)
        measure(loop, boxes, "none", samples)
        ngx = Nginx(client)
        # nginx and wrk on the last core, the shipper and Elasticsearch on the others
        app_cpus = {max(all_cpus)} if len(all_cpus) > 1 else set()
        own = Nginx(client, app_cpus) if app_cpus else None
        es = es_pid()
        try:
            ngx.wrk()  # warm-up
            rps.setdefault("none", []).append(ngx.wrk())
            if own:
                own.wrk()
                rps.setdefault("none_own_cores", []).append(own.wrk())
            for state, env in (("capture", {"LOGSHIP_SNAPSHOT_ENABLED": "false"}), ("rings", {})):
                s = Shipper(es_url, **env)
                try:
                    s.wait_for("ebpf: probe attached")
                    if state == "rings":
                        s.wait_for("syscall rings attached")
                        time.sleep(2)
                        mechanism = ",".join(re.findall(r'logship_snapshot_rings_mechanism\{[^}]*mechanism="(\w+)"',
                                                        s.metrics()))
                    measure(loop, boxes, state, samples)
                    if state == "rings":
                        before = cpu_s(s.proc.pid), cpu_s(es)
                        got = ngx.wrk()
                        rps.setdefault(state, []).append(got)
                        reqs = got * WRK_S
                        cpu_per_req = {"shipper": (cpu_s(s.proc.pid) - before[0]) / reqs * 1e6,
                                       "es": (cpu_s(es) - before[1]) / reqs * 1e6}
                        if own:
                            for pid in (s.proc.pid, es):
                                if pid:
                                    pin(pid, all_cpus - app_cpus)
                            try:
                                time.sleep(3)  # (what the shared run left queued)
                                rps.setdefault("rings_own_cores", []).append(own.wrk())
                            finally:
                                for pid in (s.proc.pid, es):
                                    if pid:
                                        pin(pid, all_cpus)
                finally:
                    s.stop()
            measure(loop, boxes, "none", samples)  # again: the machine drifts
            rps["none"].append(ngx.wrk())
            if own:
                rps["none_own_cores"].append(own.wrk())
        finally:
            ngx.remove()
            if own:
                own.remove()
    finally:
        for b in boxes.values():
            b.remove()
        shutil.rmtree(bindir, ignore_errors=True)
    med = {st: {k: statistics.median(v) for k, v in row.items()} for st, row in samples.items()}
    floor_ns = med["floor"]["host_getppid"] - med["none_floor"]["host_getppid"]
    host_tax = med["rings"]["host_getppid"] - med["none"]["host_getppid"]
    host_write_tax = med["rings"]["host_write"] - med["none"]["host_write"]
    rings_slow = med["rings"]["in_scope"] / med["none"]["in_scope"] - 1
    out_slow = med["rings"]["out_of_scope"] / med["capture"]["out_of_scope"] - 1
    capture_slow = med["capture"]["out_of_scope"] / med["none"]["out_of_scope"] - 1
    app_ratio = statistics.median(rps["rings"]) / statistics.median(rps["none"])
    own_ratio = (statistics.median(rps["rings_own_cores"]) / statistics.median(rps["none_own_cores"])
                 if "rings_own_cores" in rps else None)
    print(f"floor {floor_ns:.1f} ns/getppid; host tax {host_tax:.1f} ns/getppid (goal <= {1.25 * floor_ns:.1f}), "
          f"{host_write_tax:.1f} ns/write (goal <= {2 * floor_ns:.1f})")
    print(f"getpid+write pairs: in scope {rings_slow * 100:.1f}% slower (goal <= 30%), not in scope "
          f"{out_slow * 100:.1f}% beyond the capture probe (goal <= 5%; the capture probe alone "
          f"{capture_slow * 100:.1f}%)")
    print(f"nginx requests/s: none {rps['none']}, rings {rps['rings']}: ratio {app_ratio:.3f} (goal >= 0.90)")
    print(f"  the shipper spent {cpu_per_req['shipper']:.1f} us of CPU per request meanwhile, Elasticsearch "
          f"{cpu_per_req['es']:.1f} us (on {len(all_cpus)} cores)")
    if own_ratio is not None:
        print(f"nginx and wrk on their own core: none {rps['none_own_cores']}, rings {rps['rings_own_cores']}: "
              f"ratio {own_ratio:.3f}")
    lat, twin = latency(client, es_url)
    window_s = SnapshotSettings().window_after_ms / 1000
    lat_med = statistics.median(lat) if lat else None
    print(f"snapshot latency (write -> searchable), {len(lat)} lines: {', '.join(f'{x:.2f}' for x in lat)} s "
          f"(goal <= window {window_s:.0f} s + 2 s); snapshots of the twin not in scope: {twin}")
    print(f"uptime: {sh('uptime')}")
    print(json.dumps({
        "floor_ns": round(floor_ns, 1), "host_tax_ns": round(host_tax, 1),
        "host_write_tax_ns": round(host_write_tax, 1),
        "rings_slowdown": round(rings_slow, 4), "out_of_scope_slowdown": round(out_slow, 4),
        "capture_only_slowdown": round(capture_slow, 4), "app_throughput_ratio": round(app_ratio, 3),
        "app_throughput_ratio_own_cores": None if own_ratio is None else round(own_ratio, 3),
        "shipper_cpu_us_per_request": round(cpu_per_req["shipper"], 1),
        "es_cpu_us_per_request": round(cpu_per_req["es"], 1),
        "snapshot_latency_s": None if lat_med is None else round(lat_med, 3), "latency_goal_s": window_s + 2,
        "out_of_scope_snapshots": twin, "mechanism": mechanism,
        "ns": {st: {k: round(v, 1) for k, v in row.items()} for st, row in med.items()},
        "nginx_rps": rps, "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
