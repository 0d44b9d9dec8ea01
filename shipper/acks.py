"""Acknowledgement tracking: which prefix of a container's lines Elasticsearch holds.

The sink reports each record once Elasticsearch has it (`Record.on_delivered`), but
out of order: several bulk requests are in flight and failed items are retried.
A container's checkpoint may only move to a time T when every record read before
the one at T is delivered, so each container keeps an ordered window of its
outstanding records, by arrival order (stdout and stderr interleave, and their
Docker timestamps are only monotonic per stream)."""

from __future__ import annotations

import time
from typing import Callable, Iterable

from shipper.record import Record

# (container id, new watermark ns) -> None; called when the delivered prefix grows.
OnAdvance = Callable[[str, int], None]

# Compact the window's lists once this many delivered entries sit at their head.
_COMPACT_AT = 4096


class AckWindow:
    """One container's outstanding records, oldest first. track() and delivered() are
    O(1) amortised: delivered entries are flagged in place and the head is trimmed
    when it is reached (lists with a moving head, compacted in blocks)."""

    __slots__ = ("container_id", "on_advance", "watermark_ns", "_times", "_done", "_head", "_base", "_pos",
                 "duplicate_acks", "_prefix_max")

    def __init__(self, container_id: str, on_advance: OnAdvance, watermark_ns: int = 0) -> None:
        self.container_id = container_id
        self.on_advance = on_advance
        self.watermark_ns = watermark_ns  # every record read before one at this time is delivered
        self._times: list[int] = []
        self._done: list[bool] = []
        self._head = 0  # index in the lists of the oldest outstanding record
        self._base = 0  # absolute arrival position of list index 0
        self._pos: dict[int, int] = {}  # id(record) -> absolute arrival position, while outstanding
        self.duplicate_acks = 0
        self._prefix_max = watermark_ns  # newest time among the delivered prefix

    def __len__(self) -> int:
        """Records read and not yet delivered."""
        return len(self._pos)

    def track(self, records: Iterable[Record]) -> None:
        """Register records in arrival order; their delivery calls back into this window."""
        times, done, pos = self._times, self._done, self._pos
        n = self._base + len(times)
        cb = self.delivered
        for r in records:
            pos[id(r)] = n
            n += 1
            times.append(r.time_ns)
            done.append(False)
            r.on_delivered = cb

    def delivered(self, record: Record) -> None:
        # id() is safe as a key: the record is alive until the sink has called us.
        p = self._pos.pop(id(record), None)
        if p is None:
            self.duplicate_acks += 1  # a second ack of the same record: harmless, but seen
            return
        i = p - self._base
        self._done[i] = True
        if i == self._head:
            self._advance()

    def _advance(self) -> None:
        times, done = self._times, self._done
        h, n = self._head, len(done)
        last = self._prefix_max
        while h < n and done[h]:
            if times[h] > last:
                last = times[h]
            h += 1
        self._prefix_max = last
        # An undelivered record may carry an earlier time than the delivered one before it
        # (the other stream's clock): the watermark must stay below it.
        mark = last if h == n else min(last, times[h] - 1)
        if h >= _COMPACT_AT and h * 2 >= n:
            del times[:h], done[:h]
            self._base += h
            h = 0
        self._head = h
        if mark > self.watermark_ns:
            self.watermark_ns = mark
            self.on_advance(self.container_id, mark)


class AckTracker:
    """The windows of all containers, created on first use."""

    def __init__(self, on_advance: OnAdvance) -> None:
        self.on_advance = on_advance
        self._windows: dict[str, AckWindow] = {}

    def window(self, container_id: str, watermark_ns: int = 0) -> AckWindow:
        w = self._windows.get(container_id)
        if w is None:
            w = self._windows[container_id] = AckWindow(container_id, self.on_advance, watermark_ns)
        return w

    def forget(self, container_id: str) -> None:
        self._windows.pop(container_id, None)

    def outstanding(self) -> int:
        return sum(len(w) for w in self._windows.values())

    def oldest_outstanding_ns(self) -> int | None:
        """Write time of the oldest record read and not yet delivered (None: all delivered)."""
        oldest = None
        for w in self._windows.values():
            if len(w) and w._head < len(w._times):
                t = w._times[w._head]
                if oldest is None or t < oldest:
                    oldest = t
        return oldest

    def lag_s(self) -> float:
        """How far the checkpoints trail the lines already read: the age of the oldest
        undelivered line, 0 when Elasticsearch holds everything read."""
        oldest = self.oldest_outstanding_ns()
        return 0.0 if oldest is None else max(0.0, time.time() - oldest / 1e9)
