"""Docker source throughput: container stdout -> shipper -> a blackhole `_bulk` endpoint,
beside `docker logs --follow` on the same container in the same run (the Docker API's own rate).

The lines are the realistic mix of bench/mix.py (access logs, JSON, logfmt, syslog, language
loggers with stack traces, free text; the shares are printed); the old figure, lines of 199
`x` (free text parsing skips in one step), is kept as a secondary one (`x_line_*`, --x-runs).
The shipper's CPU and what dockerd spends meanwhile (streaming the log to the shipper; the
json-file was written before the clock starts) are reported separately, per million lines.
Prints human lines, then a last line of JSON (medians): lines_per_s, docker_logs_lines_per_s,
ratio, cpu_s_per_million (shipper), dockerd_cpu_s_per_million_added, rss_mib, mix, x_line_*,
api_* (the same mix read through the API instead of the json-files: the peer, same run).

    .venv/bin/python bench/docker_source.py [--lines 500000] [--runs 3] [--x-runs 1]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGE = "local/busybox:latest"
LINE_BYTES = 200  # the x line, with its newline

from bench.mix import describe, mix_lines, shares


def blackhole(port: int, counter: Synchronized[int]) -> None:
    """A tiny ES stand-in: counts and discards bulk documents, answers per-item 201s."""

    from aiohttp import web

    async def bulk(request: web.Request) -> web.Response:
        body = await request.read()
        n = body.count(b"\n") // 2
        with counter.get_lock():
            counter.value += n
        item = b'{"create":{"_index":"x","_id":"i","status":201,"result":"created"}}'
        return web.Response(body=b'{"took":1,"errors":false,"items":[' + b",".join([item] * n) + b"]}",
                            content_type="application/json")

    async def anything(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "green", "cluster_name": "blackhole", "nodes": {}})

    app = web.Application(client_max_size=256 << 20)
    app.router.add_post("/_bulk", bulk)
    app.router.add_route("*", "/{tail:.*}", anything)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (a profiler's child, anything the shipper may spawn)."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents.setdefault(int(_stat(int(d.name))[1]), []).append(int(d.name))
            except (OSError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, ()))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and all its descendants (live ones, read now)."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = _stat(p)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_peak_mib(pid: int) -> float:
    """Sum of the peak RSS of the process and its descendants (an upper bound of the total)."""
    total = 0.0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def expected_documents(lines: list[bytes]) -> int:
    """How many documents the shipper makes of these lines (its multi-line stage joins traces)."""
    from shipper.core.container import Container
    from shipper.core.record import Record
    from shipper.transforms.multiline import MultilineStage

    stage, c = MultilineStage(), Container(id="0" * 64, name="bench", image=IMAGE)
    return len(stage.feed([Record(x, i, "stdout", c) for i, x in enumerate(lines)], 0.0)) + len(stage.flush())


def make_container(lines: int, tag: str, workdir: Path, mix: list[bytes] | None) -> str:
    """A container that prints the lines (the mix from a read-only mounted file, or x lines) and stays up."""
    if mix is None:
        body = "x" * (LINE_BYTES - 1)
        script, mount = f"yes {body} | head -n {lines}; sleep 3600", []
    else:
        (workdir / "mix.log").write_bytes(b"\n".join(mix) + b"\n")
        script, mount = "cat /bench/mix.log; sleep 3600", ["-v", f"{workdir}:/bench:ro"]
    cid = docker("run", "-d", "--network", "none", "--label", f"logship.bench={tag}", "--label", "logship.test=1",
                 *mount, IMAGE, "sh", "-c", script)
    # wait until everything is in the json-file: both sides then read the same bytes
    deadline = time.monotonic() + 300
    path = docker("inspect", "-f", "{{.LogPath}}", cid)
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b"")) >= lines:
                    return cid
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("the container did not print its lines in time")


def dockerd_pid() -> int:
    """The daemon behind /var/run/docker.sock (tests' private daemons are younger)."""
    return int(subprocess.run(["pgrep", "-o", "-x", "dockerd"], capture_output=True, text=True).stdout.split()[0])


def dockerd_background(seconds: float = 2.0) -> float:
    """dockerd's CPU-s per second while we ask nothing of it: the shared machine's other
    containers and clients. Subtracted from what it spends while the shipper reads."""
    daemon = dockerd_pid()
    d0, t0 = cpu_seconds(daemon), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(daemon) - d0) / (time.monotonic() - t0)


def docker_logs_rate(cid: str, lines: int, cpu: dict[str, list[float]]) -> float:
    """`docker logs --follow` (the same follow path of dockerd the shipper uses), timed
    until it has passed every line; the container still runs, so it is then stopped.
    Appends dockerd's and the CLI's CPU-s per million lines to `cpu`."""
    daemon = dockerd_pid()
    d0 = cpu_seconds(daemon)
    t0 = time.monotonic()
    p = subprocess.Popen(["docker", "logs", "--follow", "--timestamps", cid], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    seen = 0
    assert isinstance(p.stdout, io.BufferedReader)
    while seen < lines:
        buf = p.stdout.read1(1 << 20)
        if not buf:
            break
        seen += buf.count(b"\n")
    elapsed = time.monotonic() - t0
    cpu["dockerd_with_docker_logs"].append((cpu_seconds(daemon) - d0) / seen * 1e6)
    cpu["docker_logs_cli"].append(cpu_seconds(p.pid) / seen * 1e6)
    p.kill()
    p.wait()
    return seen / elapsed


def shipper_run(port: int, counter, tag: str, lines: int, docs: int, state: Path, cpu: dict[str, list[float]],
                sink_pid: int, background: float, extra_env: dict[str, str]) -> tuple[float, float, float]:
    """Ships the container's `lines` (which make `docs` documents); rate and CPU are per line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
    env.update({
        "LOGSHIP_ES_URL": f"http://127.0.0.1:{port}", "LOGSHIP_ES_SETUP": "false", "LOGSHIP_EBPF": "off",
        "LOGSHIP_STATE_DIR": str(state), "LOGSHIP_HTTP_ADDR": "",
        "LOGSHIP_DOCKER_INCLUDE_LABELS": f"logship.bench={tag}",
        "LOGSHIP_LOG_LEVEL": "info", "LOGSHIP_SNAPSHOT_ENABLED": "false", **extra_env,
    })
    # BENCH_SHIPPER_ENV="LOGSHIP_X=1 LOGSHIP_Y=2": settings to try
    env.update(kv.partition("=")[::2] for kv in os.environ.get("BENCH_SHIPPER_ENV", "").split())
    with counter.get_lock():
        counter.value = 0
    log = open(state / "shipper.log", "ab")
    # BENCH_WRAP="py-spy record -o prof.svg --" profiles the shipper (its CPU then includes py-spy's)
    wrap = os.environ.get("BENCH_WRAP", "").split()
    p = subprocess.Popen([*wrap, sys.executable, "-m", "shipper", "run"], cwd=ROOT, env=env, stdout=log,
                         stderr=subprocess.STDOUT)
    try:
        # Clock and CPU start when the shipper attaches to the container (its log says so):
        # interpreter start-up is not the hot path, and a source that reads faster than the
        # sink's first answer would have done much of its work before a first delivery.
        deadline = time.monotonic() + 120
        while b"docker: attached to" not in (state / "shipper.log").read_bytes():
            if p.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"shipper failed:\n{(state / 'shipper.log').read_text()[-3000:]}")
            time.sleep(0.002)
        daemon = dockerd_pid()
        others0 = cpu_seconds(daemon), cpu_seconds(sink_pid)
        cpu0, t0 = cpu_seconds(p.pid), time.monotonic()
        deadline = t0 + 600
        # The clock stops at the last line but one: the multi-line stage holds the very last
        # line for LOGSHIP_MULTILINE_TIMEOUT_S (a continuation may follow), by design, not
        # for lack of speed. It must still arrive, checked below.
        while counter.value < docs - 1:
            if p.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"shipper failed:\n{(state / 'shipper.log').read_text()[-3000:]}")
            time.sleep(0.005)
        elapsed = time.monotonic() - t0
        used = cpu_seconds(p.pid) - cpu0
        n = round((docs - 1) * lines / docs)  # lines, from the documents delivered
        dockerd = cpu_seconds(daemon) - others0[0]
        cpu["dockerd_with_shipper"].append(dockerd / n * 1e6)
        cpu["dockerd_added"].append((dockerd - background * elapsed) / n * 1e6)
        cpu["blackhole"].append((cpu_seconds(sink_pid) - others0[1]) / n * 1e6)
        rss = rss_peak_mib(p.pid)
        last_deadline = time.monotonic() + 10
        while counter.value < docs:
            if time.monotonic() > last_deadline:
                raise SystemExit(f"the last document never arrived ({counter.value} of {docs})")
            time.sleep(0.02)
    finally:
        if wrap:
            tree = process_tree(p.pid)
            p.send_signal(signal.SIGINT)  # a profiler writes its output on SIGINT
            p.wait(60)
            for pid in tree[1:]:  # the shipper under it
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        else:
            p.kill()
            p.wait()
    return n / elapsed, used / n * 1e6, rss


def measure(port: int, counter, server: mp.Process, lines: int, runs: int, mix: list[bytes] | None,
            label: str, extra_env: dict[str, str] | None = None) -> dict:
    tag = uuid.uuid4().hex[:8]
    docs = lines if mix is None else expected_documents(mix)
    rates, dl_rates, cpus, rsss, ratios = [], [], [], [], []
    # The machine's CPU budget beside it: who else spends how much per line in each phase.
    others: dict[str, list[float]] = {k: [] for k in ("dockerd_with_docker_logs", "docker_logs_cli",
                                                      "dockerd_with_shipper", "dockerd_added", "blackhole")}
    with tempfile.TemporaryDirectory(prefix="logship-bench-mix-") as work:
        print(f"{label}: preparing a container with {lines:,} lines ({docs:,} documents) ...", flush=True)
        cid = make_container(lines, tag, Path(work), mix)
        try:
            for i in range(runs):
                # docker logs right before and right after: the machine's load drifts, so each
                # shipper run is compared with the mean of its two neighbours.
                before = docker_logs_rate(cid, lines, others)
                background = dockerd_background()
                with tempfile.TemporaryDirectory(prefix="logship-bench-") as d:
                    assert server.pid is not None
                    rate, cpu, rss = shipper_run(port, counter, tag, lines, docs, Path(d), others, server.pid,
                                                 background, extra_env or {})
                dl = (before + docker_logs_rate(cid, lines, others)) / 2
                ratios.append(rate / dl)
                print(f"{label} run {i + 1}: shipper {rate:,.0f} lines/s, docker logs {dl:,.0f} lines/s, "
                      f"{cpu:.2f} CPU-s per million (dockerd +{others['dockerd_added'][-1]:.2f}, net of its "
                      f"background {background:.2f} CPU-s/s), "
                      f"peak RSS {rss:.0f} MiB; load {os.getloadavg()[0]:.2f}", flush=True)
                rates.append(rate)
                dl_rates.append(dl)
                cpus.append(cpu)
                rsss.append(rss)
        finally:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
    med = statistics.median
    out = {"lines_per_s": round(med(rates)), "docker_logs_lines_per_s": round(med(dl_rates)),
           "ratio": round(med(ratios), 3),  # the median of the per-run ratios
           "cpu_s_per_million": round(med(cpus), 2),
           # dockerd while the shipper reads, less its background (the json-file was written before)
           "dockerd_cpu_s_per_million_added": round(med(others["dockerd_added"]), 2),
           "rss_mib": round(med(rsss), 1), "lines": lines, "documents": docs, "runs": runs,
           **{f"{k}_cpu_s_per_million": round(med(v), 2) for k, v in others.items()}}
    print(f"{label} median: {out['lines_per_s']:,} lines/s = {out['ratio']:.0%} of docker logs; "
          f"shipper {out['cpu_s_per_million']} CPU-s per million lines, dockerd +"
          f"{out['dockerd_cpu_s_per_million_added']}; {out['rss_mib']} MiB RSS")
    print(f"{label} CPU-s per million lines beside it: " + ", ".join(f"{k} {med(v):.2f}" for k, v in others.items()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--x-runs", type=int, default=1, help="runs of the secondary figure on x lines (0: none)")
    ap.add_argument("--api-runs", type=int, default=1,
                    help="runs on the mix through the Docker API (LOGSHIP_DOCKER_READ_FILES=never), the peer (0: none)")
    args = ap.parse_args()
    port = 9268
    counter = mp.Value("q", 0)
    server = mp.Process(target=blackhole, args=(port, counter), daemon=True)
    server.start()
    load0 = os.getloadavg()
    try:
        mix = mix_lines(args.lines)
        print(describe(mix), flush=True)
        out = measure(port, counter, server, args.lines, args.runs, mix, "mix")
        out["mix"] = shares()
        out["mix_mean_bytes"] = round(sum(map(len, mix)) / len(mix) + 1)
        if args.api_runs:
            api = measure(port, counter, server, args.lines, args.api_runs, mix, "mix via the API",
                          {"LOGSHIP_DOCKER_READ_FILES": "never"})
            out.update({f"api_{k}": api[k] for k in ("lines_per_s", "cpu_s_per_million",
                                                     "dockerd_cpu_s_per_million_added", "rss_mib")})
            out["lines_per_s_vs_api"] = round(out["lines_per_s"] / api["lines_per_s"], 2)
        del mix
        if args.x_runs:
            x = measure(port, counter, server, args.lines, args.x_runs, None, "x line")
            out.update({f"x_line_{k}": x[k] for k in ("lines_per_s", "docker_logs_lines_per_s", "cpu_s_per_million",
                                                      "dockerd_cpu_s_per_million_added", "rss_mib")})
    finally:
        server.terminate()
    out["cores"] = os.cpu_count()
    out["load_avg_1m"] = [round(load0[0], 2), round(os.getloadavg()[0], 2)]  # at start, at end
    print(json.dumps(out))


if __name__ == "__main__":
    main()
