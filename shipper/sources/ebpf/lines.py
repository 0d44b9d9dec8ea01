"""Which files are logs, and bytes of write() calls -> lines.

A write may carry many lines or part of one. Pieces are buffered per (tgid, path): lines
from different processes appending to one file never mix, and a shell writing one line
in pieces through several open/dup/close cycles still makes one line. A buffer is
flushed by its newline, by its process's exit, or after `timeout_ns` without a write."""

from __future__ import annotations

import fnmatch

Line = tuple[bytes, int, bool, int]  # (line without newline, time_ns of its first byte, truncated, file offset or -1)

DEFAULT_INCLUDE = ("*.log*", "*_log*", "/var/log/*")
DEFAULT_EXCLUDE = ("*.gz", "*.log.[0-9]*", "*.log-[0-9]*")  # (config.EbpfSettings.exclude_paths)


class PathFilter:
    """fnmatch globs (`*` crosses `/`) over the in-container path; excludes win."""

    def __init__(self, include: tuple[str, ...] = DEFAULT_INCLUDE, exclude: tuple[str, ...] = DEFAULT_EXCLUDE) -> None:
        self.include = include
        self.exclude = exclude
        self._cache: dict[str, bool] = {}

    def __call__(self, path: str) -> bool:
        hit = self._cache.get(path)
        if hit is None:
            hit = any(fnmatch.fnmatchcase(path, g) for g in self.include) and not any(
                fnmatch.fnmatchcase(path, g) for g in self.exclude)
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[path] = hit
        return hit


class _Partial:
    __slots__ = ("buf", "first_ns", "last_ns", "discarding", "offset")

    def __init__(self, t: int, offset: int) -> None:
        self.buf = bytearray()
        self.first_ns = t
        self.last_ns = t
        self.offset = offset  # of the line's first byte in its file, -1: not known
        self.discarding = False  # the line outgrew max_line: its rest is skipped up to the newline


Key = tuple[int, str]  # one writer's stream: (tgid, path or fd)


class LineAssembler:
    def __init__(self, max_line: int = 64 * 1024, timeout_ns: int = 1_000_000_000, max_buffers: int = 4096) -> None:
        self.max_line = max_line
        self.timeout_ns = timeout_ns
        self.max_buffers = max_buffers
        self._partials: dict[Key, _Partial] = {}
        self.overflows = 0  # lines cut at max_line (the caller counts them as drops)

    def __len__(self) -> int:
        return len(self._partials)

    def __contains__(self, key: Key) -> bool:
        return key in self._partials

    def feed(self, key: Key, data: bytes, t: int, truncated: bool = False, offset: int = -1) -> list[Line]:
        """The complete lines in data (after what key had buffered). `truncated`: the
        write's bytes end before the write did (neither the probe's copy nor the file had
        the rest), so the line in progress ends here. `offset`: where data starts in its file."""
        out: list[Line] = []
        p = self._partials.get(key)
        if p is None and not truncated and data.endswith(b"\n") and len(data) <= self.max_line:
            # The common case: whole lines in one write.
            if offset < 0:
                return [(ln, t, False, -1) for ln in data[:-1].split(b"\n")]
            if data.find(b"\n") == len(data) - 1:  # one line: the usual write
                return [(data[:-1], t, False, offset)]
            for ln in data[:-1].split(b"\n"):
                out.append((ln, t, False, offset))
                offset += len(ln) + 1
            return out
        start = 0
        while start < len(data):
            nl = data.find(b"\n", start)
            piece = data[start:] if nl < 0 else data[start:nl]
            if p is None:
                p = _Partial(t, offset + start if offset >= 0 else -1)
            if not p.discarding:
                room = self.max_line - len(p.buf)
                if len(piece) > room:
                    p.buf += piece[:room]
                    out.append((bytes(p.buf), p.first_ns, True, p.offset))
                    self.overflows += 1
                    p.buf.clear()
                    p.discarding = True
                else:
                    p.buf += piece
            p.last_ns = t
            if nl < 0:
                break
            if not p.discarding:
                out.append((bytes(p.buf), p.first_ns, False, p.offset))
            p = None
            start = nl + 1
        if p is not None and truncated:
            if not p.discarding:
                out.append((bytes(p.buf), p.first_ns, True, p.offset))
            p = None
        if p is None:
            self._partials.pop(key, None)
        else:
            self._partials[key] = p
            if len(self._partials) > self.max_buffers:
                out.extend(self._evict_oldest())
        return out

    def flush(self, key: Key) -> list[Line]:
        p = self._partials.pop(key, None)
        if p is None or p.discarding or not p.buf:
            return []
        return [(bytes(p.buf), p.first_ns, False, p.offset)]

    def discard(self, key: Key) -> int:
        """Forgets the line in progress (it is read again from its file): its offset, or -1."""
        p = self._partials.pop(key, None)
        return -1 if p is None else p.offset

    def keys(self) -> list[Key]:
        return list(self._partials)

    def expired(self, now_ns: int) -> list[Key]:
        """Keys whose buffer has waited `timeout_ns` for more bytes."""
        limit = now_ns - self.timeout_ns
        return [k for k, p in self._partials.items() if p.last_ns <= limit]

    def _evict_oldest(self) -> list[Line]:
        key = min(self._partials, key=lambda k: self._partials[k].last_ns)
        return self.flush(key)


def syslog_message(data: bytes) -> bytes:
    """One datagram (or one write to a stream /dev/log socket) is one message."""
    return data.rstrip(b"\n\0")
