"""The disk spool: a bounded, ordered, crash-safe buffer of encoded bulk items, used
while Elasticsearch is unreachable, replayed in order when it answers again.

Layout in `<state_dir>/spool/`: numbered segment files (`00000000000000000001.seg`),
each a run of frames `u32 length | u32 crc32(payload) | payload` (little endian), and
a `head` file (`<segment> <offset>`) naming the first frame not yet delivered. The
head is only advanced after Elasticsearch held every frame before it; if the head is
behind after a crash, the frames are sent again and answered 409 (their `_id` is
deterministic), so a stale head costs a little work, never a duplicate.

A frame whose checksum fails (or a torn tail after a crash) is copied to a
`<segment>.quarantine` side file, counted (`logship_spool_quarantined_total`) and
skipped; reading resumes at the next frame whose checksum holds.

After a start, writes always go to a fresh segment: nothing is ever appended after
a possibly torn tail.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from typing import BinaryIO
from pathlib import Path

from shipper.core.metrics import METRICS

log = logging.getLogger("logship.spool")

HEADER = struct.Struct("<II")
MAX_FRAME = 256 << 20  # a length beyond this is corruption, not a document
Position = tuple[int, int]  # (segment number, byte offset of the frame)


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int, fsync: str = "segment") -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.quarantined = 0
        head_seg, head_off = self._read_head()
        segs = self._segments()
        for s in segs:  # segments wholly delivered before a crash
            if s < head_seg:
                self._path(s).unlink(missing_ok=True)
        self._segs = [s for s in segs if s >= head_seg]
        if not self._segs or self._segs[0] != head_seg:
            head_off = 0
        self._read_pos: Position = (self._segs[0], head_off) if self._segs else (0, 0)
        self._committed: Position = self._read_pos
        self.pending_bytes = sum(self._path(s).stat().st_size for s in self._segs) - head_off
        self._w_seg = (self._segs[-1] if self._segs else 0) + 1
        self._w_fd = -1
        self._w_size = 0
        self._reader: tuple[int, BinaryIO] | None = None
        if self.pending_bytes:
            log.info("spool: %d bytes left by a previous run in %d segment(s); replaying them", self.pending_bytes,
                     len(self._segs))

    # ---- files ------------------------------------------------------------------
    def _path(self, seg: int) -> Path:
        return self.dir / f"{seg:020d}.seg"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())

    def _read_head(self) -> Position:
        try:
            seg, off = (self.dir / "head").read_text().split()
            return int(seg), int(off)
        except (OSError, ValueError):
            return 0, 0

    def _write_head(self, pos: Position) -> None:
        tmp = self.dir / "head.tmp"
        tmp.write_text(f"{pos[0]} {pos[1]}\n")
        os.replace(tmp, self.dir / "head")

    # ---- writing ----------------------------------------------------------------
    def has_room(self, nbytes: int) -> bool:
        return self.pending_bytes + nbytes <= self.max_bytes or self.pending_bytes == 0

    def append(self, payloads: list[bytes]) -> list[Position]:
        """Writes the payloads (the caller checked has_room); returns their positions."""
        if self._w_fd < 0 or self._w_size >= self.segment_bytes:
            self._rotate()
        positions: list[Position] = []
        chunks: list[bytes] = []
        off = self._w_size
        for p in payloads:
            f = frame(p)
            chunks.append(f)
            positions.append((self._w_seg, off))
            off += len(f)
        data = b"".join(chunks)
        view = memoryview(data)
        while view:
            view = view[os.write(self._w_fd, view):]
        if self.fsync == "always":
            os.fsync(self._w_fd)
        self._w_size = off
        self.pending_bytes += len(data)
        METRICS.count("logship_spool_written_total", len(payloads))
        return positions

    def _rotate(self) -> None:
        if self._w_fd >= 0:
            self._close_writer()
            self._w_seg += 1
        self._w_fd = os.open(self._path(self._w_seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._w_size = 0
        self._segs.append(self._w_seg)
        if len(self._segs) == 1:
            self._read_pos = self._committed = (self._w_seg, 0)

    def _close_writer(self) -> None:
        if self._w_fd >= 0:
            if self.fsync != "never":
                os.fsync(self._w_fd)
            os.close(self._w_fd)
            self._w_fd = -1

    def close(self) -> None:
        self._close_writer()
        if self._reader:
            self._reader[1].close()
            self._reader = None

    # ---- reading ----------------------------------------------------------------
    def read(self, max_docs: int, max_bytes: int) -> list[tuple[Position, bytes]]:
        """The next frames after the last read (not yet committed), in order."""
        out: list[tuple[Position, bytes]] = []
        size = 0
        while len(out) < max_docs and size < max_bytes and self._segs:
            seg, off = self._read_pos
            got = self._read_frame(seg, off)
            if got is None:  # end of this segment
                if seg == self._w_seg or seg == self._segs[-1]:
                    break
                nxt = self._segs[self._segs.index(seg) + 1]
                self._read_pos = (nxt, 0)
                continue
            payload, next_off = got
            if payload is not None:
                out.append(((seg, off), payload))
                size += len(payload)
            self._read_pos = (seg, next_off)
        return out

    def _file(self, seg: int) -> BinaryIO:
        if self._reader is None or self._reader[0] != seg:
            if self._reader:
                self._reader[1].close()
            self._reader = (seg, open(self._path(seg), "rb"))
        return self._reader[1]

    def _read_frame(self, seg: int, off: int) -> tuple[bytes | None, int] | None:
        """(payload, next offset); payload None when a corrupt stretch was skipped;
        None at the end of the segment's written data."""
        f = self._file(seg)
        f.seek(off)
        head = f.read(HEADER.size)
        if not head:
            return None
        if len(head) == HEADER.size:
            length, crc = HEADER.unpack(head)
            if length <= MAX_FRAME:
                payload = f.read(length)
                if len(payload) == length and zlib.crc32(payload) == crc:
                    return payload, off + HEADER.size + length
        if seg == self._w_seg:
            # our own segment cannot be corrupt mid-write: a short read is a frame in progress
            return None
        return None, self._quarantine(seg, off)

    def _quarantine(self, seg: int, off: int) -> int:
        """Copies the corrupt stretch from `off` to the next valid frame (or the end) to a
        side file; returns where reading resumes."""
        data = self._path(seg).read_bytes()
        nxt = off + 1
        while nxt < len(data):
            if nxt + HEADER.size <= len(data):
                length, crc = HEADER.unpack_from(data, nxt)
                end = nxt + HEADER.size + length
                if length <= MAX_FRAME and end <= len(data) and zlib.crc32(data[nxt + HEADER.size:end]) == crc:
                    break
            nxt += 1
        nxt = min(nxt, len(data))
        with open(self.dir / f"{seg:020d}.quarantine", "ab") as q:
            q.write(data[off:nxt])
        self.quarantined += 1
        METRICS.count("logship_spool_quarantined_total")
        log.error("spool: a corrupt record in segment %d at offset %d (%d bytes) was moved to %s; "
                  "the others are replayed",
                  seg, off, nxt - off, self.dir / f"{seg:020d}.quarantine")
        return nxt

    def commit(self) -> None:
        """Everything read so far is held by Elasticsearch: advance the head, free segments."""
        seg, off = self._read_pos
        c_seg, c_off = self._committed
        freed = 0
        while self._segs and self._segs[0] < seg:
            old = self._segs.pop(0)
            p = self._path(old)
            freed += p.stat().st_size - (c_off if old == c_seg else 0)
            p.unlink(missing_ok=True)
        freed += off - (c_off if seg == c_seg else 0)
        self.pending_bytes -= freed
        self._committed = self._read_pos
        self._write_head(self._read_pos)
        if self.pending_bytes <= 0 and self._segs == [self._w_seg] and self._w_size >= self.segment_bytes // 2:
            self._rotate_empty()

    def _rotate_empty(self) -> None:
        """Drained: start a new segment so the old one's disk space is returned."""
        old = self._w_seg
        self._close_writer()
        self._w_seg += 1
        self._w_size = 0
        self._segs = []
        self._path(old).unlink(missing_ok=True)
        self.pending_bytes = 0

    def rewind(self) -> None:
        """The frames read since the last commit must be read again (their delivery was abandoned)."""
        self._read_pos = self._committed

    @property
    def empty(self) -> bool:
        return self.pending_bytes <= 0
