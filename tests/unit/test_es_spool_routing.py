"""The sink's spool routing and replay, with Elasticsearch faked (tests/fakes.FakeBulkSession):
direct delivery while ES answers; to disk once it has failed for `spool.after_s`; new batches
queue behind a non-empty spool so order is kept; the replay sends the spool in order and only
then acknowledges the spooled records."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable, cast

import orjson

from shipper.config import ElasticsearchSettings, SpoolSettings
from shipper.core.container import Container
from shipper.core.record import Record
from shipper.sinks.elasticsearch.sink import ElasticsearchSink, Item
from shipper.sinks.spool import Spool
from tests.fakes import BulkAnswer, FakeBulkSession, drain_spool

C = Container(id="d" * 64, name="web", image="i")
T0 = 1_795_219_200_000_000_000
OK = BulkAnswer(200, b'{"took":1,"errors":false,"items":[]}')


def spooling_sink(tmp_path: Path, session: FakeBulkSession, after_s: float = 5.0) -> ElasticsearchSink:
    sink = ElasticsearchSink(ElasticsearchSettings(url=("http://es:9200",), index_prefix="p", setup=False),
                             SpoolSettings(after_s=after_s), state_dir=tmp_path)
    sink.spool = Spool(tmp_path / "spool", max_bytes=1 << 24, segment_bytes=1 << 16, fsync="never")
    sink._session = cast(Any, session)
    return sink


def batch(sink: ElasticsearchSink, first: int, n: int, acked: list[int]) -> list[Item]:
    def acker(i: int) -> Callable[[Record], None]:
        return lambda r: acked.append(i)
    recs = [Record(message=f"line {i}".encode(), time_ns=T0 + i, stream="stdout", container=C,
                   on_delivered=acker(i)) for i in range(first, first + n)]
    return [(r, sink.encode(r, {"message": r.message.decode()})) for r in recs]


def sent_lines(session: FakeBulkSession) -> list[str]:
    """The messages of every bulk sent, in order."""
    out = []
    for body in session.sent:
        lines = body.split(b"\n")
        out += [orjson.loads(doc)["message"] for doc in lines[1::2] if doc]
    return out


async def settle(sink: ElasticsearchSink) -> None:
    while sink._tasks:
        await asyncio.wait(set(sink._tasks), timeout=5)


def test_es_up_delivers_directly_and_never_spools(tmp_path):
    session = FakeBulkSession(OK)
    sink = spooling_sink(tmp_path, session)
    acked: list[int] = []

    async def go() -> None:
        await sink._route(batch(sink, 0, 3, acked))
        await settle(sink)

    asyncio.run(go())
    assert sent_lines(session) == ["line 0", "line 1", "line 2"] and sorted(acked) == [0, 1, 2]
    assert sink.spool is not None and sink.spool.empty


def test_es_down_long_enough_spools_then_replays_in_order_and_acks_after(tmp_path):
    session = FakeBulkSession()
    sink = spooling_sink(tmp_path, session, after_s=5.0)
    acked: list[int] = []
    sink._failing_since = time.monotonic() - 10  # ES has failed for longer than after_s

    async def go() -> None:
        await sink._route(batch(sink, 0, 3, acked))
        await sink._route(batch(sink, 3, 2, acked))
        assert sink.spool is not None and not sink.spool.empty and session.sent == []
        assert acked == []  # on disk is not delivered
        assert all(rec.message == b"" for _, rec in sink._acks)  # payloads live on disk only
        sink._failing_since = None  # ES is back; the spool is still not empty, so order says: behind it
        await sink._route(batch(sink, 5, 1, acked))
        assert session.sent == []
        session.answers += [OK, OK]
        replayer = asyncio.create_task(sink._replay_loop())
        deadline = time.monotonic() + 10
        while not sink.spool.empty and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        replayer.cancel()
        await asyncio.gather(replayer, return_exceptions=True)

    asyncio.run(go())
    assert sent_lines(session) == [f"line {i}" for i in range(6)]
    assert sorted(acked) == list(range(6))


def test_a_failed_replay_bulk_is_sent_again_before_its_records_are_acknowledged(tmp_path):
    session = FakeBulkSession()
    sink = spooling_sink(tmp_path, session)
    acked: list[int] = []
    sink._failing_since = time.monotonic() - 10

    async def go() -> None:
        await sink._route(batch(sink, 0, 2, acked))
        session.answers += [BulkAnswer(503, b"down"), OK]
        await drain_spool(sink)

    asyncio.run(go())
    assert len(session.sent) == 2 and session.sent[0] == session.sent[1]  # the same bulk, retried
    assert sorted(acked) == [0, 1]
