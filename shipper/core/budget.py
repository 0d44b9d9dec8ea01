"""Byte budgets between the stages: memory bounded in bytes, and shared fairly between containers.

`FairQueue` is the stage between the sources and the process stage. Each container has its
own FIFO of batches; the process stage takes one batch of each container in turn, so a
quiet container's line waits for at most one batch of every other container, never for a
flooder's backlog. What a container may hold is its fair share of the stage's bytes
(`admits`, a pure decision): a container over its share waits (`put`: the Docker source's
read of its stream pauses there, and only its own) or, where the source cannot pause (the
eBPF ring serves every container), its excess is refused (`offer`) and the caller counts it.
A quarter of the stage is kept from containers with bytes waiting beyond their share: a
flooder can never take it, so a quiet container's next read gets in at once.

`ByteQueue` is a plain FIFO bounded in bytes (the encoded stage after the fair point, and its
express lane: `take_light` below).

Bytes are payload plus `RECORD_OVERHEAD` per record (the Record object, its bytes header
and list slot: ~250 bytes measured with tracemalloc), so a read of 1-byte lines counts for
what it costs.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Callable, Generic, Iterable, TypeVar

from shipper.core.record import Record

RECORD_OVERHEAD = 256
RESERVE_DIVISOR = 4  # 1/4 of a stage is only for containers with nothing waiting in it
LIGHT_BATCHES = 2  # a container with at most this many reads queued is keeping up (take_light)

T = TypeVar("T")


def batch_bytes(batch: Iterable[Record]) -> int:
    """What a batch of records costs in memory while it waits."""
    n = size = 0
    for r in batch:
        size += len(r.message)
        n += 1
    return size + n * RECORD_OVERHEAD


def admits(own: int, size: int, total: int, others_waiting: int, limit: int) -> bool:
    """Whether `size` more bytes of one container go into a stage of `limit` bytes now.
    own: the bytes this container has waiting there; total: all containers' bytes;
    others_waiting: how many other containers have bytes waiting.

    - An empty stage takes anything (a batch larger than the whole stage must not wait forever).
    - A container with nothing waiting only needs room in the stage (the reserve is for it).
    - One with bytes waiting stays within its share of the stage less the reserve, split
      evenly between the containers that have bytes waiting, and within the stage: what a
      flooder took of the shared part before the others came does not hold them back."""
    if total == 0:
        return True
    if own == 0:
        return total + size <= limit
    shared = limit - limit // RESERVE_DIVISOR
    return total + size <= limit and own + size <= shared // (others_waiting + 1)


class FairQueue:
    """Per-container FIFOs of batches, bounded in bytes, served round-robin (see the module doc).
    Bytes stay counted from `put`/`offer` until the consumer `release`s them (after it handed the
    batch on), so the bound covers the process stage too."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self.held: dict[str, int] = {}  # container id -> bytes waiting or being processed
        self._fifos: dict[str, collections.deque[tuple[list[Record], int]]] = {}
        self._ready: collections.deque[str] = collections.deque()  # containers with a batch queued, in turn
        self._batches = 0
        self._nonempty = asyncio.Event()
        self._arrived = asyncio.Event()  # a container with nothing queued queued something
        self._freed = asyncio.Event()  # replaced at each release: everyone waiting re-checks

    def qsize(self) -> int:
        """Batches waiting."""
        return self._batches

    def empty(self) -> bool:
        return not self._batches

    def _admits(self, key: str, size: int) -> bool:
        own = self.held.get(key, 0)
        return admits(own, size, self.total, len(self.held) - (1 if own else 0), self.limit)

    def _append(self, key: str, batch: list[Record], size: int) -> None:
        fifo = self._fifos.get(key)
        if fifo is None:
            fifo = self._fifos[key] = collections.deque()
        if not fifo:
            self._ready.append(key)
            self._arrived.set()
        fifo.append((batch, size))
        self.held[key] = self.held.get(key, 0) + size
        self.total += size
        self._batches += 1
        self._nonempty.set()

    async def put(self, batch: list[Record], on_wait: Callable[[], None] | None = None) -> None:
        """Queues one container's batch, waiting while that container is over its budget."""
        key, size = batch[0].container.id, batch_bytes(batch)
        waited = False
        while not self._admits(key, size):
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            await self._freed.wait()
        self._append(key, batch, size)

    def admits_now(self, key: str, size: int) -> bool:
        """`admits` for a source on another thread (the eBPF poll thread, pacing a container's
        files by it): a glance at counts the event loop changes meanwhile, so approximate."""
        return self._admits(key, size)

    def offer(self, batch: list[Record], paced: Callable[[Record], bool] | None = None) -> list[Record]:
        """Queues what fits of a batch that may mix containers, never waiting; returns the
        records refused (their containers are over budget), in order. Records for which
        `paced` is true are never refused: their source reads them only while `admits_now`
        says yes (the rest waits in its file), so they pass the share by at most what it
        had in flight."""
        refused: list[Record] = []
        i, n = 0, len(batch)
        while i < n:
            c = batch[i].container
            j = i + 1
            while j < n and batch[j].container is c:
                j += 1
            run = batch[i:j] if i or j < n else batch
            size = batch_bytes(run)
            if self._admits(c.id, size):
                self._append(c.id, run, size)
            elif paced is None:
                refused += run
            else:
                kept: list[Record] = []
                for r in run:
                    (kept if paced(r) else refused).append(r)
                if kept:
                    self._append(c.id, kept, batch_bytes(kept))
            i = j
        return refused

    async def take(self, max_lines: int, timeout: float | None) -> tuple[list[Record], dict[str, int]] | None:
        """Lines of each container in turn until `max_lines`, with the
        bytes taken per container (to `release` once handed on); None after `timeout` seconds
        with nothing queued."""
        if not self._batches:
            self._nonempty.clear()
            if timeout is None:
                while not self._batches:  # (whatever woke it may be gone: take_light takes too)
                    self._nonempty.clear()
                    await self._nonempty.wait()
            else:
                waiter = asyncio.ensure_future(self._nonempty.wait())
                try:
                    await asyncio.wait((waiter,), timeout=timeout)
                finally:
                    waiter.cancel()
                if not self._batches:
                    return None
        # Round-robin by lines: each container with batches queued gets an even part of `max_lines`
        # per visit (big reads are cut), so one with many small reads is not served one read per
        # round behind another's big ones, and no read is bigger than what the sink takes at once.
        parts: list[list[Record]] = []
        taken: dict[str, int] = {}
        ready, fifos = self._ready, self._fifos
        quantum = max(1, max_lines // len(ready))
        lines = 0
        while ready and lines < max_lines:
            key = ready.popleft()
            fifo = fifos[key]
            got = size = 0
            while fifo and got < quantum:
                batch, n = fifo[0]
                room = quantum - got
                if len(batch) > room:  # a big read is cut: its rest stays first in its container's turn
                    head = batch[:room]
                    k = batch_bytes(head)
                    fifo[0] = (batch[room:], n - k)
                    batch, n = head, k
                else:
                    fifo.popleft()
                    self._batches -= 1
                parts.append(batch)
                got += len(batch)
                size += n
            lines += got
            taken[key] = taken.get(key, 0) + size
            if fifo:
                ready.append(key)
            else:
                del fifos[key]
        return _joined(parts), taken

    async def take_light(self, max_lines: int) -> tuple[list[Record], dict[str, int]]:
        """Everything queued by the containers that are keeping up (at most `LIGHT_BATCHES` reads and
        `max_lines` lines queued; `max_lines` in all) while another has a backlog (more queued),
        waiting until there is some.
        These are the express lane: handed on ahead of the batches of containers with a backlog,
        they wait for no flood's read in the stages after this one (the round-robin of `take` bounds
        the wait here, not there). With no backlog `take` serves everyone at once, in full bulks:
        the express lane's small ones would only cost Elasticsearch more requests."""
        while True:
            self._arrived.clear()
            parts: list[list[Record]] = []
            taken: dict[str, int] = {}
            lines = 0
            fifos = self._fifos
            light: list[tuple[str, int]] = []
            backlog = False
            for key in self._ready:
                fifo = fifos[key]
                if len(fifo) <= LIGHT_BATCHES:
                    n = sum([len(b) for b, _ in fifo])
                    if n <= max_lines:
                        light.append((key, n))
                        continue
                backlog = True
            for key, n in light if backlog else ():
                if lines + n > max_lines:
                    continue
                fifo = fifos[key]
                lines += n
                taken[key] = sum([size for _, size in fifo])
                parts += [b for b, _ in fifo]
                self._batches -= len(fifo)
                del fifos[key]
                self._ready.remove(key)
            if parts:
                return _joined(parts), taken
            await self._arrived.wait()

    def release(self, taken: dict[str, int]) -> None:
        """The bytes `take` handed out are handed on: room for the containers waiting."""
        for key, size in taken.items():
            left = self.held[key] - size
            if left > 0:
                self.held[key] = left
            else:
                del self.held[key]
            self.total -= size
        freed, self._freed = self._freed, asyncio.Event()
        freed.set()

    async def join(self) -> None:
        """Until everything queued was taken and released."""
        while self.total or self._batches:
            await self._freed.wait()


def _joined(parts: list[list[Record]]) -> list[Record]:
    """The batches taken, as one list: a new one unless one batch (sources may still hold theirs)."""
    return parts[0] if len(parts) == 1 else [r for b in parts for r in b]


class ByteQueue(asyncio.Queue[T], Generic[T]):
    """An asyncio.Queue bounded in bytes: `put` waits while `max_bytes` are queued (one item
    may go past the bound, so an item larger than it still passes), or `max_items`."""

    def __init__(self, max_bytes: int, size_of: Callable[[T], int], max_items: int = 0) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.bytes = 0
        self._size_of = size_of
        self._sizes: collections.deque[int] = collections.deque()

    def full(self) -> bool:
        return self.bytes >= self.max_bytes or 0 < self.max_items <= self.qsize()

    def _put(self, item: T) -> None:
        size = self._size_of(item)
        self._sizes.append(size)
        self.bytes += size
        super()._put(item)

    def _get(self) -> T:
        self.bytes -= self._sizes.popleft()
        return super()._get()
