"""The sink in-process against a real Elasticsearch: dead letters, 429s, a corrupt spool.
Every record is acknowledged exactly once, and only once Elasticsearch holds it."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import replace
from pathlib import Path

import pytest

from shipper.config import ElasticsearchSettings, SpoolSettings
from shipper.core.container import Container
from shipper.transforms.enrich import Enricher
from shipper.core.metrics import METRICS
from shipper.core.record import Record
from shipper.sinks.elasticsearch.sink import ElasticsearchSink
from shipper.sinks.spool import HEADER, Spool
from tests.conftest import count_docs, search_all

T0 = 1_795_180_000_000_000_000  # 2026-11-20


def records(cid: str, n: int) -> list[Record]:
    c = Container(id=cid, name=f"n-{cid}", image="img")
    return [Record(message=b"line %d" % i, time_ns=T0 + i * 1000, stream="stdout", container=c) for i in range(n)]


class Acks:
    def __init__(self) -> None:
        self.count: collections.Counter[int] = collections.Counter()

    def track(self, recs: list[Record]) -> list[Record]:
        for r in recs:
            r.on_delivered = lambda rec: self.count.update([id(rec)])
        return recs


async def ship(settings: ElasticsearchSettings, recs: list[Record], *, spool: SpoolSettings | None = None,
               state_dir: Path | None = None, batch: int = 100, until=None) -> ElasticsearchSink:
    sink = ElasticsearchSink(settings, spool, state_dir)
    await sink.start()
    enrich = Enricher("testhost")
    q: asyncio.Queue = asyncio.Queue(8)
    run = asyncio.create_task(sink.run(q))
    for i in range(0, len(recs), batch):
        await q.put([(r, sink.encode(r, enrich.document(r))) for r in recs[i:i + batch]])
    for _ in range(600):
        await asyncio.sleep(0.1)
        # A replayed spool is committed after ES answered: documents can be searchable first.
        if q.empty() and (until is None or until()) and (sink.spool is None or sink.spool.empty):
            break
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    await sink.close()
    return sink


def _settings(url: str, prefix: str, **kw) -> ElasticsearchSettings:
    return ElasticsearchSettings(url=(url,), index_prefix=prefix, flush_interval_s=0.1, **kw)


def test_mapping_conflict_goes_to_the_deadletter_index(es, es_url, index_prefix):
    acks = Acks()
    recs = acks.track(records("dl-c1", 200))
    bad = recs[77]
    bad.fields = {"message": "line 77", "log.level": {"nested": "object"}}  # log.level is a keyword: a mapping conflict
    asyncio.run(ship(_settings(es_url, index_prefix), recs, until=lambda: len(acks.count) == 200))
    assert count_docs(es, f"{index_prefix}-20*", {"term": {"container.id": "dl-c1"}}) == 199
    dead = search_all(es, f"{index_prefix}-deadletter-*", {"match_all": {}})
    assert len(dead) == 1
    d = dead[0]
    assert d["message"] == "line 77" and d["container.id"] == "dl-c1"
    assert d["error.type"] == "document_parsing_exception" and "log.level" in d["error.reason"]
    assert '"nested":"object"' in d["event.original"]
    assert set(acks.count.values()) == {1} and len(acks.count) == 200
    # sending the same again: all 409, nothing new, every record acknowledged again exactly once
    acks2 = Acks()
    again = acks2.track([replace(r, on_delivered=None) for r in recs])
    asyncio.run(ship(_settings(es_url, index_prefix), again, until=lambda: len(acks2.count) == 200))
    assert count_docs(es, f"{index_prefix}-*", {"term": {"container.id": "dl-c1"}}) == 200
    assert set(acks2.count.values()) == {1}


@pytest.mark.slow
def test_429_answers_are_retried_until_everything_is_delivered(es_busy, index_prefix):
    from elasticsearch import Elasticsearch
    es = Elasticsearch(es_busy.url)
    before = METRICS.get("logship_es_item_retries_total", status="429")
    acks = Acks()
    n = 30_000
    recs = acks.track(records("busy-c1", n))
    try:
        asyncio.run(ship(_settings(es_busy.url, index_prefix, concurrency=6, bulk_max_docs=500), recs, batch=500,
                         until=lambda: len(acks.count) == n))
        assert METRICS.get("logship_es_item_retries_total", status="429") > before, "the ES never answered 429"
        assert count_docs(es, f"{index_prefix}-*", {"term": {"container.id": "busy-c1"}}) == n
        assert len(acks.count) == n and set(acks.count.values()) == {1}
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{index_prefix}-*")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{index_prefix}-*")


def test_corrupt_spool_record_is_quarantined_and_the_rest_replayed(es, es_url, index_prefix, tmp_path):
    settings = _settings(es_url, index_prefix)
    sink = ElasticsearchSink(settings)
    enrich = Enricher("testhost")
    recs = records("spool-c1", 50)
    spool = Spool(tmp_path / "spool", max_bytes=1 << 30, segment_bytes=1 << 20, fsync="always")
    positions = spool.append([sink.encode(r, enrich.document(r)) for r in recs])
    spool.close()  # the state a previous shipper left behind
    seg = next((tmp_path / "spool").glob("*.seg"))
    raw = bytearray(seg.read_bytes())
    raw[positions[10][1] + HEADER.size + 5] ^= 0x55
    seg.write_bytes(bytes(raw))
    before = METRICS.total("logship_spool_quarantined_total")
    q = {"term": {"container.id": "spool-c1"}}
    asyncio.run(ship(settings, [], spool=SpoolSettings(), state_dir=tmp_path,
                     until=lambda: count_docs(es, f"{index_prefix}-*", q) >= 49))
    docs = search_all(es, f"{index_prefix}-*", q)
    assert sorted(d["message"] for d in docs) == sorted(f"line {i}" for i in range(50) if i != 10)
    assert METRICS.total("logship_spool_quarantined_total") == before + 1
    assert len(list((tmp_path / "spool").glob("*.quarantine"))) == 1
    assert Spool(tmp_path / "spool", max_bytes=1 << 30, segment_bytes=1 << 20).empty


def test_spooled_records_are_acknowledged_only_after_the_replay(es, es_url, index_prefix, tmp_path):
    async def scenario() -> tuple[bool, int, int]:
        acks = Acks()
        recs = acks.track(records("spool-ack", 300))
        settings = ElasticsearchSettings(url=("http://127.0.0.1:9",), index_prefix=index_prefix, flush_interval_s=0.05,
                                         retry_max_s=0.5)
        sink = ElasticsearchSink(settings, SpoolSettings(after_s=0.3), tmp_path)
        await sink.start()
        spooled_before = METRICS.total("logship_es_spooled_total")
        enrich = Enricher("testhost")
        q: asyncio.Queue = asyncio.Queue(8)
        run = asyncio.create_task(sink.run(q))
        for i in range(0, 300, 50):
            await q.put([(r, sink.encode(r, enrich.document(r))) for r in recs[i:i + 50]])
        for _ in range(100):
            await asyncio.sleep(0.1)
            if METRICS.total("logship_es_spooled_total") - spooled_before >= 300:
                break
        spooled, acked_while_down = bool(sink.spool and sink.spool.pending_bytes), len(acks.count)
        sink._hosts.urls = [es_url]  # Elasticsearch is back (templates are put first)
        sink.s = replace(sink.s, url=(es_url,))
        for _ in range(300):
            await asyncio.sleep(0.1)
            if len(acks.count) == 300:
                break
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await sink.close()
        assert set(acks.count.values()) == {1}
        return spooled, acked_while_down, len(acks.count)

    assert asyncio.run(scenario()) == (True, 0, 300)
    assert count_docs(es, f"{index_prefix}-*", {"term": {"container.id": "spool-ack"}}) == 300


def test_spool_of_a_stopped_shipper_is_replayed_at_start(es, es_url, index_prefix, tmp_path):
    async def spool_while_down() -> None:
        settings = ElasticsearchSettings(url=("http://127.0.0.1:9",), index_prefix=index_prefix, flush_interval_s=0.05,
                                         retry_max_s=0.5)
        sink = ElasticsearchSink(settings, SpoolSettings(after_s=0.2), tmp_path)
        await sink.start()
        enrich = Enricher("testhost")
        q: asyncio.Queue = asyncio.Queue(8)
        run = asyncio.create_task(sink.run(q))
        recs = records("restart-c1", 400)
        for i in range(0, 400, 100):
            await q.put([(r, sink.encode(r, enrich.document(r))) for r in recs[i:i + 100]])
        await asyncio.sleep(1.5)
        run.cancel()  # SIGTERM with ES away: what is in flight goes to the spool too
        await asyncio.gather(run, return_exceptions=True)
        await sink.close()

    asyncio.run(spool_while_down())
    assert not Spool(tmp_path / "spool", max_bytes=1 << 30, segment_bytes=1 << 20).empty
    q = {"term": {"container.id": "restart-c1"}}
    assert count_docs(es, f"{index_prefix}-*", q) == 0
    asyncio.run(ship(_settings(es_url, index_prefix), [], spool=SpoolSettings(), state_dir=tmp_path,
                     until=lambda: count_docs(es, f"{index_prefix}-*", q) >= 400))
    assert count_docs(es, f"{index_prefix}-*", q) == 400
    assert Spool(tmp_path / "spool", max_bytes=1 << 30, segment_bytes=1 << 20).empty
