"""Writes refused for a cluster reason (read-only block, write block, 429 on every item):
held and spooled, never dead-lettered, one log line each way, state on /health and /metrics.
Against a fake `_bulk` on loopback that answers like Elasticsearch (canned item errors)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import orjson
from aiohttp import web

from shipper.config import ElasticsearchSettings, SpoolSettings
from shipper.core.metrics import METRICS
from shipper.sinks.elasticsearch.blocks import WRITES_BLOCKED, is_block
from shipper.sinks.elasticsearch.sink import ElasticsearchSink, Item

FLOOD = {"type": "cluster_block_exception",
         "reason": "index [p-2026.11.20] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage "
                   "watermark, index has read-only-allow-delete block];"}
WRITE_BLOCK = {"type": "cluster_block_exception",
               "reason": "index [p-2026.11.20] blocked by: [FORBIDDEN/8/index write (api)];"}
REJECTED = {"type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"}
MAPPING = {"type": "document_parsing_exception", "reason": "failed to parse field [log.level]"}


class FakeBulk:
    """Holds documents by (index, _id) like `create` does; `refuse` picks the answer."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], bytes] = {}
        self.refuse: tuple[int, dict[str, Any]] | None = None  # per item: (status, error)
        self.refuse_request: tuple[int, dict[str, Any]] | None = None  # the whole request
        self.requests = 0

    async def bulk(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.refuse_request:
            st, err = self.refuse_request
            return web.json_response({"error": err, "status": st}, status=st)
        lines = (await request.read()).split(b"\n")
        items = []
        for action, source in zip(lines[0::2], lines[1::2], strict=False):
            meta = orjson.loads(action)["create"]
            key = (meta["_index"], meta["_id"])
            if self.refuse and not meta["_index"].startswith("p-deadletter"):
                st, err = self.refuse
                items.append({"create": {**meta, "status": st, "error": err}})
            elif self.refuse and self.refuse[1] is not MAPPING:  # a cluster block covers the dead letters too
                items.append({"create": {**meta, "status": self.refuse[0], "error": self.refuse[1]}})
            elif key in self.held:
                conflict = {"type": "version_conflict_engine_exception"}
                items.append({"create": {**meta, "status": 409, "error": conflict}})
            else:
                self.held[key] = source
                items.append({"create": {**meta, "status": 201}})
        return web.Response(body=orjson.dumps({"took": 1, "errors": any(i["create"]["status"] >= 300 for i in items),
                                               "items": items}), content_type="application/json")

    def indices(self) -> set[str]:
        return {i for i, _ in self.held}


@contextlib.asynccontextmanager
async def fake_es() -> AsyncIterator[tuple[FakeBulk, str]]:
    f = FakeBulk()
    app = web.Application()
    app.router.add_post("/_bulk", f.bulk)
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "green"})

    app.router.add_get("/_cluster/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def items(n: int) -> list[Item]:
    return [(None, b'{"create":{"_index":"p-2026.11.20","_id":"id%d"}}\n{"message":"line %d"}\n' % (i, i))
            for i in range(n)]


async def until(pred: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.02)


async def ship_through_block(url: str, fake: FakeBulk, tmp: Path | None, caplog: Any,
                             n: int = 300) -> ElasticsearchSink:
    """Sends n items while `fake` refuses, checks the blocked state, lifts the block, waits for all."""
    s = ElasticsearchSettings(url=(url,), index_prefix="p", setup=False, bulk_max_docs=50, retry_max_s=0.1,
                              linger_s=0.0, flush_interval_s=0.05)
    spool = SpoolSettings(enabled=tmp is not None, after_s=0.3)
    sink = ElasticsearchSink(s, spool, tmp)
    await sink.start()
    q: asyncio.Queue[Any] = asyncio.Queue()
    run = asyncio.create_task(sink.run(q))
    try:
        with caplog.at_level(logging.INFO, logger="logship.es"):
            for k in range(0, n, 25):
                await q.put(items(n)[k:k + 25])
            await until(lambda: sink.block.active)
            assert METRICS.value(WRITES_BLOCKED) == 1
            st = sink.block.status()
            assert st["writes_blocked"] is True and "cluster_block_exception" in st["reason"] or "429" in st["reason"]
            await asyncio.sleep(1.0)  # retries and (with a spool) spooling while blocked
            assert not fake.held
            fake.refuse = fake.refuse_request = None
            await until(lambda: len(fake.held) == n)
            await until(lambda: not sink.block.active)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await sink.close()
    assert METRICS.value(WRITES_BLOCKED) == 0 and sink.block.status() == {"writes_blocked": False}
    assert fake.indices() == {"p-2026.11.20"}, "nothing may go to the dead-letter index"
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("writes blocked" in m for m in msgs) == 1, msgs
    assert sum("writes accepted again" in m for m in msgs) == 1, msgs
    return sink


def test_block_errors_are_recognised():
    assert is_block(FLOOD) and is_block(WRITE_BLOCK)
    assert not is_block(REJECTED) and not is_block(MAPPING) and not is_block(None) and not is_block({})


def through_block(caplog: Any, tmp: Path | None, setup: Callable[[FakeBulk], None]) -> None:
    async def go() -> None:
        async with fake_es() as (f, url):
            setup(f)
            await ship_through_block(url, f, tmp, caplog)
    asyncio.run(go())


def test_flood_stage_block_is_held_not_dead_lettered(caplog):
    through_block(caplog, None, lambda f: setattr(f, "refuse", (429, FLOOD)))


def test_write_block_403_is_held_and_spooled(caplog, tmp_path):
    before = METRICS.total("logship_es_spooled_total")
    through_block(caplog, tmp_path, lambda f: setattr(f, "refuse", (403, WRITE_BLOCK)))
    assert METRICS.total("logship_es_spooled_total") > before, "a lasting block goes to the disk spool"


def test_whole_request_blocked(caplog):
    err = {"type": "cluster_block_exception", "reason": "blocked by: [FORBIDDEN/6/cluster read-only (api)];"}
    through_block(caplog, None, lambda f: setattr(f, "refuse_request", (403, err)))


def test_429_on_every_item_for_a_while_is_a_block(caplog, tmp_path):
    through_block(caplog, tmp_path, lambda f: setattr(f, "refuse", (429, REJECTED)))


def test_a_mapping_rejection_still_goes_to_the_dead_letters():
    async def go() -> None:
        async with fake_es() as (f, url):
            f.refuse = (400, MAPPING)
            sink = ElasticsearchSink(ElasticsearchSettings(url=(url,), index_prefix="p", setup=False),
                                     SpoolSettings(enabled=False))
            await sink.start()
            try:
                again, _ = await sink._send_once(items(3))
                assert len(again) == 3 and all(b"p-deadletter-2026.11.20" in d for _, d in again)
                assert await sink._send_once(again) == ([], False)
            finally:
                await sink.close()
            assert f.indices() == {"p-deadletter-2026.11.20"} and not sink.block.active
    asyncio.run(go())
