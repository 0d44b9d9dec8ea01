"""End to end into a real Elasticsearch, on the realistic mix (bench/mix.py): what a document
of ours costs Elasticsearch beside the same lines sent as minimal documents.

On a private Elasticsearch (port 9254, started and stopped here; its JVM's CPU is ours alone),
in one run, each into a fresh index:
- minimal: the bench's own loader posts the lines as {"@timestamp", "message"} (mapping: date
  and text, nothing else) with auto ids, prebuilt ~5 MB bodies, 2 in flight: the floor;
- variants (--variants): the same lines as the shipper makes them (parse, enrich, bulk lines
  with our `_id` and `create`), posted by the same loader into indices shaped by the shipper's
  templates (`current`), or with one change each: `stream_ids` (the former `_id` layout, stream
  hash first), a mapping trim or an index setting (our_template): what each step buys, alone;
- shipper: a container prints the lines, the real shipper (LOGSHIP_DOCKER_READ_FILES default)
  ships them with its own templates; rate from attach to the last document searchable.
Per run: ES CPU-s per million documents (while indexing, until refreshed), store size per
million lines after a force-merge to one segment, lines/s. Last line: JSON with es_cpu_ratio
(shipper over minimal), store_ratio, lines_per_s_ratio, and per variant the same three.

    .venv/bin/python bench/end_to_end.py [--lines 200000] [--variants current,time_ids,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
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

import aiohttp
import orjson

from bench.docker_source import cpu_seconds, expected_documents, make_container, rss_peak_mib
from bench.mix import describe, mix_lines, shares
from shipper.config import ElasticsearchSettings
from shipper.core.container import Container
from shipper.core.record import Record
from shipper.sinks.elasticsearch import templates
from shipper.sinks.elasticsearch.sink import ElasticsearchSink
from shipper.transforms.enrich import Enricher
from shipper.transforms.multiline import MultilineStage
from tests.integration.private_es import PrivateES

PORT = 9254
BODY_BYTES = 5 << 20
CONCURRENCY = 2


def req(url: str, method: str = "GET", body: Any = None, timeout: float = 600) -> Any:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    r = urllib.request.Request(url, method=method, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=timeout) as resp:
        return json.loads(resp.read() or b"{}")


def es_pid(port: int) -> int:
    """The JVM listening on the port (its command line does not carry the -E options)."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    m = re.search(r"pid=(\d+)", out)
    if not m:
        raise SystemExit(f"no Elasticsearch process on port {port}")
    return int(m.group(1))


# ---- documents ----------------------------------------------------------------------
def our_items(lines: list[bytes], prefix: str, t0: int) -> tuple[list[Record], list[bytes]]:
    """The bulk lines the shipper makes of the lines (multi-line joined, parsed, enriched)."""
    c = Container(id=uuid.uuid4().hex * 2, name="bench-e2e", image="local/bench:latest",
                  labels={"com.docker.compose.project": "bench", "com.docker.compose.service": "web"})
    recs = [Record(x, t0 + i * 1000, "stdout", c) for i, x in enumerate(lines)]
    ml = MultilineStage()
    joined = [r for k in range(0, len(recs), 512) for r in ml.feed(recs[k:k + 512], 0.0)] + ml.flush()
    sink, enrich = ElasticsearchSink(ElasticsearchSettings(index_prefix=prefix)), Enricher("benchhost")
    encoded = []
    for k in range(0, len(joined), 512):
        part = joined[k:k + 512]
        encoded += sink.encode_batch(part, enrich.documents_json(part))
    return joined, encoded


def minimal_items(lines: list[bytes], index: str, t0: int) -> list[bytes]:
    head = b'{"index":{"_index":"%s"}}\n' % index.encode()
    return [head + orjson.dumps({"@timestamp": (t0 + i * 1000) // 1000, "message": x.decode("utf-8", "replace")})
            + b"\n" for i, x in enumerate(lines)]


def bodies(items: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    cur: list[bytes] = []
    size = 0
    for it in items:
        if size + len(it) > BODY_BYTES and cur:
            out.append(b"".join(cur))
            cur, size = [], 0
        cur.append(it)
        size += len(it)
    if cur:
        out.append(b"".join(cur))
    return out


async def post_all(url: str, bodies_: list[bytes]) -> None:
    async with aiohttp.ClientSession(headers={"Content-Type": "application/x-ndjson"},
                                     timeout=aiohttp.ClientTimeout(total=600)) as s:
        it = iter(bodies_)

        async def worker() -> None:
            for body in it:
                async with s.post(url + "/_bulk", data=body) as r:
                    head = await r.read()
                    assert r.status == 200 and b'"errors":false' in head[:200], head[:500]

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


# ---- index shapes -------------------------------------------------------------------
def minimal_template(prefix: str) -> dict[str, Any]:
    return {"index_patterns": [f"{prefix}-*"], "priority": 500, "template": {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
        "mappings": {"dynamic": False, "properties": {"@timestamp": {"type": "date"}, "message": {"type": "text"}}}}}


def our_template(prefix: str, variant: str) -> dict[str, Any]:
    """The shipper's log template for `prefix`, as it is or with the variant's one change."""
    name = f"{prefix}-logs"
    body = templates.index_templates(ElasticsearchSettings(index_prefix=prefix))[name]
    body = json.loads(json.dumps(body))
    body["priority"] = 500
    tpl = body["template"]
    for change in variant.split("+"):
        if change == "best_compression":
            tpl["settings"]["codec"] = "best_compression"
        elif change == "no_dynamic":  # unknown fields kept in _source, not indexed
            tpl["mappings"]["dynamic"] = False
        elif change == "flat_unindexed":  # json.* / logfmt.* kept in _source only
            for k in ("json", "logfmt"):
                tpl["mappings"]["properties"][k] = {"type": "object", "enabled": False}
        elif change == "no_norms":
            tpl["mappings"]["properties"]["message"] = {"type": "text", "norms": False}
        elif change == "dyn_no_docvalues":  # unknown strings searchable, not aggregatable
            tpl["mappings"]["dynamic_templates"][0]["strings_as_keyword"]["mapping"] = {
                "type": "keyword", "ignore_above": 1024, "doc_values": False}
        elif change.startswith("refresh_"):  # e.g. refresh_500ms: fresher lines, more segments
            tpl["settings"]["refresh_interval"] = change[len("refresh_"):]
        elif change == "sort_time":
            tpl["settings"]["sort.field"] = "@timestamp"
            tpl["settings"]["sort.order"] = "desc"
    return body


def reid_stream_first(items: list[bytes]) -> list[bytes]:
    """The same bulk lines with the former `_id` layout: the stream's hash first, then the time
    (the shipper's ids lead with the time: Record.doc_id)."""
    out = []
    for it in items:
        a = it.index(b'"_id":"') + 7
        b = it.index(b'"', a)
        old = it[a:b]
        out.append(it[:a] + old[16:32] + old[:16] + old[32:] + it[b:])
    return out


# ---- one measured run -----------------------------------------------------------------
def measure_load(es: str, pid: int, prefix: str, template: dict[str, Any], bodies_: list[bytes], docs: int,
                 lines: int) -> dict[str, float]:
    req(f"{es}/_index_template/{prefix}-bench", "PUT", template)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    asyncio.run(post_all(es, bodies_))
    req(f"{es}/{prefix}-*/_refresh", "POST")
    took = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    return settle(es, f"{prefix}-*", docs, lines, took, cpu)


def settle(es: str, indices: str, docs: int, lines: int, took: float, cpu: float, exact: bool = True
           ) -> dict[str, float]:
    """The figures of one run, after checking the documents are all there. The shipper may make a
    few more than the bench expects (a trace whose next line came after the multi-line timeout on
    a loaded machine is two documents), never fewer."""
    got = req(f"{es}/{indices}/_count")["count"]
    assert got == docs if exact else docs <= got <= docs * 1.01, f"{indices}: {got} documents, expected {docs}"
    req(f"{es}/{indices}/_forcemerge?max_num_segments=1", "POST", timeout=1200)
    stats = req(f"{es}/{indices}/_stats/store")["_all"]["primaries"]["store"]["size_in_bytes"]
    return {"lines_per_s": round(lines / took), "es_cpu_s_per_million_docs": round(cpu / got * 1e6, 2),
            "store_mib_per_million_lines": round(stats / lines * 1e6 / 2**20, 1), "documents": got}


def measure_shipper(es: str, pid: int, prefix: str, lines: int, docs: int, tag: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
    with tempfile.TemporaryDirectory(prefix="logship-e2e-") as state:
        env.update({"LOGSHIP_ES_URL": es, "LOGSHIP_ES_INDEX_PREFIX": prefix, "LOGSHIP_EBPF": "off",
                    "LOGSHIP_STATE_DIR": state, "LOGSHIP_HTTP_ADDR": "", "LOGSHIP_SNAPSHOT_ENABLED": "false",
                    "LOGSHIP_DOCKER_INCLUDE_LABELS": f"logship.bench={tag}", "LOGSHIP_LOG_LEVEL": "info"})
        log = Path(state) / "shipper.log"
        p = subprocess.Popen([sys.executable, "-m", "shipper", "run"], cwd=ROOT, env=env, stdout=log.open("ab"),
                             stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while b"docker: attached to" not in log.read_bytes():
                if p.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"shipper failed:\n{log.read_text()[-3000:]}")
                time.sleep(0.005)
            cpu0, scpu0, t0 = cpu_seconds(pid), cpu_seconds(p.pid), time.monotonic()
            deadline = t0 + 1200
            while True:
                try:
                    n = req(f"{es}/{prefix}-2*/_count")["count"]
                except OSError:
                    n = 0
                if n >= docs:
                    break
                if p.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"shipper: {n} of {docs} documents\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            took = time.monotonic() - t0
            cpu, scpu, rss = cpu_seconds(pid) - cpu0, cpu_seconds(p.pid) - scpu0, rss_peak_mib(p.pid)
        finally:
            p.kill()
            p.wait()
    out = settle(es, f"{prefix}-2*", docs, lines, took, cpu, exact=False)
    out.update({"shipper_cpu_s_per_million": round(scpu / lines * 1e6, 2), "shipper_rss_mib": round(rss, 1)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--variants", default="stream_ids,current,no_norms,best_compression,flat_unindexed,"
                                          "dyn_no_docvalues,sort_time")
    ap.add_argument("--no-shipper", action="store_true", help="only the loader runs (no container, no shipper)")
    ap.add_argument("--keep-es", action="store_true", help="leave the private Elasticsearch running")
    args = ap.parse_args()
    lines = mix_lines(args.lines)
    print(describe(lines), flush=True)
    es = PrivateES(PORT)
    if not es.healthy():
        print("starting a private Elasticsearch ...", flush=True)
        es.start()
    pid = es_pid(PORT)
    run = uuid.uuid4().hex[:6]
    load0 = os.getloadavg()[0]
    t0 = time.time_ns()
    results: dict[str, dict[str, float]] = {}
    try:
        # A warm-up first (a fresh JVM compiles as it goes: the first index would pay for it),
        # then the minimal documents before and after the variants (their mean is the floor).
        warm = f"e2e{run}-warm"
        our_warm = our_items(lines[:50_000], warm, t0)[1]
        measure_load(es.url, pid, warm, our_template(warm, ""), bodies(our_warm), len(our_warm), 50_000)
        mini = f"e2e{run}-min"
        mins = bodies(minimal_items(lines, f"{mini}-x", t0))
        results["minimal_first"] = measure_load(es.url, pid, mini, minimal_template(mini), mins, len(lines),
                                                len(lines))
        print(f"minimal: {results['minimal_first']}", flush=True)
        for v in [x for x in args.variants.split(",") if x]:
            prefix = f"e2e{run}-{v.replace('+', '').replace('_', '')}"  # no pattern overlaps another
            recs, items = our_items(lines, prefix, t0)
            if "stream_ids" in v.split("+"):
                items = reid_stream_first(items)
            change = "+".join(x for x in v.split("+") if x not in ("current", "stream_ids"))
            results[v] = measure_load(es.url, pid, prefix, our_template(prefix, change), bodies(items), len(recs),
                                      len(lines))
            print(f"{v}: {results[v]}", flush=True)
        if not args.no_shipper:
            tag = uuid.uuid4().hex[:8]
            with tempfile.TemporaryDirectory(prefix="logship-e2e-mix-") as work:
                cid = make_container(len(lines), tag, Path(work), lines)
                try:
                    results["shipper"] = measure_shipper(es.url, pid, f"e2e{run}-ship", len(lines),
                                                         expected_documents(lines), tag)
                finally:
                    subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
            print(f"shipper: {results['shipper']}", flush=True)
        mini = f"e2e{run}-min2"
        results["minimal_last"] = measure_load(es.url, pid, mini, minimal_template(mini),
                                               bodies(minimal_items(lines, f"{mini}-x", t0)), len(lines), len(lines))
        print(f"minimal again: {results['minimal_last']}", flush=True)
        results["minimal"] = {k: round((results["minimal_first"][k] + results["minimal_last"][k]) / 2, 2)
                              for k in results["minimal_last"]}
    finally:
        try:
            req(f"{es.url}/e2e{run}-*", "DELETE")
            req(f"{es.url}/_index_template/e2e{run}-*", "DELETE")
        except OSError:
            pass
        if not args.keep_es:
            es.stop()
    m = results["minimal"]

    def ratios(r: dict[str, float]) -> dict[str, float]:
        return {"es_cpu_ratio": round(r["es_cpu_s_per_million_docs"] / m["es_cpu_s_per_million_docs"], 2),
                "store_ratio": round(r["store_mib_per_million_lines"] / m["store_mib_per_million_lines"], 2),
                "lines_per_s_ratio": round(r["lines_per_s"] / m["lines_per_s"], 2)}

    out: dict[str, Any] = {}
    if "shipper" in results:
        out.update(ratios(results["shipper"]))
    out.update({"runs": {k: {**v, **(ratios(v) if not k.startswith("minimal") else {})} for k, v in results.items()},
                "lines": len(lines), "mix": shares(), "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
