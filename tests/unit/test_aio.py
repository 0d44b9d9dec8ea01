"""Cancel-safe waits: items are never lost, cancellation is never swallowed."""

from __future__ import annotations

import asyncio

import pytest

from shipper.core.aio import get_within, wait_event


def test_get_within_returns_items_or_none_and_loses_nothing():
    async def main():
        q: asyncio.Queue[int] = asyncio.Queue()
        assert await get_within(q, 0.01) is None
        q.put_nowait(1)
        assert await get_within(q, 0.01) == 1
        asyncio.get_running_loop().call_later(0.02, q.put_nowait, 2)
        assert await get_within(q, 1.0) == 2
        got = []
        for i in range(200):  # puts racing the timeout: every item comes out exactly once
            asyncio.get_running_loop().call_later(0.001 * (i % 3), q.put_nowait, i)
            while (x := await get_within(q, 0.001 * (i % 4))) is not None:
                got.append(x)
        await asyncio.sleep(0.02)  # the last puts are still scheduled
        while not q.empty():
            got.append(q.get_nowait())
        assert sorted(got) == list(range(200))
    asyncio.run(main())


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.01, 0.02])
def test_cancel_is_never_swallowed(delay):
    async def loop_forever(q, ev):
        while True:
            await get_within(q, 0.01)
            await wait_event(ev, 0.01)

    async def main():
        q: asyncio.Queue[int] = asyncio.Queue()
        ev = asyncio.Event()
        for _ in range(50):
            t = asyncio.create_task(loop_forever(q, ev))
            await asyncio.sleep(delay)
            asyncio.get_running_loop().call_soon(q.put_nowait, 1)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(t, 2)  # the test's own bound
    asyncio.run(main())


def test_wait_event():
    async def main():
        ev = asyncio.Event()
        assert await wait_event(ev, 0.01) is False
        asyncio.get_running_loop().call_later(0.01, ev.set)
        assert await wait_event(ev, 1.0) is True
    asyncio.run(main())
