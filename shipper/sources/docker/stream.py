"""Pure decoding of a Docker log stream: frame demultiplexing (or the raw stream of a
TTY container), Docker's timestamps at ns precision, and re-joining the 16 KiB pieces
Docker splits long lines into. No I/O here; this is the hot path of the source."""

from __future__ import annotations

import re
import struct
from typing import Callable, NamedTuple


from shipper.core.timefmt import parse_docker_time

_split_simple: Callable[[bytes, int, int], tuple[list[Line], int]] | None
try:  # the simple frames in C (_frames.c, built by setup.py); without a compiler all in Python
    from shipper.sources.docker._frames import split as _split_simple
except ImportError:  # pragma: no cover - built on every supported install
    _split_simple = None

STREAM_NAMES = ("stdout", "stdout", "stderr")  # frame header byte 0: 0 stdin (as stdout), 1 stdout, 2 stderr
_HEADER = struct.Struct(">BxxxI")


class Line(NamedTuple):
    stream: str
    time_ns: int
    data: bytes
    truncated: bool = False
    merged: bool = False


# In a TTY container's raw stream a 16 KiB piece is followed directly by the next
# entry's timestamp (no framing tells where it starts): find it only well inside a
# long piece, so a short line that quotes a timestamp is left alone.
_TTY_TS = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z ")
_TTY_MIN_PIECE = 4096


class StreamDecoder:
    """One container's log stream -> whole lines. An entry that does not end in a newline
    is a piece of a longer line: pieces are joined byte-exact under the first piece's
    timestamp up to `max_bytes`; the rest of an over-long line is dropped, the line
    flagged truncated and the bytes counted. Memory is bounded by max_bytes per stream
    plus one frame."""

    __slots__ = ("max_bytes", "tty", "_buf", "_parts", "truncated_bytes", "truncated_lines", "bad_entries")

    def __init__(self, max_bytes: int = 1 << 20, tty: bool = False) -> None:
        self.max_bytes = max_bytes
        self.tty = tty
        self._buf = b""
        # stream -> [first timestamp, joined bytes, cut?, pieces]
        self._parts: dict[str, list] = {}
        self.truncated_bytes = 0
        self.truncated_lines = 0
        self.bad_entries = 0  # entries without a Docker timestamp (kept, time 0 -> previous)

    # ---- entry level ------------------------------------------------------------
    def feed(self, chunk: bytes) -> list[Line]:
        """The whole lines in chunk (plus what earlier chunks left), as Line-shaped tuples."""
        return self._feed_tty(chunk) if self.tty else self._feed_frames(chunk)

    def _feed_frames(self, chunk: bytes) -> list[Line]:
        buf = self._buf + chunk if self._buf else chunk
        out: list[Line] = []
        append = out.append
        parts = self._parts
        max_bytes = self.max_bytes
        pos, n = 0, len(buf)
        unpack = _HEADER.unpack_from
        split_simple = _split_simple
        while n - pos >= 8:
            if split_simple is not None and not parts:
                lines, pos = split_simple(buf, pos, max_bytes)
                if lines:
                    out += lines
                if n - pos < 8:
                    break
            # One frame the general way: a piece of a long line, an odd stamp (or no C).
            kind, size = unpack(buf, pos)
            end = pos + 8 + size
            if end > n:
                break
            sp = buf.find(b" ", pos + 8, end)
            stream = STREAM_NAMES[kind] if kind < 3 else "stdout"
            if sp < 0 or sp - pos - 8 > 40:
                ts, body_start = 0, pos + 8
                self.bad_entries += 1
            else:
                try:
                    ts, body_start = parse_docker_time(buf[pos + 8:sp]), sp + 1
                except ValueError:
                    ts, body_start = 0, pos + 8
                    self.bad_entries += 1
            complete = size > 0 and buf[end - 1] == 10
            if complete and stream not in parts and end - 1 - body_start <= max_bytes:
                # The common case, one whole line: a plain tuple equal to Line(...), 7x cheaper to make.
                append((stream, ts, buf[body_start:end - 1], False, False))  # type: ignore[arg-type]  # a Line in all but name
            else:
                line = self._piece(stream, ts, buf[body_start:end - 1 if complete else end], complete)
                if line is not None:
                    append(line)
            pos = end
        self._buf = buf[pos:] if pos < n else b""
        return out

    def _feed_tty(self, chunk: bytes) -> list[Line]:
        data = self._buf + chunk if self._buf else chunk
        out: list[Line] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            self._tty_entry(data[start:nl], True, out)
            start = nl + 1
        rest = data[start:]
        if len(rest) > self.max_bytes + 64:
            # Never grow without bound: hand over what we hold as a piece of a line.
            self._tty_entry(rest, False, out)
            rest = b""
        self._buf = rest
        return out

    def _tty_entry(self, entry: bytes, complete: bool, out: list[Line]) -> None:
        stream = "stdout"
        while True:
            sp = entry.find(b" ")
            try:
                ts, body = parse_docker_time(entry[:sp]), entry[sp + 1:]
            except ValueError:
                ts, body = 0, entry
                if stream not in self._parts:  # else: the rest of a piece we cut at the bound
                    self.bad_entries += 1
            m = _TTY_TS.search(body, _TTY_MIN_PIECE) if len(body) > _TTY_MIN_PIECE else None
            if m is None:
                break
            line = self._piece(stream, ts, body[:m.start()], False)
            if line is not None:
                out.append(line)
            entry = body[m.start():]
        if complete and body.endswith(b"\r"):
            body = body[:-1]  # the terminal's \r\n line end, not content
        line = self._piece(stream, ts, body, complete)
        if line is not None:
            out.append(line)

    # ---- partial lines --------------------------------------------------------
    def _piece(self, stream: str, ts: int, body: bytes, complete: bool) -> Line | None:
        part = self._parts.get(stream)
        if part is None:
            if complete:
                if len(body) > self.max_bytes:
                    self._cut(len(body) - self.max_bytes)
                    return Line(stream, ts, body[:self.max_bytes], True)
                return Line(stream, ts, body)
            part = self._parts[stream] = [ts, bytearray(), False, 0]
        buf = part[1]
        room = self.max_bytes - len(buf)
        if len(body) > room:
            if not part[2]:
                self.truncated_lines += 1
            self.truncated_bytes += len(body) - max(room, 0)
            if room > 0:
                buf += body[:room]
            part[2] = True
        else:
            buf += body
        part[3] += 1
        if not complete:
            return None
        del self._parts[stream]
        return Line(stream, part[0], bytes(buf), part[2], part[3] > 1)

    def _cut(self, nbytes: int) -> None:
        self.truncated_lines += 1
        self.truncated_bytes += nbytes

    @property
    def torn(self) -> bool:
        """The bytes fed so far end inside a frame: the stream was cut (a TTY stream has no
        frames: a last line without newline is all it can end with)."""
        return bool(self._buf) and not self.tty

    def flush(self) -> list[Line]:
        """The unfinished lines (a last line without newline), when the stream ends."""
        out: list[Line] = []
        if self._buf:
            rest, self._buf = self._buf, b""
            if self.tty:
                self._tty_entry(rest, False, out)
            else:
                self.bad_entries += 1  # a torn frame: keep its payload all the same
                out.append(Line("stdout", 0, rest[8:] if len(rest) > 8 else rest))
        for s, (ts, buf, cut, pieces) in self._parts.items():
            out.append(Line(s, ts, bytes(buf), cut, pieces > 1))
        self._parts.clear()
        return out


class AttachDecoder:
    """The attach stream of one container -> whole lines. Unlike the logs endpoint, attach
    carries what the process wrote, as written: frames (or a TTY's raw bytes) cut where
    the writes were, no timestamps. Lines are split on newlines per stream and cut at
    `max_bytes` (the rest of an over-long line dropped and counted, as StreamDecoder)."""

    __slots__ = ("_buf", "_open", "max_bytes", "truncated_bytes", "truncated_lines", "tty")

    def __init__(self, max_bytes: int = 1 << 20, tty: bool = False) -> None:
        self.max_bytes = max_bytes
        self.tty = tty
        self._buf = b""  # an unfinished frame header or payload
        self._open: dict[str, list] = {}  # stream -> [bytearray of the unfinished line, cut?]
        self.truncated_bytes = 0
        self.truncated_lines = 0

    def feed(self, chunk: bytes) -> list[tuple[str, bytes, bool]]:
        """(stream, line, truncated) for each line completed by chunk."""
        out: list[tuple[str, bytes, bool]] = []
        if self.tty:
            self._text("stdout", chunk, out)
            return out
        buf = self._buf + chunk if self._buf else chunk
        pos, n = 0, len(buf)
        while n - pos >= 8:
            kind, size = _HEADER.unpack_from(buf, pos)
            if n - pos - 8 < size:
                break
            self._text(STREAM_NAMES[kind] if kind < 3 else "stdout", buf[pos + 8:pos + 8 + size], out)
            pos += 8 + size
        self._buf = buf[pos:]
        return out

    def _text(self, stream: str, data: bytes, out: list[tuple[str, bytes, bool]]) -> None:
        start = 0
        while True:
            nl = data.find(b"\n", start)
            piece = data[start:] if nl < 0 else data[start:nl]
            if nl < 0 and not piece:
                return
            part = self._open.get(stream)
            if part is None and nl >= 0 and len(piece) <= self.max_bytes:
                out.append((stream, piece[:-1] if self.tty and piece.endswith(b"\r") else piece, False))
            else:
                if part is None:
                    part = self._open[stream] = [bytearray(), False]
                room = self.max_bytes - len(part[0])
                if len(piece) > room:
                    if not part[1]:
                        self.truncated_lines += 1
                    part[1] = True
                    self.truncated_bytes += len(piece) - max(room, 0)
                    piece = piece[:max(room, 0)]
                part[0] += piece
                if nl >= 0:
                    out.append(self._close(stream))
            if nl < 0:
                return
            start = nl + 1

    def _close(self, stream: str) -> tuple[str, bytes, bool]:
        data, cut = self._open.pop(stream)
        line = bytes(data)
        if self.tty and line.endswith(b"\r"):
            line = line[:-1]
        return stream, line, cut

    def flush(self) -> list[tuple[str, bytes, bool]]:
        """The unfinished lines (a last line without newline) at the end of the stream."""
        self._buf = b""
        out = [self._close(s) for s in list(self._open) if self._open[s][0] or self._open[s][1]]
        self._open.clear()
        return out
