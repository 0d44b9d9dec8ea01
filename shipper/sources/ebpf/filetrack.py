"""Log files as files: where each captured write landed, the bytes the probe did not copy,
and the (device, inode) identity the per-file checkpoints are kept by.

The kernel says who wrote how many bytes to which fd, and copies the first
LOGSHIP_EBPF_CAPTURE_BYTES of each write; the file keeps all of them. Each log file of a
shipped container is opened here once and kept open: through the writer's own fd
(/proc/<pid>/fd/<n>, so a file renamed or deleted while open is still read), else by its
path inside the writer's or the container's root (openat2 RESOLVE_IN_ROOT: a container's
symlink cannot point the root-privileged shipper at a host file). A cursor follows it:
the offset where its next write lands. Writes land at the cursor in ring order (the
append-mode writer of a log, one file position), which is checked against the file
wherever it has to be read anyway (otherwise one fstat per batch checks it still fits):
- a write longer than the copy: the copy must be found at the cursor; the rest is read back;
- the first write seen in a file, and the first ones after a catch-up: located by their
  content (after the hand-over point, or before it: then already read back, dropped);
- a file shorter than the cursor was truncated (copytruncate): a new generation from 0.
Bytes found between the cursor and where a write landed (a write whose event was lost or
is still in the ring) are shipped with it: no byte of the file is skipped.
"""

from __future__ import annotations

import ctypes
import os
import stat
import time
from collections import Counter
from typing import Callable, Iterator

WINDOW = 1 << 20  # how far around the cursor a write is looked for
FIRST_SEARCH_MAX = 256 << 20  # a file's first write is looked for in all of it, up to this size
READ_CHUNK = 1 << 20
TAIL = 32  # bytes before the cursor kept to tell a truncated file from an unchanged one
MAX_OPEN = 4096  # files kept open at once (least recently written ones are closed first)
IDLE_NS = 300 * 10**9  # a file not written for this long is closed (reopened on its next write)
PIN_MAX = 1024  # files of containers not reported yet kept open at once (FileTracker.pin)
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY

# openat2(2): resolve the path as if the directory fd were "/" (a container's absolute
# symlinks stay inside its root) and never through /proc magic links.
_SYS_OPENAT2 = 437  # x86_64
_RESOLVE_NO_MAGICLINKS, _RESOLVE_IN_ROOT = 0x02, 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


def open_in_root(root: str, path: str) -> int:
    """An fd for reading `path` as the process whose root is `root` (/proc/<pid>/root) sees it."""
    dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        how = _OpenHow(os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, 0,
                       _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        fd = _libc.syscall(_SYS_OPENAT2, dfd, path.encode(errors="surrogateescape"), ctypes.byref(how),
                           ctypes.sizeof(how))
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), path)
        return int(fd)
    finally:
        os.close(dfd)


def open_regular(opener: "Iterator[int]") -> tuple[int, os.stat_result] | None:
    """The first fd the opener yields that is a regular file (a FIFO or a device named like a
    log must never block or be read), with its stat."""
    for fd in opener:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            return fd, st
        os.close(fd)
    return None


def _writer_files(tgid: int, fd: int, path: str, container_pid: int) -> Iterator[int]:
    """The file a write went to: the writer's fd while it still names that file (renamed or
    deleted since is fine: app.log.1, "app.log (deleted)"; a shell's `>>` has moved its fd 1
    back to stdout by now), then its path in the writer's or the container's root."""
    link = f"/proc/{tgid}/fd/{fd}"
    try:
        if os.readlink(link).startswith(path):
            yield os.open(link, _READ_FLAGS)
    except OSError:
        pass
    for pid in (tgid, container_pid):
        if pid:
            try:
                yield open_in_root(f"/proc/{pid}/root", path)
            except OSError:
                continue


class TrackedFile:
    """One log file of one container, open for reading."""

    __slots__ = ("container", "path", "dev", "ino", "gen", "fd", "cursor", "handover_ns", "synced",
                 "file_id", "unclaimed", "known_size", "size_ns", "announced", "event_ns", "tail", "searched")

    def __init__(self, container: str, path: str, fd: int, st: os.stat_result, gen: int = 0) -> None:
        self.container = container
        self.path = path  # as the container saw it when it was opened
        self.dev, self.ino = st.st_dev, st.st_ino
        self.fd = fd
        self.gen = gen
        self.file_id = f"{self.dev}:{self.ino}:{gen}"
        self.cursor: int | None = None  # where the next write lands; None: not located yet
        self.handover_ns = 0  # writes that ended before this (monotonic ns) were read back by a catch-up
        self.synced = False  # the cursor was confirmed by a write found at it
        # Ranges shipped without their own write event (a catch-up, bytes found before a
        # write): a write found inside one was shipped; found before the cursor elsewhere,
        # the file was truncated and has grown past the cursor again.
        self.unclaimed: list[tuple[int, int]] = []
        # The last bytes shipped before the cursor (b"": not known): a write found before the
        # cursor is one shipped already while the file still holds them there, not a sign of
        # a truncation (a log of identical lines has copies of each write everywhere).
        self.tail = b""
        self.announced: str | None = None  # the file_id whose ack window the source has set up
        # The file's size as of monotonic time size_ns (covers every write that ended before);
        # size_ns is also when the file was last written, for closing idle ones.
        self.known_size = st.st_size
        self.size_ns = time.monotonic_ns()
        self.event_ns = 0  # kernel time of the newest write event placed in it
        self.searched = False  # the whole file was searched for a first write (not again)

    def shipped_unclaimed(self, start: int, end: int) -> None:
        self.unclaimed.append((start, end))
        del self.unclaimed[:-64]

    @property
    def key(self) -> tuple[str, int, int]:
        return self.container, self.dev, self.ino

    def size(self) -> int:
        return self.stat().st_size

    def stat(self) -> os.stat_result:
        """fstat, noting the size as of now (it covers every write that ended before)."""
        t = time.monotonic_ns()
        st = os.fstat(self.fd)
        self.known_size, self.size_ns = st.st_size, t
        return st


    def read(self, offset: int, n: int) -> bytes:
        out: list[bytes] = []
        while n > 0:
            b = os.pread(self.fd, min(n, READ_CHUNK), offset)
            if not b:
                break
            out.append(b)
            offset += len(b)
            n -= len(b)
        return b"".join(out)

    def truncated(self) -> None:
        """The file was cut (copytruncate): what follows is a new generation from offset 0."""
        self.gen += 1
        self.file_id = f"{self.dev}:{self.ino}:{self.gen}"
        self.cursor = 0
        self.synced = False  # writes still in the ring from before the cut are not in the file: check each
        self.unclaimed = []
        self.tail = b""

    def moved_to(self, pos: int) -> None:
        """The cursor set to `pos` past bytes read from the file (not known from a write)."""
        self.cursor = pos
        try:
            self.tail = self.read(max(0, pos - TAIL), min(TAIL, pos))
        except OSError:
            self.tail = b""

    def holds_tail(self, buf: bytes, buf_at: int) -> bool:
        """Whether `buf` (the file's bytes from offset buf_at) still has the tail before the cursor."""
        assert self.cursor is not None
        end = self.cursor - buf_at
        return bool(self.tail) and end >= len(self.tail) and buf[end - len(self.tail):end] == self.tail

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


_UNSEEN: TrackedFile | None = object()  # type: ignore[assignment]
Placed = tuple[int, bytes, bool]  # (offset of the write's bytes or -1, the bytes, still short of the write)
# Not found near the cursor while the file holds more than the search covers past it (write
# events lost in between, megabytes of them): the write lies further on. The file is read
# from the cursor instead, so its bytes are shipped in order, not as a piece.
BEYOND: Placed = (-2, b"", False)


class FileTracker:
    """The files being followed, and where each write to them landed."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, int, int], TrackedFile] = {}
        self._by_fd: dict[tuple[int, int, int], TrackedFile | None] = {}  # (tgid, fd, fd_state value) -> file
        self.notes: Counter[str] = Counter()  # what happened, for metrics (not losses)
        # (tgid, fd, fd state value) -> (cgroup, fd open for reading, its stat, what the writer's fd named, when)
        self._pins: dict[tuple[int, int, int], tuple[int, int, os.stat_result, str, int]] = {}

    def __len__(self) -> int:
        return len(self.files)

    def for_write(self, container: str, container_pid: int, tgid: int, fd: int, fdval: int,
                  path: str) -> TrackedFile | None:
        """The file a write event is about (None: it cannot be opened, e.g. deleted and its
        writer gone: the probe's copy is all there is)."""
        k = (tgid, fd, fdval)
        tf = self._by_fd.get(k, _UNSEEN)
        if tf is not _UNSEEN and (tf is None or tf.fd >= 0):
            return tf
        got = self._take_pin(k, path) or open_regular(_writer_files(tgid, fd, path, container_pid))
        tf = None
        if got is not None:
            ofd, st = got
            tf = self.files.get((container, st.st_dev, st.st_ino))
            if tf is None:
                tf = self.add(TrackedFile(container, path, ofd, st))
            else:
                os.close(ofd)
        else:
            self.notes["unopenable"] += 1
        if len(self._by_fd) > 65536:
            self._by_fd.clear()
        self._by_fd[k] = tf
        return tf

    def pin(self, cgroup: int, tgid: int, fd: int, fdval: int, is_log: Callable[[str], bool]) -> None:
        """A write event just read from the ring, of an fd no file is known for: the file the
        writer's fd names is opened now, while the writer still has it. A job writes, exits
        and (`--rm`) goes with its container in under a second, while the handling of the
        ring (in order, behind other containers' floods, or held until Docker reports the
        job) can be seconds behind; its file could then not be opened any more, and what the
        probe did not copy of it (writes over its budget) would be lost."""
        k = (tgid, fd, fdval)
        if k in self._by_fd or k in self._pins or len(self._pins) >= PIN_MAX:
            return
        link = f"/proc/{tgid}/fd/{fd}"
        try:
            if not stat.S_ISREG(os.stat(link).st_mode):  # (a device is never opened: opening one can act)
                return
            target = os.readlink(link)
            if not is_log(target.removesuffix(" (deleted)")):  # (a database's files are no concern here)
                return
            got = open_regular(iter([os.open(link, _READ_FLAGS)]))
        except OSError:  # the writer is gone already
            return
        if got is not None:
            self._pins[k] = (cgroup, got[0], got[1], target, time.monotonic_ns())
            self.notes["pinned"] += 1

    def unpin(self, cgroup: int | None = None, older_than_ns: int | None = None) -> None:
        """Pins no write took: the cgroup's (it is not shipped, or its writes went to no log),
        or those pinned before `older_than_ns` (monotonic)."""
        for k, v in list(self._pins.items()):
            if v[0] == cgroup or (older_than_ns is not None and v[4] < older_than_ns):
                os.close(self._pins.pop(k)[1])

    def _take_pin(self, k: tuple[int, int, int], path: str) -> tuple[int, os.stat_result] | None:
        pinned = self._pins.pop(k, None)
        if pinned is None:
            return None
        _, ofd, st, target, _ = pinned
        if target.startswith(path):  # (the same test as a live writer's fd gets)
            return ofd, st
        os.close(ofd)
        return None

    def add(self, tf: TrackedFile) -> TrackedFile:
        if len(self.files) >= MAX_OPEN:
            self.close(min(self.files.values(), key=lambda f: f.size_ns))
        self.files[tf.key] = tf
        return tf

    def close(self, tf: TrackedFile) -> None:
        self.files.pop(tf.key, None)
        tf.close()
        tf.fd = -1  # a cached fd lookup reopens it
        self.notes["closed"] += 1

    def close_idle(self, now_ns: int) -> None:
        for tf in [f for f in self.files.values() if now_ns - f.size_ns > IDLE_NS]:
            self.close(tf)
        self._by_fd = {k: v for k, v in self._by_fd.items() if v is None or v.fd >= 0}

    def lost_before(self, container: str) -> None:
        """Write events of the container were lost: each of its files' next write is located by
        its content (the bytes between the cursor and it are shipped with it), not taken to
        land at the cursor."""
        for tf in self.files.values():
            if tf.container == container:
                tf.synced = False

    def forget_container(self, container: str) -> None:
        for tf in [f for f in self.files.values() if f.container == container]:
            self.close(tf)
        self._by_fd = {k: v for k, v in self._by_fd.items() if v is None or v.fd >= 0}

    # ---- where a write landed ------------------------------------------------------------
    def place(self, tf: TrackedFile, data: bytes, written: int, ktime: int) -> Placed | None:
        """The whole write `written` bytes long of which the probe copied `data`: its offset
        and bytes (read back from the file past the copy). None: the write was already read
        back by a catch-up (its bytes are shipped)."""
        cur = tf.cursor
        tf.event_ns = ktime
        try:
            # The common case, at the cost of an fstat per batch: a whole copy that fits in the
            # file at the cursor (a file shorter than that was truncated: copytruncate's way).
            if tf.synced and cur is not None and len(data) == written and ktime >= tf.handover_ns and (
                    tf.known_size if ktime < tf.size_ns else tf.size()) >= cur + written:
                tf.cursor = cur + written
                tf.tail = data[-TAIL:] if written >= TAIL else (tf.tail + data)[-TAIL:]
                return cur, data, False
        except OSError:
            pass
        return self._place(tf, data, written, ktime)

    def _place(self, tf: TrackedFile, data: bytes, written: int, ktime: int) -> Placed | None:
        if ktime < tf.handover_ns:
            self.notes["caught_up"] += 1
            return None
        n = len(data)
        try:
            found = self._locate(tf, data, written)
            if found is None:
                self.notes["caught_up"] += 1
                return None
            off, before = found
            if off == -2:
                self.notes["beyond_window"] += 1
                return BEYOND
            if off < 0:
                self.notes["unplaced"] += 1
                return -1, data, n < written
            if n < written:
                data = data + tf.read(off + n, written - n)
                self.notes["read_back"] += 1
            tf.cursor = off + written
            tf.synced = True
            tf.tail = data[-TAIL:] if len(data) == written else b""
            if before:
                self.notes["unseen_bytes"] += len(before)
                tf.shipped_unclaimed(off - len(before), off)
                return off - len(before), before + data, len(data) < written
            return off, data, len(data) < written
        except OSError:
            self.notes["read_failed"] += 1
            tf.cursor, tf.tail = None, b""
            return -1, data, n < written

    def _locate(self, tf: TrackedFile, data: bytes, written: int) -> tuple[int, bytes] | None:
        """(offset of the write, bytes between the cursor and it); (-1, b""): not found;
        (-2, b""): not found, and the file goes on past what was searched; None: it lies
        wholly before the cursor (read back already)."""
        n = len(data)
        size = tf.size()
        cur = tf.cursor
        if cur is None:  # first write seen: it ended at most at the current end
            guess = size - written
            if guess >= 0 and tf.read(guess, n) == data:
                return guess, b""
            lo = max(0, size - WINDOW)
            p = self._find(tf, data, lo, size) if n else -1
            # A writer faster than the consumer (a job writing megabytes and exiting): the
            # first write seen may lie anywhere before the end. Searched once per file.
            if p < 0 and n and lo and not tf.searched and size <= FIRST_SEARCH_MAX:
                tf.searched = True
                p = self._find(tf, data, 0, lo + n - 1)
                self.notes["found_by_search"] += p >= 0
            return (p, b"") if p >= 0 else (-1, b"")
        if size < cur:
            self.notes["truncated_files"] += 1
            tf.truncated()
            cur = 0
        if not n or tf.read(cur, n) == data:
            return cur, b""
        lo = max(0, cur - WINDOW)
        buf = tf.read(lo, min(size, cur + WINDOW) - lo)
        p = buf.find(data, cur - lo)
        if p >= 0:
            return lo + p, buf[cur - lo:p]
        p = buf.rfind(data, 0, cur - lo)
        if p >= 0 and lo + p + written <= cur:
            p += lo
            if any(a <= p and p + written <= b for a, b in tf.unclaimed) or tf.holds_tail(buf, lo):
                return None
            self.notes["truncated_files"] += 1  # cut and grown past the cursor again since
            tf.truncated()
            return p, b""
        return (-2 if size > cur + WINDOW else -1), b""

    @staticmethod
    def _find(tf: TrackedFile, data: bytes, start: int, end: int) -> int:
        """The first offset of `data` in the file's bytes [start, end), read a chunk at a time."""
        at, keep = start, len(data) - 1
        while at < end:
            buf = tf.read(at, min(READ_CHUNK + keep, end - at))
            p = buf.find(data)
            if p >= 0:
                return at + p
            if len(buf) <= keep:
                break
            at += len(buf) - keep
        return -1


def find_by_identity(root: str, path: str, dev: int, ino: int) -> tuple[int, str] | None:
    """The file with this identity under `path`'s directory (where logrotate leaves the file
    it renamed: app.log.1, app.log-20261201, ...): (fd, in-container path) or None."""
    directory, _, base = path.rpartition("/")
    try:
        names = os.listdir(f"{root}{directory or '/'}")
    except OSError:
        return None
    for name in names:
        if not name.startswith(base) or name == base:
            continue
        candidate = f"{directory}/{name}"
        try:
            fd = open_in_root(root, candidate)
        except OSError:
            continue
        st = os.fstat(fd)
        if st.st_dev == dev and st.st_ino == ino and stat.S_ISREG(st.st_mode):
            return fd, candidate
        os.close(fd)
    return None


__all__ = ["BEYOND", "FileTracker", "TrackedFile", "find_by_identity", "open_in_root", "open_regular"]
