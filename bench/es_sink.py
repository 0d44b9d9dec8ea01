"""Elasticsearch sink bench.

Throughput: N documents (access-log-like lines, parsed and enriched beforehand, as the
sink receives them) go encode -> ElasticsearchSink -> ES until every record is acknowledged,
vs a minimal bulk loader posting the SAME documents as prebuilt ~5 MB bodies with the
same concurrency (the ceiling of any client), into fresh indices, same ES, same run;
median of 3 alternating runs after a warm-up. Latency: records written at 5k lines/s for 20 s (default
flush 1 s, refresh 1 s); a poller counts searchable documents every 50 ms; a line's
write-to-searchable latency is the first poll whose count covers its position.

Runs on a private Elasticsearch (port 9253, started and stopped here; LOGSHIP_ES_SERIES=9.2 for
9.x). Also measured: elasticsearch-py's async streaming bulk helper on the same documents (the
alternative to the lean writer). Last line: JSON {docs_per_s, loader_docs_per_s, ratio,
p99_latency_s, es_py_helper_docs_per_s, es_version}.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp

from shipper.config import ElasticsearchSettings
from shipper.core.container import Container
from shipper.transforms.enrich import Enricher
from shipper.core.record import Record
from shipper.sinks.elasticsearch.sink import ElasticsearchSink
from shipper.sinks.elasticsearch.templates import setup_indices
from tests.integration.private_es import PrivateES

N = 200_000
BATCH = 256  # records per pipeline batch (one docker read)


def lines(n: int, t0: int) -> list[Record]:
    cs = [Container(id=f"{i:064x}", name=f"bench-{i}", image="local/bench") for i in range(8)]
    return [Record(message=(f'10.0.{i % 250}.{i % 199} - - [20/Nov/2026:10:00:00 +0000] '
                            f'"GET /api/v1/items/{i} HTTP/1.1" 200 {i % 5000} "-" "bench/1.0" seq {i}').encode(),
                   time_ns=t0 + i * 1000, stream="stdout", container=cs[i % 8]) for i in range(n)]


def req(url: str, method: str = "GET", body: bytes | None = None) -> dict:
    r = urllib.request.Request(url, method=method, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=120) as resp:
        return json.loads(resp.read() or b"{}")


async def sink_run(settings: ElasticsearchSettings, recs: list[Record], rate: float = 0.0,
                   docs: list[dict] | None = None) -> tuple[float, list[float]]:
    """Seconds until every record is acknowledged; with a rate, also each record's write time."""
    sink = ElasticsearchSink(settings)
    await sink.start()
    enrich = Enricher("benchhost")
    done = asyncio.Event()
    left = [len(recs)]

    def ack(_r: Record) -> None:
        left[0] -= 1
        if not left[0]:
            done.set()

    for r in recs:
        r.on_delivered = ack
    q: asyncio.Queue = asyncio.Queue(64)
    run = asyncio.create_task(sink.run(q))
    written: list[float] = []
    t0 = time.perf_counter()
    for i in range(0, len(recs), BATCH):
        chunk = recs[i:i + BATCH]
        if rate:
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            now = time.time()
            written.extend([now] * len(chunk))
        if docs is None:
            await q.put([(r, sink.encode(r, enrich.document(r))) for r in chunk])
        else:
            await q.put([(r, sink.encode(r, d)) for r, d in zip(chunk, docs[i:i + BATCH], strict=True)])
    await done.wait()
    took = time.perf_counter() - t0
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    await sink.close()
    return took, written


async def loader_run(url: str, bodies: list[bytes], n: int, concurrency: int) -> float:
    async with aiohttp.ClientSession(headers={"Content-Type": "application/x-ndjson"}) as s:
        it = iter(bodies)

        async def worker() -> None:
            for body in it:
                async with s.post(url + "/_bulk", data=body) as r:
                    resp = json.loads(await r.read())
                    assert not resp.get("errors"), str(resp)[:300]

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def client_run(url: str, prefix: str, recs: list[Record], docs: list[dict], concurrency: int) -> float:
    """The alternative: elasticsearch-py's async client and its streaming bulk helper
    (per-item results kept, as the sink needs), `concurrency` helpers over slices."""
    from elasticsearch import AsyncElasticsearch
    from elasticsearch.helpers import async_streaming_bulk

    sink = ElasticsearchSink(ElasticsearchSettings(index_prefix=prefix))
    es = AsyncElasticsearch(url, request_timeout=120)

    async def one(part: range) -> None:
        actions = ({"_op_type": "create", "_index": sink.index_name(recs[i].time_ns).decode(), "_id": recs[i].doc_id(),
                    "_source": docs[i]} for i in part)
        async for ok, item in async_streaming_bulk(es, actions, chunk_size=5000, max_chunk_bytes=5 << 20,
                                                   raise_on_error=False, raise_on_exception=False):
            assert ok, item

    t0 = time.perf_counter()
    step = len(recs) // concurrency + 1
    await asyncio.gather(*(one(range(k, min(k + step, len(recs)))) for k in range(0, len(recs), step)))
    took = time.perf_counter() - t0
    await es.close()
    return took


def prebuilt_bodies(settings: ElasticsearchSettings, recs: list[Record], docs: list[dict]) -> list[bytes]:
    """~5 MB bodies (bytes bound only) of the same documents."""
    sink = ElasticsearchSink(settings)
    bodies, cur, size = [], [], 0
    for r, d in zip(recs, docs, strict=True):
        b = sink.encode(r, d)
        cur.append(b)
        size += len(b)
        if size >= 5 << 20:
            bodies.append(b"".join(cur))
            cur, size = [], 0
    if cur:
        bodies.append(b"".join(cur))
    return bodies


def latency(url: str, base: ElasticsearchSettings) -> float:
    prefix = f"bench-lat-{uuid.uuid4().hex[:6]}"
    s = ElasticsearchSettings(url=(url,), index_prefix=prefix)  # default flush 1 s, refresh 1 s
    setup_indices(s)
    recs = lines(5000 * 20, time.time_ns())
    polls: list[tuple[float, int]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                c = req(f"{url}/{prefix}-*/_count?ignore_unavailable=true&allow_no_indices=true")["count"]
                polls.append((time.time(), c))
            except OSError:
                pass
            time.sleep(0.05)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    _, written = asyncio.run(sink_run(s, recs, rate=5000))
    deadline = time.time() + 30
    while (not polls or polls[-1][1] < len(recs)) and time.time() < deadline:
        time.sleep(0.1)
    stop.set()
    th.join()
    lat, j = [], 0
    for k, w in enumerate(written):  # the first poll that counts k+1 documents
        while j < len(polls) and polls[j][1] < k + 1:
            j += 1
        if j == len(polls):
            break
        lat.append(polls[j][0] - w)
    req(f"{url}/{prefix}-*", "DELETE")
    req(f"{url}/_index_template/{prefix}-*", "DELETE")
    lat.sort()
    if not lat:
        return float("nan")
    print(f"latency over {len(lat)} lines: p50 {lat[len(lat) // 2]:.2f} s, p99 {lat[int(len(lat) * 0.99) - 1]:.2f} s, "
          f"max {lat[-1]:.2f} s", flush=True)
    return lat[int(len(lat) * 0.99) - 1]


def main() -> None:
    private = PrivateES(9253)
    print("starting a private Elasticsearch on 9253 ...", flush=True)
    private.start()
    url = private.url
    version = next(iter(req(f"{url}/_nodes/_local")["nodes"].values()))["version"]
    print(f"Elasticsearch {version} (LOGSHIP_ES_SERIES picks the series: 8.19, 9.2)", flush=True)
    try:
        sink_rates, loader_rates, client_rates = [], [], []
        for run in range(-1, 3):  # run -1 warms ES up (JIT, first indices) and is not counted
            t0 = time.time_ns()
            tag = uuid.uuid4().hex[:6]
            p_sink, p_load, p_client = f"bench-s{run}-{tag}", f"bench-l{run}-{tag}", f"bench-c{run}-{tag}"
            s_sink = ElasticsearchSettings(url=(url,), index_prefix=p_sink)
            s_load = ElasticsearchSettings(url=(url,), index_prefix=p_load)
            for p in (p_sink, p_load, p_client):
                setup_indices(ElasticsearchSettings(url=(url,), index_prefix=p))
            n = N if run >= 0 else N // 4
            recs = lines(n, t0)
            enrich = Enricher("benchhost")
            docs = [enrich.document(r) for r in recs]
            bodies = prebuilt_bodies(s_load, recs, docs)
            loader = n / asyncio.run(loader_run(url, bodies, n, s_load.concurrency))
            sink = n / asyncio.run(sink_run(s_sink, recs, docs=docs))[0]
            client = n / asyncio.run(client_run(url, p_client, recs, docs, s_load.concurrency))
            if run >= 0:
                sink_rates.append(sink)
                loader_rates.append(loader)
                client_rates.append(client)
            else:  # measured on the warm ES, before the throughput runs leave merges behind
                p99 = latency(url, ElasticsearchSettings(url=(url,)))
            print(f"run {run}: sink {sink:,.0f} docs/s, elasticsearch-py helper {client:,.0f} docs/s, "
                  f"loader {loader:,.0f} docs/s "
                  f"(loader: {len(bodies)} bodies of ~{len(bodies[0]) >> 20} MiB)", flush=True)
            for p in (p_sink, p_load, p_client):
                req(f"{url}/{p}-*", "DELETE")
                req(f"{url}/_index_template/{p}-*", "DELETE")
        sink_median, loader, client = (statistics.median(x) for x in (sink_rates, loader_rates, client_rates))
        print(f"median: sink {sink_median:,.0f} docs/s vs loader {loader:,.0f} docs/s = {sink_median / loader:.0%} "
              f"(elasticsearch-py async helper: {client:,.0f} docs/s); "
              f"p99 write-to-searchable at 5k lines/s: {p99:.2f} s")
        print(json.dumps({"docs_per_s": round(sink_median), "loader_docs_per_s": round(loader),
                          "ratio": round(sink_median / loader, 3), "p99_latency_s": round(p99, 3),
                          "es_py_helper_docs_per_s": round(client), "es_version": version}))
    finally:
        private.stop()


if __name__ == "__main__":
    main()
