"""Byte budgets: the admission decision on canned numbers, the fair stage's order, waits and
drops, the byte-bounded FIFO, and how the memory limit is split."""

from __future__ import annotations

import asyncio

import pytest

from shipper.config import ConfigError, load
from shipper.core.budget import RECORD_OVERHEAD, ByteQueue, FairQueue, admits, batch_bytes
from shipper.core.container import Container
from shipper.core.record import Record
from shipper.runtime.pipeline import MIB, MemorySplit

LIMIT = 1000


@pytest.mark.parametrize("own,size,total,others,expected,why", [
    (0, 5000, 0, 0, True, "an empty stage takes a batch larger than itself"),
    (0, 200, 900, 3, False, "nothing waiting, but no room at all"),
    (0, 200, 800, 3, True, "nothing waiting: the reserve is for it (800 + 200 <= 1000)"),
    (700, 50, 700, 0, True, "alone: the whole shared part (750)"),
    (700, 60, 700, 0, False, "alone, but past the shared part (760 > 750)"),
    (300, 100, 400, 1, False, "two waiting: a share is 375 each"),
    (300, 75, 400, 1, True, "two waiting: exactly its share"),
    (100, 50, 700, 1, True, "under its share, the stage under the shared part"),
    (100, 50, 720, 1, True, "under its share: the flooder's hold on the shared part does not stop it"),
    (100, 50, 960, 1, False, "under its share, but no room in the stage"),
])
def test_admission(own: int, size: int, total: int, others: int, expected: bool, why: str) -> None:
    assert admits(own, size, total, others, LIMIT) is expected, why


def rec(c: Container, msg: bytes = b"x" * 44, source: str = "docker") -> Record:
    return Record(msg, 1, "stdout", c, source=source)


FLOOD, QUIET, OTHER = (Container(id=ch * 64, name=n, image="i") for ch, n in (("f", "flood"), ("q", "quiet"),
                                                                                ("o", "other")))
LINE = 44 + RECORD_OVERHEAD  # the bytes of one rec()


def test_batch_bytes_counts_payload_and_overhead() -> None:
    assert batch_bytes([rec(FLOOD, b""), rec(FLOOD, b"abc")]) == 3 + 2 * RECORD_OVERHEAD


def test_a_flooder_waits_and_a_quiet_container_does_not() -> None:
    async def go() -> None:
        q = FairQueue(40 * LINE)  # shared part 30 lines, reserve 10
        for _ in range(30):
            await q.put([rec(FLOOD)])
        blocked = asyncio.create_task(q.put([rec(FLOOD)], on_wait=lambda: waits.append(1)))
        waits: list[int] = []
        await asyncio.sleep(0.01)
        assert not blocked.done() and waits == [1]  # over its share: its read waits
        await asyncio.wait_for(q.put([rec(QUIET)]), 1)  # a quiet one gets in at once (the reserve)
        got = await q.take(2, None)
        assert got is not None
        batch, taken = got
        assert [r.container for r in batch] == [FLOOD, QUIET]  # one batch of each in turn, quiet not behind the flood
        assert not blocked.done()  # not released yet: the process stage still holds them
        q.release(taken)
        assert q.held[FLOOD.id] == 29 * LINE and QUIET.id not in q.held
        await asyncio.wait_for(blocked, 1)  # one of its lines handed on: room for its next read
        assert q.held[FLOOD.id] == 30 * LINE
    asyncio.run(go())


def test_round_robin_serves_each_container_in_turn_in_order() -> None:
    async def go() -> None:
        q = FairQueue(1 << 20)
        for i in range(3):
            await q.put([rec(FLOOD, b"f%d" % i)] * 3)
        await q.put([rec(QUIET, b"q0")])
        await q.put([rec(OTHER, b"o0")])
        await q.put([rec(QUIET, b"q1")])
        got = await q.take(100, None)
        assert got is not None
        # deficit round-robin: each container up to an even part of the lines per visit, in turn
        assert [r.message for r in got[0]] == [b"f0"] * 3 + [b"f1"] * 3 + [b"f2"] * 3 + [b"q0", b"q1", b"o0"]
        q.release(got[1])
        assert q.total == 0 and not q.held and q.empty()
        assert await q.take(10, 0.01) is None  # nothing queued: None after the timeout
    asyncio.run(go())


def test_many_small_reads_are_not_served_one_per_round_behind_big_ones() -> None:
    async def go() -> None:
        q = FairQueue(1 << 20)
        await q.put([rec(FLOOD)] * 400)
        await q.put([rec(FLOOD)] * 400)
        for _ in range(30):
            await q.put([rec(QUIET)])
        got = await q.take(100, None)  # two containers: up to 50 lines each per visit, big reads cut
        assert got is not None
        assert [r.container for r in got[0]] == [FLOOD] * 50 + [QUIET] * 30 + [FLOOD] * 50
        assert got[1] == {FLOOD.id: 100 * LINE, QUIET.id: 30 * LINE}
        q.release(got[1])
        assert q.held == {FLOOD.id: 700 * LINE} and q.qsize() == 2
    asyncio.run(go())


def test_take_shares_max_lines_between_the_containers() -> None:
    async def go() -> None:
        q = FairQueue(1 << 20)
        await q.put([rec(FLOOD, b"f%d" % i) for i in range(5)])
        await q.put([rec(QUIET)] * 5)
        got = await q.take(3, None)
        assert got is not None
        assert [r.container for r in got[0]] == [FLOOD, QUIET, FLOOD]
        assert [r.message for r in (await q.take(100, None) or ([], {}))[0] if r.container is FLOOD] == \
            [b"f2", b"f3", b"f4"]  # the rest of a cut read, in order
    asyncio.run(go())


def test_offer_drops_only_the_over_budget_container_runs() -> None:
    async def go() -> None:
        q = FairQueue(40 * LINE)
        assert q.offer([rec(FLOOD, source="ebpf")] * 30) == []
        mixed = [rec(QUIET, source="ebpf"), rec(FLOOD, source="ebpf"), rec(FLOOD, source="ebpf"),
                 rec(OTHER, source="ebpf")]
        refused = q.offer(mixed)
        assert refused == mixed[1:3]  # the flooder's run; the quiet and the other one's are queued
        assert q.held[QUIET.id] == LINE and q.held[OTHER.id] == LINE and q.held[FLOOD.id] == 30 * LINE
    asyncio.run(go())


def test_join_waits_for_release() -> None:
    async def go() -> None:
        q = FairQueue(1 << 20)
        await q.put([rec(FLOOD)])
        joined = asyncio.create_task(q.join())
        got = await q.take(10, None)
        await asyncio.sleep(0.01)
        assert not joined.done()  # taken, not yet handed on
        assert got is not None
        q.release(got[1])
        await asyncio.wait_for(joined, 1)
    asyncio.run(go())


def test_byte_queue_bounds_bytes_not_items() -> None:
    async def go() -> None:
        q: ByteQueue[bytes] = ByteQueue(10, len)
        await q.put(b"x" * 6)
        await q.put(b"x" * 6)  # one item may go past the bound
        assert q.full() and q.bytes == 12
        blocked = asyncio.create_task(q.put(b"x"))
        await asyncio.sleep(0.01)
        assert not blocked.done()
        assert await q.get() == b"x" * 6
        await asyncio.wait_for(blocked, 1)
        assert q.bytes == 7 and q.qsize() == 2
    asyncio.run(go())


def test_memory_split_adds_up_to_the_limit_and_refuses_too_little() -> None:
    m = MemorySplit.of(load({"LOGSHIP_MEMORY_LIMIT_MB": "128"}))
    assert m.sink + m.encoded + 3 * m.express + m.records == 128 * MIB
    assert m.sink == 2 * 3 * (5 << 20) and m.encoded == 5 << 20 and m.express == (5 << 20) // 8
    with pytest.raises(ConfigError, match="LOGSHIP_MEMORY_LIMIT_MB=32.*at least 45"):
        MemorySplit.of(load({"LOGSHIP_MEMORY_LIMIT_MB": "32"}))
    assert MemorySplit.of(load({"LOGSHIP_MEMORY_LIMIT_MB": "32", "LOGSHIP_ES_BULK_MAX_BYTES": str(1 << 20)})).records \
        == 32 * MIB - 7 * MIB - 3 * ((1 << 20) // 8)
