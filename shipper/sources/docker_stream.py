"""Pure decoding of a Docker log stream: frame demultiplexing, Docker's timestamps,
and re-joining the 16 KiB pieces Docker splits long lines into. No I/O here."""

from __future__ import annotations

import struct
from dataclasses import dataclass

STREAM_NAMES = {0: "stdout", 1: "stdout", 2: "stderr"}
_HEADER = struct.Struct(">BxxxI")


class FrameDecoder:
    """Splits the multiplexed stream (8-byte header: stream, 3 zero bytes, big-endian
    length) into (stream name, payload). Frames may straddle reads."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        buf = self._buf
        buf += data
        out: list[tuple[str, bytes]] = []
        pos, n = 0, len(buf)
        while n - pos >= 8:
            stream, size = _HEADER.unpack_from(buf, pos)
            if n - pos - 8 < size:
                break
            out.append((STREAM_NAMES.get(stream, "stdout"), bytes(buf[pos + 8:pos + 8 + size])))
            pos += 8 + size
        del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date.
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_day_cache: dict[bytes, int] = {}


def parse_docker_time(ts: bytes) -> int:
    """RFC3339Nano as Docker writes it (UTC, `Z`, trailing fraction zeros trimmed) -> epoch ns."""
    day = ts[:10]
    days = _day_cache.get(day)
    if days is None:
        days = _days_from_civil(int(day[0:4]), int(day[5:7]), int(day[8:10]))
        if len(_day_cache) > 64:
            _day_cache.clear()
        _day_cache[day] = days
    secs = days * 86400 + int(ts[11:13]) * 3600 + int(ts[14:16]) * 60 + int(ts[17:19])
    frac = 0
    if len(ts) > 20 and ts[19:20] == b".":
        digits = ts[20:].rstrip(b"Z")
        frac = int(digits[:9].ljust(9, b"0"))
    return secs * 1_000_000_000 + frac


@dataclass(slots=True)
class Line:
    stream: str
    time_ns: int
    data: bytes
    truncated: bool = False
    merged: bool = False


class LineAssembler:
    """Turns timestamped entries into whole lines. An entry that does not end in a
    newline is a piece of a longer line (Docker cuts at 16 KiB): pieces are joined,
    byte-exact, under the first piece's timestamp, up to `max_bytes`; the rest of an
    over-long line is dropped and the line flagged truncated (and counted)."""

    __slots__ = ("max_bytes", "_parts", "truncated_bytes")

    def __init__(self, max_bytes: int = 1 << 20) -> None:
        self.max_bytes = max_bytes
        self._parts: dict[str, tuple[int, bytearray, bool]] = {}
        self.truncated_bytes = 0

    def feed(self, stream: str, entry: bytes) -> Line | None:
        sp = entry.find(b" ")
        if sp < 0:  # no timestamp: a protocol surprise, keep the bytes rather than lose them
            ts, body = 0, entry
        else:
            ts, body = parse_docker_time(entry[:sp]), entry[sp + 1:]
        complete = body.endswith(b"\n")
        if complete:
            body = body[:-1]
        pending = self._parts.get(stream)
        if pending is None:
            if complete:
                if len(body) > self.max_bytes:
                    self.truncated_bytes += len(body) - self.max_bytes
                    return Line(stream, ts, body[:self.max_bytes], truncated=True)
                return Line(stream, ts, body)
            pending = (ts, bytearray(), False)
            self._parts[stream] = pending
        first_ts, buf, cut = pending
        room = self.max_bytes - len(buf)
        if len(body) > room:
            self.truncated_bytes += len(body) - max(room, 0)
            if room > 0:
                buf += body[:room]
            cut = True
            self._parts[stream] = (first_ts, buf, cut)
        else:
            buf += body
        if not complete:
            return None
        del self._parts[stream]
        return Line(stream, first_ts, bytes(buf), truncated=cut, merged=True)

    def flush(self) -> list[Line]:
        """The unfinished lines, when the stream ends (the container stopped)."""
        out = [Line(s, ts, bytes(buf), truncated=cut, merged=True) for s, (ts, buf, cut) in self._parts.items()]
        self._parts.clear()
        return out
