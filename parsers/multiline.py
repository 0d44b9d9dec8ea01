"""Join multi-line records (stack traces, tracebacks, panics) into single events.

:class:`MultilineJoiner` is bounded, stateful and pure: the caller passes the
current time (seconds, any monotonic clock) and no clock is ever read.  Use one
joiner per stream (e.g. per container and stdout/stderr).

Returned events are :class:`Event` objects: ``Event(text, truncated, lines)``
where ``text`` is the joined record (physical lines joined with ``"\\n"``, no
trailing newline), ``truncated`` is True when the record was cut at a bound
(the shipper maps it to ``logship.truncated``), ``lines`` is the number of
physical lines in ``text``.  ``str(event)`` is ``event.text``.

What joins onto the pending record:

* indented lines (space or tab): Java ``\\tat ...``, ``... N more``, Ruby
  ``\\tfrom ...``, Python ``  File ...``, any continuation
* ``Caused by:`` / ``Suppressed:`` / ``... N more`` / ``... N common frames omitted``
* Python: ``Traceback (most recent call last):`` until the first non-indented
  line (the ``XxxError: msg`` line), plus chained tracebacks
  ("During handling of the above exception..." / "The above exception was...")
* Go: a ``panic:`` / ``fatal error:`` line, then blank lines, ``goroutine N [...]:``
  headers, function frames ``pkg.fn(...)``, ``created by ...``, ``[signal ...``,
  ``exit status N``.

A record is complete when a line arrives that does not join it, or when
``timeout`` seconds pass without a new line (:meth:`MultilineJoiner.flush_due`).
Bounds: a record is cut (``truncated=True``) before it would exceed
``max_bytes`` UTF-8 bytes or ``max_lines`` lines; the remaining continuation
lines form the next record.  A single line over ``max_bytes`` is cut to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Event", "MultilineJoiner"]


@dataclass(frozen=True, slots=True)
class Event:
    text: str
    truncated: bool = False
    lines: int = 1

    def __str__(self) -> str:
        return self.text


_MORE = re.compile(r"\s*\.\.\. \d+ (?:more|common frames omitted)")
_GO_FRAME = re.compile(r"[\w./*()\-\[\]{},]+\(.*\)$")
_PY_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")

_PLAIN, _PYTHON, _PYTHON_END, _GO = 0, 1, 2, 3


def _size(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))


def _cut(line: str, max_bytes: int) -> str:
    if line.isascii():
        return line[:max_bytes]
    return line.encode("utf-8", "surrogatepass")[:max_bytes].decode("utf-8", "ignore")


class MultilineJoiner:
    """Stateful joiner; see the module docstring."""

    __slots__ = ("_buf", "_last", "_mode", "_size", "_truncated", "max_bytes", "max_lines", "timeout")

    def __init__(self, timeout: float = 1.0, max_bytes: int = 1 << 20, max_lines: int = 500) -> None:
        if max_bytes < 1 or max_lines < 1:
            raise ValueError("max_bytes and max_lines must be >= 1")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self._buf: list[str] = []
        self._size = 0
        self._mode = _PLAIN
        self._last = 0.0
        self._truncated = False

    @property
    def pending(self) -> bool:
        """True while a record is buffered."""
        return bool(self._buf)

    def _joins(self, line: str) -> bool:
        mode = self._mode
        c = line[:1]
        if mode == _PYTHON:
            if c in (" ", "\t") or not line:
                return True
            self._mode = _PYTHON_END  # the final "XxxError: msg" line
            return True
        if mode == _PYTHON_END:
            if not line or line.startswith(_PY_CHAIN):
                return True
            if line.startswith("Traceback (most recent call last):"):
                self._mode = _PYTHON
                return True
            return False
        if c in (" ", "\t"):
            return bool(line.strip())
        if line.startswith(("Caused by:", "Suppressed:")) or (c == "." and _MORE.match(line)):
            return True
        if mode == _GO:
            return (
                not line
                or line.startswith(("goroutine ", "created by ", "[signal ", "exit status ", "\t"))
                or _GO_FRAME.match(line) is not None
            )
        return False

    def _start(self, line: str, now: float, mode: int | None = None) -> None:
        if mode is None:
            if line.startswith("Traceback (most recent call last):"):
                mode = _PYTHON
            elif line.startswith(("panic: ", "fatal error: ")):
                mode = _GO
            else:
                mode = _PLAIN
        size = _size(line)
        self._truncated = False
        if size > self.max_bytes:
            line = _cut(line, self.max_bytes)
            size = _size(line)
            self._truncated = True
        self._buf = [line]
        self._size = size
        self._mode = mode
        self._last = now

    def _emit(self) -> Event:
        ev = Event("\n".join(self._buf), self._truncated, len(self._buf))
        self._buf = []
        self._size = 0
        self._truncated = False
        return ev

    def feed(self, line: str, now: float) -> list[Event]:
        """Add one physical line (without its newline); return completed records."""
        if line.endswith("\n"):
            line = line.rstrip("\r\n")
        if not self._buf:
            self._start(line, now)
            return []
        out: list[Event] = []
        if now - self._last >= self.timeout:
            out.append(self._emit())
            self._start(line, now)
            return out
        if self._joins(line):
            size = _size(line) + 1
            if len(self._buf) >= self.max_lines or self._size + size > self.max_bytes:
                mode = self._mode
                self._truncated = True
                out.append(self._emit())
                self._start(line, now, mode)  # the rest of the record continues separately
            else:
                self._buf.append(line)
                self._size += size
                self._last = now
            return out
        out.append(self._emit())
        self._start(line, now)
        return out

    def flush_due(self, now: float) -> list[Event]:
        """Records whose last line is at least ``timeout`` seconds old."""
        if self._buf and now - self._last >= self.timeout:
            return [self._emit()]
        return []

    def flush(self) -> list[Event]:
        """Everything pending (e.g. at end of stream)."""
        return [self._emit()] if self._buf else []
