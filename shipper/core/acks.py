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

from shipper.core.record import Record

# (container id, new watermark ns) -> None; called when the delivered prefix grows.
OnAdvance = Callable[[str, int], None]

# Compact the window's lists once this many delivered entries sit at their head.
_COMPACT_AT = 4096
_TRUE = [True]


class AckWindow:
    """One container's outstanding records, oldest first. track() and delivery are O(1)
    amortised: each record carries its arrival position (`Record.ack_pos`), delivered
    entries are flagged in place and the head is trimmed when it is reached (lists with a
    moving head, compacted in blocks). The window is the records' `on_delivered` callable;
    `deliver()` hands it whole runs of records, one watermark update per run."""

    __slots__ = ("container_id", "on_advance", "watermark_ns", "_times", "_done", "_head", "_base",
                 "_outstanding", "duplicate_acks", "_prefix_max")

    def __init__(self, container_id: str, on_advance: OnAdvance, watermark_ns: int = 0) -> None:
        self.container_id = container_id
        self.on_advance = on_advance
        self.watermark_ns = watermark_ns  # every record read before one at this time is delivered
        self._times: list[int] = []
        self._done: list[bool] = []
        self._head = 0  # index in the lists of the oldest outstanding record
        self._base = 0  # absolute arrival position of list index 0
        self._outstanding = 0
        self.duplicate_acks = 0
        self._prefix_max = watermark_ns  # newest time among the delivered prefix

    def __len__(self) -> int:
        """Records read and not yet delivered."""
        return self._outstanding

    def track(self, records: list[Record], marks: list[int] | None = None) -> None:
        """Register records in arrival order; their delivery calls back into this window.
        `marks`: what the watermark becomes once each is delivered (default: its time; the
        eBPF source's files use the byte offset after the line)."""
        n = self._base + len(self._times)
        for r in records:
            r.ack_pos = n
            r.on_delivered = self
            n += 1
        self._times.extend([r.time_ns for r in records] if marks is None else marks)
        self._done.extend([False] * len(records))
        self._outstanding += len(records)

    def __call__(self, record: Record) -> None:
        self.delivered_many((record,))

    def delivered_many(self, records: list[Record] | tuple[Record, ...]) -> None:
        done, base, n = self._done, self._base, len(self._done)
        k = len(records)
        if k > 8:
            # The usual run: records read one after the other, delivered by one bulk. Flagged
            # with one slice assignment once the positions are seen to be consecutive and new.
            i = records[0].ack_pos - base
            if 0 <= i and i + k <= n and [r.ack_pos for r in records] == list(range(i + base, i + base + k)) \
                    and True not in done[i:i + k]:
                done[i:i + k] = _TRUE * k
                self._outstanding -= k
                if done[self._head]:
                    self._advance()
                return
        for r in records:
            i = r.ack_pos - base
            if i < 0 or i >= n or done[i]:  # a second ack of the same record: harmless, but seen
                self.duplicate_acks += 1
                continue
            done[i] = True
            self._outstanding -= 1
        if self._head < n and done[self._head]:
            self._advance()

    def _advance(self) -> None:
        times, done = self._times, self._done
        start, n = self._head, len(done)
        try:
            h = done.index(False, start)
        except ValueError:
            h = n
        last = max(self._prefix_max, max(times[start:h], default=self._prefix_max))
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


def deliver(records: Iterable[Record | None]) -> None:
    """Acknowledge records (None: nothing to acknowledge): calls each one's `on_delivered`,
    whole runs at once where consecutive records share their AckWindow."""
    run: list[Record] = []
    window: Callable[[Record], None] | None = None
    for r in records:
        if r is None or r.on_delivered is None:
            continue
        cb = r.on_delivered
        if cb is not window:
            _deliver_run(window, run)
            window, run = cb, []
        run.append(r)
    _deliver_run(window, run)


def _deliver_run(callback: Callable[[Record], None] | None, run: list[Record]) -> None:
    if not run or callback is None:
        return
    if type(callback) is AckWindow:
        callback.delivered_many(run)
    else:
        for r in run:
            callback(r)  # the run's shared r.on_delivered


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
