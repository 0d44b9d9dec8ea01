"""Fairness under a flood: one container writing as fast as it can (stdout, and a `*.log` file
the eBPF source ships) beside quiet containers writing 10 lines/s each (stdout, and the same
lines to their own `*.log` file), through the real shipper (eBPF on), real dockerd and a real
Elasticsearch.

Measured: every quiet line arrives once (`quiet_lost`, `quiet_duplicated`: from Elasticsearch's
counts per container and stream against what each wrote); write-to-searchable of the quiet
stdout lines (Docker's write time is in the `_id`'s first 16 hex digits; "searchable" is when the
search, polling every 0.25 s, that first returned it began: it was searchable by then; when that
search answered is reported beside it, `..._to_answer_`, the difference being the measure's own
search time under the flood); a line never seen within 5 s of its write counts as infinitely
late; the shipper's RSS (max of VmRSS sampled every 0.5 s) against the documented
bound (`rss_bound_mib`: 1.5 x LOGSHIP_MEMORY_LIMIT_MB + RSS_BASE_MIB, README "Memory and fairness");
what the flood got through (`flood_lines_per_s`, documents in Elasticsearch over the run) and
what it lost, by reason, from /metrics.

    .venv/bin/python bench/fairness.py [--seconds 60] [--quiet 20] [--es URL] [--memory-mb 128]

Prints human lines, then a last line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMAGE = "local/busybox:latest"
# The documented bound (README "Memory and fairness"): the shipper's own RSS (Python, aiohttp; bcc's
# compiler with the eBPF source) plus the limit, with room for the allocator's slack.
RSS_BASE_MIB = {"on": 250, "off": 80}
RSS_SLACK = 1.5
WINDOW_S = 5.0  # a quiet line not searchable this long after its write counts as infinitely late
POLL_S = 0.25

FLOOD = ("(while :; do echo 'flood file line: GET /api/items/42 200 0.003 user=bench'; done) >>/var/log/flood.log & "
         "while :; do echo 'flood stdout line: GET /api/items/42 200 0.003 user=bench'; done")
QUIET = ("i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo \"quiet line $i of $HOSTNAME\"; "
         "echo \"quiet file line $i of $HOSTNAME\" >>/var/log/quiet.log; sleep 0.1; done; touch /tmp/done; sleep 3600")


def req(url: str, body: Any = None, method: str | None = None, timeout: float = 30) -> Any:
    data = None if body is None else json.dumps(body).encode()
    r = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                               headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=120).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def metrics(url: str) -> dict[str, float]:
    """name{labels} -> value, of the families the bench reports."""
    out: dict[str, float] = {}
    try:
        text = req(url + "/metrics", timeout=120)
    except OSError as exc:
        print(f"/metrics: {exc!r}", flush=True)
        return out
    for line in text.splitlines():
        if line.startswith(("logship_pipeline_", "logship_ebpf_drops", "logship_docker_gap", "logship_lines_in",
                            "logship_docker_attach_dropped", "logship_es_deadletter", "logship_http_logs",
                            "logship_queue_", "logship_es_bulk_latency_seconds_sum",
                            "logship_es_bulk_latency_seconds_count", "logship_es_spooled")):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


class SearchablePoller(threading.Thread):
    """Polls Elasticsearch for the quiet containers' stdout lines written in the last WINDOW_S and
    notes when each `_id` is first seen."""

    def __init__(self, es: str, prefix: str, names: str) -> None:
        super().__init__(daemon=True)
        self.es, self.prefix, self.names = es, prefix, names
        self.seen: dict[str, float] = {}  # _id -> write-to-searchable seconds (the search's start)
        self.answered: dict[str, float] = {}  # _id -> write-to-answer seconds (the search's end)
        self.stop = threading.Event()
        self.errors = 0
        self.durations: list[float] = []  # of each search

    def run(self) -> None:
        q = {"size": 10000, "_source": False, "sort": ["_doc"], "query": {"bool": {"filter": [
            {"term": {"stream": "stdout"}}, {"prefix": {"container.name": self.names}},
            {"range": {"@timestamp": {"gte": f"now-{int(WINDOW_S)}s"}}}]}}}
        while not self.stop.is_set():
            t = time.time()
            try:
                hits = req(f"{self.es}/{self.prefix}-2*/_search?ignore_unavailable=true", q)["hits"]["hits"]
            except (OSError, KeyError, ValueError):
                self.errors += 1
                hits = []
            now = time.time()
            self.durations.append(now - t)
            for h in hits:
                i = h["_id"]
                if i not in self.seen:
                    written = int(i[:16], 16) / 1e9
                    self.seen[i], self.answered[i] = t - written, now - written
            self.stop.wait(max(0.0, POLL_S - (time.time() - t)))


def latencies(seen: dict[str, float], n: int) -> tuple[list[float], float]:
    """Sorted, with a line never seen as infinitely late, and the p99."""
    lat = sorted(seen.values()) + [float("inf")] * max(0, n - len(seen))
    return lat, (lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("inf"))


def counts(es: str, prefix: str, names: str) -> dict[tuple[str, str], int]:
    body = {"size": 0, "query": {"prefix": {"container.name": names}}, "aggs": {"c": {
        "terms": {"field": "container.name", "size": 1000}, "aggs": {"s": {"terms": {"field": "stream"}}}}}}
    try:
        r = req(f"{es}/{prefix}-2*/_search?ignore_unavailable=true", body)
    except OSError:
        return {}
    return {(b["key"], s["key"]): s["doc_count"] for b in r["aggregations"]["c"]["buckets"]
            for s in b["s"]["buckets"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--quiet", type=int, default=20)
    ap.add_argument("--es", default=os.environ.get("LOGSHIP_ES_URL", "http://127.0.0.1:9200"))
    ap.add_argument("--memory-mb", type=int, default=128)
    ap.add_argument("--ebpf", default="on", choices=("on", "off"))
    ap.add_argument("--no-flood", action="store_true", help="the quiet containers alone: the peer to compare with")
    ap.add_argument("--env", action="append", default=[], help="LOGSHIP_X=value for the shipper (repeatable)")
    args = ap.parse_args()
    tag = uuid.uuid4().hex[:8]
    prefix, names = f"fair{tag}", f"fair-{tag}-q"
    port = free_port()
    load0 = os.getloadavg()
    lines_each = args.seconds * 10
    cids: list[str] = []
    work = tempfile.mkdtemp(prefix="logship-fair-")
    log = Path(work) / "shipper.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
    env.update({"LOGSHIP_ES_URL": args.es, "LOGSHIP_ES_INDEX_PREFIX": prefix, "LOGSHIP_EBPF": args.ebpf,
                "LOGSHIP_STATE_DIR": work, "LOGSHIP_HTTP_ADDR": f"127.0.0.1:{port}",
                "LOGSHIP_SNAPSHOT_ENABLED": "false", "LOGSHIP_DOCKER_INCLUDE_LABELS": f"logship.bench={tag}",
                "LOGSHIP_MEMORY_LIMIT_MB": str(args.memory_mb), "LOGSHIP_ES_RETENTION": "off"})
    env.update(kv.split("=", 1) for kv in args.env)
    shipper = subprocess.Popen([sys.executable, "-m", "shipper", "run"], cwd=ROOT, env=env, stdout=log.open("ab"),
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    poller = SearchablePoller(args.es, prefix, names)
    rss: list[float] = []
    try:
        deadline = time.monotonic() + 300
        while b"docker: following events" not in log.read_bytes():
            if shipper.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"shipper did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        rss_idle = rss_mib(shipper.pid)
        print(f"shipper up (RSS {rss_idle:.0f} MiB); load {load0[0]:.1f}", flush=True)
        poller.start()  # before the first container: its first lines are measured too
        common = ["run", "-d", "--network", "none", "--label", f"logship.bench={tag}", "--label", "logship.test=1"]
        cids.append(docker(*common, "--name", f"fair-{tag}-flood", IMAGE, "sh", "-c",
                           "sleep 3600" if args.no_flood else FLOOD))
        for k in range(args.quiet):
            cids.append(docker(*common, "--name", f"{names}{k:02d}", "--hostname", f"q{k:02d}", IMAGE, "sh", "-c",
                               QUIET.format(n=lines_each)))
        t0 = time.monotonic()
        quiet_ids = cids[1:]
        next_check = t0 + 5
        while time.monotonic() - t0 < args.seconds * 4 + 120:
            rss.append(rss_mib(shipper.pid))
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 5
                if all(subprocess.run(["docker", "exec", c, "test", "-e", "/tmp/done"], capture_output=True,
                                      timeout=60).returncode == 0 for c in quiet_ids):
                    break
            time.sleep(0.5)
        flood_s = time.monotonic() - t0
        load_during = os.getloadavg()
        m_flood = metrics(url)
        flood_docs = sum(n for (name, _), n in counts(args.es, prefix, f"fair-{tag}-flood").items())
        docker("kill", cids[0])
        print(f"quiet writers done after {flood_s:.0f} s; flood stopped; load {load_during[0]:.1f}", flush=True)
        streams = ("stdout", "file") if args.ebpf == "on" else ("stdout",)
        expected = {(f"{names}{k:02d}", s): lines_each for k in range(args.quiet) for s in streams}
        deadline = time.monotonic() + 180
        while True:
            rss.append(rss_mib(shipper.pid))
            got = counts(args.es, prefix, names)
            if all(got.get(k, 0) >= v for k, v in expected.items()) or time.monotonic() > deadline:
                break
            time.sleep(1)
        time.sleep(WINDOW_S / 2)  # the poller sees the last ones
        poller.stop.set()
        poller.join(10)
        got = counts(args.es, prefix, names)
        m_end = metrics(url)
    finally:
        poller.stop.set()
        for c in cids:
            subprocess.run(["docker", "rm", "-f", c], capture_output=True, timeout=120)
        shipper.terminate()
        try:
            shipper.wait(60)
        except subprocess.TimeoutExpired:
            shipper.kill()
            shipper.wait()
    lost = sum(max(0, v - got.get(k, 0)) for k, v in expected.items())
    dup = sum(max(0, got.get(k, 0) - v) for k, v in expected.items())
    n_stdout = args.quiet * lines_each
    lat, p99 = latencies(poller.seen, n_stdout)
    _, p99_answer = latencies(poller.answered, n_stdout)
    dropped: dict[str, float] = {}
    for key, v in m_end.items():
        if v and ("dropped" in key or "drops" in key or "gap" in key):
            dropped[key] = v
    for what in (f"{prefix}-*", f"_index_template/{prefix}-*"):  # its indices, and the templates the shipper put
        try:
            req(f"{args.es}/{what}", method="DELETE")
        except OSError:
            pass
    print(f"quiet: {sum(got.values())} of {sum(expected.values())} lines, p50 "
          f"{statistics.median(lat) if lat else 0:.2f} s, p99 {p99:.2f} s; flood {flood_docs} documents; "
          f"shipper log: {log}", flush=True)
    out = {
        "quiet_lost": lost, "quiet_duplicated": dup,
        # the poller's own search time: how much of a latency is the measure's
        "search_p50_s": round(statistics.median(poller.durations), 3) if poller.durations else None,
        "quiet_p50_write_to_searchable_s": round(statistics.median(lat), 3) if lat else None,
        "quiet_p99_write_to_searchable_s": round(p99, 3) if p99 != float("inf") else "inf",
        "quiet_p99_write_to_answer_s": round(p99_answer, 3) if p99_answer != float("inf") else "inf",
        "quiet_max_write_to_searchable_s": round(lat[-1], 3) if lat and lat[-1] != float("inf") else "inf",
        "rss_mib_max": round(max(rss), 1), "rss_mib_idle": round(rss_idle, 1),
        "rss_bound_mib": round(args.memory_mb * RSS_SLACK + RSS_BASE_MIB[args.ebpf]), "memory_limit_mb": args.memory_mb,
        "flood_lines_per_s": round(flood_docs / flood_s), "flood_s": round(flood_s, 1),
        "flood_lines_in": {k: v for k, v in m_flood.items() if k.startswith("logship_lines_in")},
        "flood_dropped": dropped,
        "at_flood_end": {k: v for k, v in m_flood.items() if k.startswith(("logship_queue_", "logship_es_"))},
        "budget_waits": {k: v for k, v in m_end.items() if "budget_waits" in k},
        "poll_errors": poller.errors, "quiet": args.quiet, "lines_per_quiet_stream": lines_each,
        "load_avg_1m": [round(load0[0], 2), round(load_during[0], 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
