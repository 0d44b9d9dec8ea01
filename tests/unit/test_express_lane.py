"""The express lane: the lines of containers keeping up pass a flood's batches after the fair stage.
Canned inputs: FairQueue's pick, and a sink against a loopback `_bulk` that holds the flood's bulks."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from shipper.config import ElasticsearchSettings, SpoolSettings
from shipper.core.budget import LIGHT_BATCHES, FairQueue
from shipper.core.container import Container
from shipper.core.record import Record
from shipper.sinks.elasticsearch.sink import ElasticsearchSink, Item


def lines(name: str, n: int) -> list[Record]:
    c = Container(id=name, name=name, image="busybox")
    return [Record(b"%s line %d" % (name.encode(), i), i, "stdout", c) for i in range(n)]


def test_take_light_takes_the_containers_keeping_up_and_leaves_the_backlogged_ones() -> None:
    async def go() -> None:
        q = FairQueue(1 << 30)
        for _ in range(LIGHT_BATCHES + 1):
            await q.put(lines("flood", 100))
        await q.put(lines("quiet-a", 1))
        await q.put(lines("quiet-b", 2))
        await q.put(lines("quiet-b", 1))
        batch, taken = await q.take_light(256)
        assert [r.message for r in batch] == [b"quiet-a line 0", b"quiet-b line 0", b"quiet-b line 1",
                                              b"quiet-b line 0"]
        assert set(taken) == {"quiet-a", "quiet-b"}
        q.release(taken)
        assert q.qsize() == LIGHT_BATCHES + 1 and set(q.held) == {"flood"}
        # nothing light queued: it waits for the next container with nothing queued to queue something
        waiter = asyncio.ensure_future(q.take_light(256))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        await q.put(lines("quiet-c", 1))
        batch, taken = await asyncio.wait_for(waiter, 1)
        assert [r.message for r in batch] == [b"quiet-c line 0"]
        q.release(taken)
        # the rest is still served, in turn, by take
        got, taken = await q.take(1000, None) or ([], {})
        assert len(got) == 100 * (LIGHT_BATCHES + 1)
        q.release(taken)
        assert q.total == 0

    asyncio.run(go())


def test_take_light_keeps_to_its_line_count() -> None:
    async def go() -> None:
        q = FairQueue(1 << 30)
        await q.put(lines("a", 200))
        await q.put(lines("b", 100))
        await q.put(lines("c", 50))
        await q.put(lines("one-big-read", 257))  # a backlog too, in one read
        batch, taken = await q.take_light(256)
        assert set(taken) == {"a", "c"} and len(batch) == 250  # b would pass 256: it waits for take or the next turn
        q.release(taken)

    asyncio.run(go())


def test_take_light_takes_nothing_while_nobody_has_a_backlog() -> None:
    """Then `take` serves everyone at once, in full bulks: no small express bulks for nothing."""
    async def go() -> None:
        q = FairQueue(1 << 30)
        await q.put(lines("a", 10))
        await q.put(lines("b", 10))
        waiter = asyncio.ensure_future(q.take_light(256))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        for _ in range(LIGHT_BATCHES + 1):
            await q.put(lines("flood", 10))
        await q.put(lines("c", 1))  # c arrives: the queue is looked at again, and now the flood has a backlog
        batch, taken = await asyncio.wait_for(waiter, 1)
        assert set(taken) == {"a", "b", "c"} and len(batch) == 21
        q.release(taken)

    asyncio.run(go())


class SlowBulk:
    """Answers 201 to every item; a bulk holding a flood line waits until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.held: list[bytes] = []
        self.waiting = 0

    async def bulk(self, request: web.Request) -> web.Response:
        body = await request.read()
        if b"flood" in body:
            self.waiting += 1
            await self.release.wait()
        actions = body.split(b"\n")[0::2]
        self.held += [orjson.loads(a)["create"]["_id"].encode() for a in actions if a]
        items = [{"create": {"status": 201}} for a in actions if a]
        return web.Response(body=orjson.dumps({"errors": False, "items": items}), content_type="application/json")


def item(kind: str, i: int) -> Item:
    return (None, b'{"create":{"_index":"p-2026.12.04","_id":"%s%d"}}\n{"message":"%s %d"}\n'
            % (kind.encode(), i, kind.encode(), i))


def test_express_lines_are_held_while_every_request_slot_waits_on_a_flood() -> None:
    async def go() -> None:
        fake = SlowBulk()
        app = web.Application()
        app.router.add_post("/_bulk", fake.bulk)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        s = ElasticsearchSettings(url=(f"http://127.0.0.1:{port}",), index_prefix="p", setup=False,
                                  bulk_max_docs=10, linger_s=0.0, flush_interval_s=0.01, concurrency=2)
        sink = ElasticsearchSink(s, SpoolSettings(enabled=False))
        await sink.start()
        queue: asyncio.Queue[list[Item]] = asyncio.Queue()
        express: asyncio.Queue[list[Item]] = asyncio.Queue()
        run = asyncio.create_task(sink.run(queue, express))
        try:
            await queue.put([item("flood", i) for i in range(30)])  # two bulks in flight, one waiting
            while fake.waiting < 2:
                await asyncio.sleep(0.01)
            await express.put([item("quiet", 0), item("quiet", 1)])
            await express.put([item("quiet", 2)])
            for _ in range(200):
                if len(fake.held) == 3:
                    break
                await asyncio.sleep(0.01)
            assert sorted(fake.held) == [b"quiet0", b"quiet1", b"quiet2"]
            fake.release.set()
            for _ in range(500):
                if len(fake.held) == 33:
                    break
                await asyncio.sleep(0.01)
            assert len(set(fake.held)) == 33
        finally:
            fake.release.set()
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            await sink.close()
            await runner.cleanup()

    asyncio.run(go())
