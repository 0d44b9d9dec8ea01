"""Multi-line joining in the shipper: stack traces, tracebacks and panics become one
record. One parsers.multiline.MultilineJoiner per stream (container + stdout/stderr,
or container + file path); syslog datagrams are whole messages and pass through.

A joined record keeps the first line's time and position (so its `_id` is stable across
re-reads) and acknowledges every line it is made of, so checkpoints stay exact."""

from __future__ import annotations

from collections import deque
from typing import Callable

from parsers.multiline import Event, MultilineJoiner
from shipper.core.acks import deliver
from shipper.core.metrics import METRICS
from shipper.core.record import EVENT, SYSLOG, Record

_WHOLE = (SYSLOG, EVENT)

StreamKey = tuple[str, str]

# A superset of what the joiner would join onto a plain line, tested on bytes: lines
# that pass neither test are settled without the joiner (the common case, ~10x cheaper).
_MAY_CONTINUE_FIRST = frozenset((b" ", b"\t", b"."))
_MAY_CONTINUE = (b"Caused by:", b"Suppressed:")
_STARTS_TRACE = (b"Traceback (most recent call last):", b"panic: ", b"fatal error: ")


def _ack_all(parts: list[Record]) -> Callable[[Record], None]:
    def ack(_: Record) -> None:
        deliver(parts)
    return ack


class _Stream:
    __slots__ = ("joiner", "pending", "last_seen", "held")

    def __init__(self, joiner: MultilineJoiner, now: float) -> None:
        self.joiner = joiner
        self.pending: deque[Record] = deque()  # the lines the joiner holds, in order
        self.last_seen = now
        self.held: Record | None = None  # a plain line waiting to see whether the next continues it


def _may_continue(line: bytes) -> bool:
    return line[:1] in _MAY_CONTINUE_FIRST or line.startswith(_MAY_CONTINUE)


class MultilineStage:
    def __init__(self, timeout_s: float = 1.0, max_bytes: int = 1 << 20, max_lines: int = 500) -> None:
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self._streams: dict[StreamKey, _Stream] = {}

    def _stream(self, r: Record, now: float) -> _Stream:
        key = (r.container.id, r.path or r.stream)
        s = self._streams.get(key)
        if s is None:
            s = self._streams[key] = _Stream(MultilineJoiner(self.timeout_s, self.max_bytes, self.max_lines), now)
        return s

    def feed(self, batch: list[Record], now: float) -> list[Record]:
        """The records that are complete after this batch, in order per stream."""
        out: list[Record] = []
        s: _Stream | None = None
        last: tuple[object, str, str | None] | None = None  # the stream of the previous record
        for r in batch:
            if r.stream in _WHOLE:  # datagrams and events are whole records, never parts of a trace
                out.append(r)
                continue
            if last is None or r.container is not last[0] or r.stream is not last[1] or r.path is not last[2]:
                # Once per run of lines of one stream: `now` is the same for the whole batch.
                last = (r.container, r.stream, r.path)
                s = self._stream(r, now)
                if s.held is not None and now - s.last_seen >= self.timeout_s:
                    out.append(s.held)
                    s.held = None
                s.last_seen = now
            assert s is not None
            held = s.held
            msg = r.message
            if not s.pending:
                if not _may_continue(msg) and not msg.startswith(_STARTS_TRACE):
                    if held is not None:
                        out.append(held)
                    s.held = r
                    continue
                if held is not None:  # hand the held line to the joiner: r may continue it
                    s.held = None
                    self._to_joiner(s, held, now, out)
            self._to_joiner(s, r, now, out)
            if (len(s.pending) == 1 and s.pending[0] is r and not _may_continue(msg)
                    and not msg.startswith(_STARTS_TRACE)):
                s.joiner.flush()  # the joiner holds only a plain line again: take it back
                s.pending.clear()
                s.held = r
        return out

    def _to_joiner(self, s: _Stream, r: Record, now: float, out: list[Record]) -> None:
        s.pending.append(r)
        for ev in s.joiner.feed(r.message.decode("utf-8", "surrogateescape"), now):
            out.append(self._complete(s, ev))

    def flush_due(self, now: float) -> list[Record]:
        """Records whose stream has been quiet for the timeout; forgets idle streams."""
        out: list[Record] = []
        for key, s in list(self._streams.items()):
            if s.held is not None and now - s.last_seen >= self.timeout_s:
                out.append(s.held)
                s.held = None
            for ev in s.joiner.flush_due(now):
                out.append(self._complete(s, ev))
            if not s.pending and s.held is None and now - s.last_seen > 10 * self.timeout_s:
                del self._streams[key]
        return out

    def flush(self) -> list[Record]:
        out: list[Record] = []
        for s in self._streams.values():
            if s.held is not None:
                out.append(s.held)
            out.extend(self._complete(s, ev) for ev in s.joiner.flush())
        self._streams.clear()
        return out

    def _complete(self, s: _Stream, ev: Event) -> Record:
        n = max(1, min(ev.lines, len(s.pending)))
        first = s.pending.popleft()
        if n == 1 and not ev.truncated:
            return first  # the common case: one line, the record as it came
        parts = [first] + [s.pending.popleft() for _ in range(n - 1)]
        METRICS.count("logship_multiline_joined_lines_total", n)
        return Record(
            message=ev.text.encode("utf-8", "surrogateescape"), time_ns=first.time_ns, stream=first.stream,
            container=first.container, seq=first.seq, source=first.source, pid=first.pid, tid=first.tid,
            comm=first.comm, path=first.path, truncated=ev.truncated or any(p.truncated for p in parts),
            partial_merged=any(p.partial_merged for p in parts), on_delivered=_ack_all(parts),
            snapshot_id=next((p.snapshot_id for p in parts if p.snapshot_id), None),
        )
