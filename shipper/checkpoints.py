"""Per-container checkpoints: the Docker timestamp up to which Elasticsearch holds
every line, kept in one small JSON file in the state dir.

Written atomically (temp file, fsync, rename, fsync of the directory), so a crash
leaves the old or the new file, never a torn one; and coalesced (at most every
`interval` seconds, plus on close) rather than once per acknowledgement."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

from shipper.metrics import METRICS

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


class CheckpointStore:
    """container id -> epoch ns; plus `alive_ns`, the last time the shipper saved,
    which tells which stopped containers ran while it was down."""

    def __init__(self, state_dir: Path, interval_s: float = 1.0) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self.interval_s = interval_s
        self._positions: dict[str, int] = {}
        self.alive_ns = 0  # 0: no earlier run on this state dir
        self._dirty = False
        self._wake = asyncio.Event()
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_bytes())
            self._positions = {str(k): int(v) for k, v in raw.get("containers", {}).items()}
            self.alive_ns = int(raw.get("alive_ns", 0))
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

    def forget(self, container_id: str) -> None:
        if self._positions.pop(container_id, None) is not None:
            self._dirty = True

    def flush_soon(self) -> None:
        self._wake.set()

    def save(self) -> None:
        self.alive_ns = time.time_ns()
        body = json.dumps({"alive_ns": self.alive_ns, "containers": self._positions}, separators=(",", ":"))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, body.encode())
            self._dirty = False
            METRICS.count("logship_checkpoint_writes_total")
        except OSError as exc:
            METRICS.count("logship_checkpoint_errors_total", reason="write")
            log.error("checkpoints: cannot write %s: %s", self.path, exc)

    async def run(self) -> None:
        """Saves when something changed, at most once per interval (flush_soon() only
        shortens the wait); also refreshes alive_ns every few seconds."""
        last = time.monotonic()
        while True:
            # Plain sleeps, not wait_for/asyncio.timeout: on Python 3.11 both can swallow a
            # cancel that coincides with the timeout, and shutdown then waits forever.
            waited = 0.0
            while waited < self.interval_s and not self._wake.is_set():
                await asyncio.sleep(_TICK_S)
                waited += _TICK_S
            self._wake.clear()
            if self._dirty or time.monotonic() - last > 10 * self.interval_s:
                self.save()
                last = time.monotonic()
                await asyncio.sleep(self.interval_s)
