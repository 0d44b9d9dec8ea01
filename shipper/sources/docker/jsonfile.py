"""Reading a container's json-file log directly instead of streaming it through dockerd.

dockerd spends more CPU per line serving a log stream (`/containers/{id}/logs`) than the
json-file driver spends writing it. Where a container uses the json-file driver and its
files are readable here (a read-only mount of `<data-root>/containers` in compose), the
same entries are read from the files: each file line is one entry
`{"log": "...", "stream": "stdout"|"stderr", ("attrs": {...},) "time": "<RFC3339Nano>"}`,
and `time` is the very timestamp the API would put in front of that entry, so records,
ids and checkpoints are the same on both paths. A `log` without a trailing newline is a
piece of a longer line (Docker cuts lines at 16 KiB): pieces are merged exactly as the API
path merges them (StreamDecoder._piece).

- `JsonFileDecoder`: pure; file bytes -> `Line` tuples, entries older than `since` skipped.
- `log_files`: the rotated files `<id>-json.log.N ... .1` then `<id>-json.log`, oldest first.
- `JsonFileStream`: reads them from a time on, and follows the current file across
  rotations until the container stops (the source still decides what is shipped).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C string scanner; not in typeshed
from pathlib import Path
from typing import BinaryIO

from shipper.core.timefmt import parse_docker_time
from shipper.sources.docker.file_watch import WATCH
from shipper.sources.docker.stream import Line, StreamDecoder

# One read of a file; its lines go downstream as one batch. Smaller than an API read: a file
# always has a full chunk ready, and the queues are bounded in batches (memory ~ batch size).
READ_CHUNK = 64 * 1024
# Following: how long to wait for more once the file is at its end (doubling while idle; a
# write wakes it at once: file_watch.py), and how often an idle follower asks whether the
# container still runs.
POLL_MIN_S, POLL_MAX_S = 0.01, 0.25
IDLE_CHECK_S = 1.0

_HEAD = b'{"log":"'
_NL_STREAM = b'\\n","stream":"'  # the end of a whole line's `log` and the key after it
_TIME_KEY = b'","time":"'
# the stream name and the quote after it, as they follow _NL_STREAM
_STREAMS = {b'stdout"': "stdout", b'stderr"': "stderr"}
_sec_ns: dict[bytes, int] = {}


def _time_ns(ts: bytes) -> int:
    """The json-file `time` (UTC, `Z`, fraction zeros trimmed) -> epoch ns, the second's
    arithmetic cached (a dict hit per line)."""
    if len(ts) >= 21 and ts[19] == 46 and ts[-1] == 90:  # ".", "Z"
        base = _sec_ns.get(ts[:19])
        if base is None:
            if len(_sec_ns) > 4096:
                _sec_ns.clear()
            base = _sec_ns[ts[:19]] = parse_docker_time(ts[:19] + b"Z")
        digits = ts[20:-1][:9]
        return base + int(digits) * 10 ** (9 - len(digits))
    return parse_docker_time(ts)


class JsonFileDecoder(StreamDecoder):
    """json-file bytes -> whole lines (merged pieces, Docker's timestamps), like
    StreamDecoder does for the API's frames. Entries before `since_ns` are skipped (the
    API's `since`); an entry that is not valid json-file is counted in `bad_entries` and
    kept when it has a message."""

    __slots__ = ("since_ns",)

    def __init__(self, max_bytes: int = 1 << 20, tty: bool = False, since_ns: int = 0) -> None:
        super().__init__(max_bytes, tty)
        self.since_ns = since_ns

    def feed(self, chunk: bytes) -> list[Line]:
        buf = self._buf + chunk if self._buf else chunk
        end = buf.rfind(b"\n")
        if end < 0:
            self._buf = buf
            return []
        self._buf = buf[end + 1:]
        out: list[Line] = []
        append = out.append
        since = self.since_ns
        max_bytes = self.max_bytes
        time_ns = _time_ns
        scan = scanstring
        streams = _STREAMS
        for entry in buf[:end].split(b"\n"):
            # The common entry, a whole line behind a well-formed head and tail: sliced, and
            # its escapes (quotes, backslashes, tabs) undone by the JSON string scanner.
            cut = entry.rfind(_NL_STREAM)
            stream = streams.get(entry[cut + 14:cut + 21]) if cut > 0 else None
            if stream is not None and not self._parts and entry.startswith(_HEAD) and entry.endswith(b'"}'):
                t = entry.rfind(_TIME_KEY, cut)
                body = entry[8:cut]
                if t > 0 and body[-1:] != b"\\":
                    try:
                        ts = time_ns(entry[t + 10:-2])
                        if body.find(b"\\") >= 0:
                            body = scan(body.decode("utf-8", "surrogateescape") + '"', 0)[0].encode(
                                "utf-8", "surrogatepass")
                    except ValueError:
                        pass
                    else:
                        if ts < since:
                            continue
                        if self.tty and body.endswith(b"\r"):
                            body = body[:-1]
                        if len(body) <= max_bytes:
                            append((stream, ts, body, False, False))  # type: ignore[arg-type]  # a Line in all but name
                        else:
                            line = self._piece(stream, ts, body, True)
                            if line is not None:
                                append(line)
                        continue
            self._entry(entry, out)
        return out

    def _entry(self, entry: bytes, out: list[Line]) -> None:
        """Any entry the general way: JSON-decoded (escapes, pieces, attrs)."""
        try:
            doc = json.loads(entry)
            text, stream, ts = doc["log"], doc.get("stream") or "stdout", _time_ns(doc["time"].encode())
            if not isinstance(text, str) or stream not in ("stdout", "stderr"):
                raise ValueError("not a json-file entry")
        except (ValueError, KeyError, TypeError, AttributeError):
            if entry.strip():
                self.bad_entries += 1
            return
        if ts < self.since_ns:
            return
        body = text.encode("utf-8", "surrogatepass")
        complete = body.endswith(b"\n")
        if complete:
            body = body[:-1]
            if self.tty and body.endswith(b"\r"):
                body = body[:-1]
        line = self._piece(stream, ts, body, complete)
        if line is not None:
            out.append(line)

    def flush(self) -> list[Line]:
        """The unfinished lines when reading ends: pieces without their end, and a file line
        still being written (counted as bad if it does not decode)."""
        out: list[Line] = []
        if self._buf:
            rest, self._buf = self._buf, b""
            self._entry(rest, out)
        for s, (ts, buf, cut, pieces) in self._parts.items():
            out.append(Line(s, ts, bytes(buf), cut, pieces > 1))
        self._parts.clear()
        return out


def log_files(current: Path) -> list[Path]:
    """`<id>-json.log.N ... .1, <id>-json.log`: every file the driver still holds, oldest
    first (compressed rotations, `.N.gz`, are not read: the caller uses the API then)."""
    rotated = []
    for p in current.parent.glob(current.name + ".*"):
        suffix = p.name[len(current.name) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), p))
    return [p for _, p in sorted(rotated, reverse=True)] + [current]


def log_path_here(log_path: str, container_id: str, root: str) -> Path:
    """Where this process finds a container's json-file: `root` (if set) stands for the
    daemon's `<data-root>/containers` (where a compose file mounts it)."""
    return Path(root) / container_id / Path(log_path).name if root else Path(log_path)


def readable_log(log_driver: str, log_path: str, container_id: str, root: str) -> Path | None:
    """The json-file to read for a container, or None when its log must come from the API:
    another driver, compressed rotations, or nothing readable here."""
    if log_driver != "json-file" or not log_path:
        return None
    path = log_path_here(log_path, container_id, root)
    if not os.access(path, os.R_OK) or any(p.name.endswith(".gz") for p in path.parent.glob(path.name + ".*")):
        return None
    return path


class JsonFileStream:
    """One container's json-file log from a time on, as chunks of file bytes: the rotated
    files oldest first, then the current one; with `follow`, on until `running()` says the
    container stopped and the file is read to its end. A rotation while following is
    found by the inode: the file we hold is read to its end, then any newer rotated files,
    then the new current file. Files are opened and read in the event loop on purpose: a
    64 KiB read of a local file the driver just wrote costs microseconds (page cache).

    `held`: the current file, opened earlier (an auto-remove container's, held since its
    creation): read from its start whenever the path no longer opens, as after the removal
    unlinked it: an open file stays readable."""

    def __init__(self, path: Path, since_ns: int, follow: bool, running: Callable[[], Awaitable[bool]],
                 held: BinaryIO | None = None) -> None:
        self.path = path
        self.since_ns = since_ns
        self.follow = follow
        self.running = running
        self.held = held

    async def chunks(self) -> AsyncIterator[bytes]:
        files = log_files(self.path)
        for i, p in enumerate(files):
            current = i == len(files) - 1
            try:
                f = open(p, "rb")
            except OSError as exc:
                if not current or self.held is None:
                    if isinstance(exc, FileNotFoundError):
                        continue  # rotated away (the oldest) between listing and opening
                    raise
                f = os.fdopen(os.dup(self.held.fileno()), "rb")  # shares the offset: the held one stays open
                f.seek(0)
            with f:
                if current and self.follow:
                    async for chunk in self._follow(f):
                        yield chunk
                    return
                while chunk := f.read(READ_CHUNK):
                    yield chunk

    async def _follow(self, f: BinaryIO) -> AsyncIterator[bytes]:
        delay, idle = POLL_MIN_S, 0.0
        while True:
            chunk = f.read(READ_CHUNK)
            if chunk:
                delay, idle = POLL_MIN_S, 0.0
                yield chunk
                continue
            newer = self._rotated_since(os.fstat(f.fileno()).st_ino)
            if newer is not None:
                for p in newer[:-1]:
                    with open(p, "rb") as g:
                        while chunk := g.read(READ_CHUNK):
                            yield chunk
                f.close()
                f = open(newer[-1], "rb")
                continue
            if idle >= IDLE_CHECK_S:
                idle = 0.0
                if not await self.running():
                    while chunk := f.read(READ_CHUNK):  # what was written before it stopped
                        yield chunk
                    return
            await WATCH.written(f, delay)  # (woken by the next write: the delay bounds the checks above)
            idle += delay
            delay = min(delay * 2, POLL_MAX_S)

    def _rotated_since(self, inode: int) -> list[Path] | None:
        """None while the current file is the one we hold; after a rotation, the files newer
        than ours, oldest first (the last is the new current file)."""
        try:
            if os.stat(self.path).st_ino == inode:
                return None
        except FileNotFoundError:
            return None  # being rotated (renamed, not yet re-created) or removed: read on
        files = log_files(self.path)
        for i, p in enumerate(files):
            try:
                if os.stat(p).st_ino == inode:
                    return files[i + 1:]
            except FileNotFoundError:
                continue
        return files  # ours rotated out of reach: the rest, oldest first
