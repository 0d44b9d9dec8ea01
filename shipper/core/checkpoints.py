"""Per-container checkpoints: the Docker timestamp up to which Elasticsearch holds
every line, kept in one small JSON file in the state dir; and per in-container log
file (the eBPF source), the byte offset up to which it holds the file.

Written atomically (temp file, fsync, rename, fsync of the directory), so a crash
leaves the old or the new file, never a torn one; and coalesced (at most every
`interval` seconds, plus on close) rather than once per acknowledgement."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from shipper.core.metrics import METRICS

log = logging.getLogger("logship.checkpoints")

FILE_NAME = "docker-checkpoints.json"
_TICK_S = 0.1  # how soon flush_soon() is noticed


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)



def _save_counted(path: Path, body: str) -> bool:
    """One checkpoint file written atomically; a failure is counted and logged (the next
    save tries again), never raised into the pipeline."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, body.encode())
    except OSError as exc:
        METRICS.count("logship_checkpoint_errors_total", reason="write")
        log.error("checkpoints: cannot write %s: %s", path, exc)
        return False
    METRICS.count("logship_checkpoint_writes_total")
    return True

class CheckpointStore:
    """container id -> epoch ns; plus `alive_ns`, the last time the shipper saved,
    which tells which stopped containers ran while it was down."""

    def __init__(self, state_dir: Path, interval_s: float = 1.0) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self.interval_s = interval_s
        self._positions: dict[str, int] = {}
        # container id -> [its FinishedAt, the newest line time read] when its stream ended
        self._ends: dict[str, list[int]] = {}
        self.alive_ns = 0  # 0: no earlier run on this state dir
        self._dirty = False
        self._wake = asyncio.Event()
        self._persisting: asyncio.Future[None] | None = None
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_bytes())
            self._positions = {str(k): int(v) for k, v in raw.get("containers", {}).items()}
            self.alive_ns = int(raw.get("alive_ns", 0))
            self._ends = {str(k): [int(v[0]), int(v[1])] for k, v in raw.get("ends", {}).items()}
        except FileNotFoundError:
            pass
        except (ValueError, TypeError, AttributeError) as exc:
            # A corrupt file cannot come from our atomic writes; say so loudly and start over
            # (re-reading is safe: the deterministic ids turn it into 409s).
            METRICS.count("logship_checkpoint_errors_total", reason="corrupt")
            log.error("checkpoints: %s is unreadable (%s); starting without checkpoints", self.path, exc)

    def get(self, container_id: str) -> int:
        return self._positions.get(container_id, 0)

    def ids(self) -> set[str]:
        return set(self._positions)

    def __contains__(self, container_id: str) -> bool:
        return container_id in self._positions

    def advance(self, container_id: str, time_ns: int) -> None:
        if time_ns > self._positions.get(container_id, 0):
            self._positions[container_id] = time_ns
            self._dirty = True

    def register(self, container_id: str) -> bool:
        """A container about to be read: listed (at 0, nothing delivered) so that a restart
        after a crash catches it up even if none of its lines was acknowledged yet.
        True when it was not listed before (the caller then persists it: `persist()`)."""
        if container_id in self._positions:
            return False
        self._positions[container_id] = 0
        self._dirty = True
        return True

    async def persist(self) -> None:
        """Writes the file now; callers in the same loop iteration share one write (a storm
        of starting containers costs one fsync, not one each)."""
        if self._persisting is None:
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()
            self._persisting = done

            def write() -> None:
                self._persisting = None
                self.save(alive=False)
                done.set_result(None)
            loop.call_soon(write)
        await asyncio.shield(self._persisting)

    def ended(self, container_id: str, finished_ns: int, last_line_ns: int) -> None:
        """The container stopped (at FinishedAt `finished_ns`) and its log was read to the end."""
        self._ends[container_id] = [finished_ns, last_line_ns]
        self._dirty = True

    def fully_shipped(self, container_id: str, finished_ns: int) -> bool:
        """Its log was read to the end after this very stop and everything read is delivered.
        (FinishedAt alone says nothing: dockerd stamps lines as it copies them, which can
        be seconds after the process exited.)"""
        end = self._ends.get(container_id)
        return end is not None and finished_ns != 0 and end[0] == finished_ns and self.get(container_id) >= end[1]

    def forget(self, container_id: str) -> None:
        self._ends.pop(container_id, None)
        if self._positions.pop(container_id, None) is not None:
            self._dirty = True

    def flush_soon(self) -> None:
        self._wake.set()

    def save(self, alive: bool = True) -> None:
        """Writes the file; `alive` also moves the sign of life to now (the periodic save).
        persist() leaves it: containers the start-up is about to catch up on are not all
        listed yet, and a sign of life newer than their end would skip them after a crash."""
        if alive:
            self.alive_ns = time.time_ns()
        body = json.dumps({"alive_ns": self.alive_ns, "containers": self._positions, "ends": self._ends},
                          separators=(",", ":"))
        if _save_counted(self.path, body):
            self._dirty = False

    async def run(self) -> None:
        """Saves when something changed, at most once per interval (flush_soon() only
        shortens the wait); also refreshes alive_ns every few seconds."""
        await save_periodically(self)


class _Saved(Protocol):
    interval_s: float
    _dirty: bool
    _wake: asyncio.Event

    def save(self) -> None: ...


async def save_periodically(store: _Saved) -> None:
    last = time.monotonic()
    while True:
        # Plain sleeps, not wait_for/asyncio.timeout: on Python 3.11 both can swallow a
        # cancel that coincides with the timeout, and shutdown then waits forever.
        waited = 0.0
        while waited < store.interval_s and not store._wake.is_set():
            await asyncio.sleep(_TICK_S)
            waited += _TICK_S
        store._wake.clear()
        if store._dirty or time.monotonic() - last > 10 * store.interval_s:
            store.save()
            last = time.monotonic()
            await asyncio.sleep(store.interval_s)


FILES_NAME = "ebpf-file-checkpoints.json"
FILE_KEEP_NS = 7 * 86400 * 10**9  # entries not advanced for this long are dropped at load


@dataclass
class FileCheckpoint:
    """How far Elasticsearch holds one in-container log file: every byte before `offset`
    of the file with this identity (device, inode; `gen` counts the truncations seen, whose
    content restarts at offset 0). `path` is where the container saw it."""
    container: str
    path: str
    dev: int
    ino: int
    gen: int = 0
    offset: int = 0
    saved_ns: int = 0

    @property
    def key(self) -> str:
        return file_key(self.container, self.dev, self.ino)


def file_key(container: str, dev: int, ino: int) -> str:
    return f"{container}:{dev}:{ino}"


class FileCheckpointStore:
    """The eBPF source's per-file checkpoints (Filebeat's registry, in effect): same atomic
    file and coalesced writes as CheckpointStore, in their own file."""

    def __init__(self, state_dir: Path, interval_s: float = 1.0) -> None:
        self.path = Path(state_dir) / FILES_NAME
        self.interval_s = interval_s
        self.files: dict[str, FileCheckpoint] = {}
        self._dirty = False
        self._wake = asyncio.Event()
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_bytes())
            now = time.time_ns()
            for v in raw.get("files", []):
                cp = FileCheckpoint(str(v["container"]), str(v["path"]), int(v["dev"]), int(v["ino"]),
                                    int(v.get("gen", 0)), int(v["offset"]), int(v.get("saved_ns", 0)))
                if now - cp.saved_ns < FILE_KEEP_NS:
                    self.files[cp.key] = cp
        except FileNotFoundError:
            pass
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            METRICS.count("logship_checkpoint_errors_total", reason="corrupt")
            log.error("checkpoints: %s is unreadable (%s); log files are followed from their current end",
                      self.path, exc)

    def of_container(self, container: str) -> list[FileCheckpoint]:
        return [cp for cp in list(self.files.values()) if cp.container == container]

    def advance(self, cp: FileCheckpoint) -> None:
        """A newer delivered prefix of a file; an older generation (late acks of lines from
        before a truncation) never overwrites a newer one."""
        cur = self.files.get(cp.key)
        if cur is not None and (cur.gen, cur.offset) >= (cp.gen, cp.offset):
            return
        cp.saved_ns = time.time_ns()
        self.files[cp.key] = cp
        self._dirty = True

    def forget(self, key: str) -> None:
        if self.files.pop(key, None) is not None:
            self._dirty = True

    def save(self) -> None:
        body = json.dumps({"files": [asdict(cp) for cp in list(self.files.values())]}, separators=(",", ":"))
        if _save_counted(self.path, body):
            self._dirty = False

    async def run(self) -> None:
        await save_periodically(self)
