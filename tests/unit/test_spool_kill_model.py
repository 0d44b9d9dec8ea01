"""A SIGKILL while the sink spools, on random interleavings (issue 14, "exactly once under
load"): Elasticsearch (faked) holds some bulks, refuses others, holds some whose answer is
lost (a timeout after it indexed them), and keeps some waiting so every request slot stays
busy and batches go to the spool "stuck". At a random instant the process is killed: the
spool directory and the acknowledgements are what is left (a kill is an instant of the one
event loop; the spool's newest segment may also be torn at any byte). A restarted sink then
replays that spool against a healthy Elasticsearch.

Checked: every acknowledged line is held by Elasticsearch at the kill (so a checkpoint can
never pass a line that is only in the spool), and after the replay every document held is
exactly its line under its line's id (a torn frame is never sent truncated, never stored
under another line's id)."""

from __future__ import annotations

import asyncio
import random
import shutil
from pathlib import Path
from typing import Any, cast

import aiohttp
import orjson
import pytest

from tests.fakes import drain_spool
from shipper.config import ElasticsearchSettings, SpoolSettings
from shipper.core.container import Container
from shipper.core.record import Record
from shipper.sinks.elasticsearch.sink import ElasticsearchSink, Item
from shipper.sinks.spool import Spool

C = Container(id="e" * 64, name="seq", image="i")
T0 = 1_795_219_200_000_000_000


class _Answer:
    def __init__(self, es: FakeES, body: bytes, kind: str) -> None:
        self.es, self.body, self.kind = es, body, kind
        self.status = 200

    async def __aenter__(self) -> _Answer:
        if self.kind == "slow":  # an overloaded node: the slot stays busy, then it is held
            await asyncio.sleep(self.es.rng.uniform(0.001, 0.02))
        if self.kind in ("ok", "lost", "slow"):
            self.es.hold(self.body)
        if self.kind in ("refused", "lost"):
            raise aiohttp.ClientConnectionError("faked")
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self) -> bytes:
        return b'{"took":1,"errors":false,"items":[]}'


class FakeES:
    """Holds `create`s by _id (the first one wins, like Elasticsearch), answers at random."""

    def __init__(self, rng: random.Random, kinds: tuple[str, ...]) -> None:
        self.rng = rng
        self.kinds = kinds
        self.held: dict[str, str] = {}

    def hold(self, body: bytes) -> None:
        lines = body.split(b"\n")
        assert lines[-1] == b"" and len(lines) % 2 == 1, "a bulk body cut inside an item"
        for action, doc in zip(lines[0:-1:2], lines[1:-1:2], strict=True):
            doc_id = orjson.loads(action)["create"]["_id"]
            self.held.setdefault(doc_id, orjson.loads(doc)["message"])

    def post(self, url: str, data: bytes) -> _Answer:
        return _Answer(self, data, self.rng.choice(self.kinds))


def make_sink(state: Path, es: FakeES) -> ElasticsearchSink:
    sink = ElasticsearchSink(ElasticsearchSettings(url=("http://es:9200",), index_prefix="p", setup=False,
                                                   concurrency=2, bulk_max_docs=7, retry_max_s=0.01),
                             SpoolSettings(after_s=0.005), state_dir=state)
    sink.spool = Spool(state / "spool", max_bytes=1 << 24, segment_bytes=1500, fsync="never")
    sink._session = cast(Any, es)
    return sink


def lines(sink: ElasticsearchSink, first: int, n: int, acked: set[str]) -> list[Item]:
    recs = [Record(message=f"seq {i}".encode(), time_ns=T0 + i * 1000, stream="stdout", container=C,
                   on_delivered=lambda r: acked.add(r.doc_id())) for i in range(first, first + n)]
    return [(r, sink.encode(r, {"message": r.message.decode()})) for r in recs]


@pytest.mark.parametrize("seed", range(12))
def test_kill_while_spooling_loses_nothing_acknowledged_and_stores_no_torn_line(tmp_path, seed):
    rng = random.Random(seed)
    es = FakeES(rng, ("ok", "slow", "slow", "refused", "lost"))
    first = tmp_path / "first"
    sink = make_sink(first, es)
    acked: set[str] = set()
    ids = {}  # id -> its line, for every line ever made
    killed = tmp_path / "killed"

    async def first_run() -> set[str]:
        queue: asyncio.Queue[list[Item]] = asyncio.Queue(4)
        runner = asyncio.create_task(sink.run(queue))
        n = 0
        kill_at = rng.randrange(5, 120)
        for _ in range(kill_at):
            k = rng.randrange(1, 6)
            items = lines(sink, n, k, acked)
            ids.update({r.doc_id(): r.message.decode() for r, _ in items})  # type: ignore[union-attr]
            n += k
            await queue.put(items)
            if rng.random() < 0.3:
                await asyncio.sleep(rng.uniform(0, 0.01))
        # SIGKILL: what is on disk and what was acknowledged, at one instant of the loop
        shutil.copytree(first, killed)
        at_kill = set(acked)
        runner.cancel()
        for t in [runner, *sink._tasks, *(x for x in (sink._replayer,) if x)]:
            t.cancel()
        await asyncio.gather(runner, *sink._tasks, return_exceptions=True)
        return at_kill

    at_kill = asyncio.run(first_run())
    missing = {i for i in at_kill if i not in es.held}
    assert not missing, f"acknowledged but not held: {sorted(missing)[:5]}"

    segs = sorted((killed / "spool").glob("*.seg"))
    if segs and segs[-1].stat().st_size and rng.random() < 0.7:  # the kill tore the newest write
        data = segs[-1].read_bytes()
        segs[-1].write_bytes(data[:rng.randrange(len(data))])

    healthy = FakeES(rng, ("ok",))
    healthy.held = dict(es.held)
    again = make_sink(killed, healthy)

    asyncio.run(drain_spool(again, poll=0.001))
    wrong = {i: m for i, m in healthy.held.items() if ids.get(i) != m}
    assert not wrong, f"documents that are not their id's line: {list(wrong.items())[:5]}"
