"""Holds the json-file of every auto-remove container the moment dockerd creates it, so that a
container removed before the shipper could read it (`docker run --rm` of a job that exits
at once, on a busy host) is still read to its end: an open file stays readable after it is
unlinked. Docker's events come too late for that race (create, attach, start, exit and
removal can all happen before the shipper has handled the create event); inotify on
`<data-root>/containers` tells this process at the moment the file is created.

Its configuration (`config.v2.json`, `hostconfig.json`) is read at the same moment: once
the container is removed there is nothing left to inspect, and the filters (labels, env
`LOGSPOUT=ignore`) still decide whether it is shipped.

A file is held only until the container's log is opened the usual way (or the container
is found not shipped), and never longer than `HOLD_S`: a file held open keeps its disk
space after rotation or removal. A thread blocks on the inotify descriptor, so the open
happens within a scheduling slice, whatever the event loop is doing."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import json
import logging
import os
import select
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

from shipper.core.metrics import METRICS

log = logging.getLogger("logship.docker")

IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_IGNORED = 0x8000
IN_Q_OVERFLOW = 0x4000
IN_ONLYDIR = 0x1000000
IN_ISDIR = 0x40000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name

HOLD_S = 120.0  # a file not taken or released by then is closed (its container is read the usual way)
MAX_HELD = 512  # files held at once; the oldest is closed beyond it
MAX_WATCHED = 4096  # container directories waited on for their json-file at once

@dataclass
class Held:
    """A container's json-file, open, and its inspect-like configuration as created."""

    file: BinaryIO
    config: dict[str, Any] | None
    since: float = field(default_factory=time.monotonic)


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def read_config(directory: Path, cid: str) -> dict[str, Any] | None:
    """The container as an inspect answer would give it, from dockerd's own files (None
    when they cannot be read: the container is then shipped as the filters allow by id)."""
    try:
        cfg = json.loads((directory / "config.v2.json").read_bytes())
        host = json.loads((directory / "hostconfig.json").read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict) or not isinstance(host, dict):
        return None
    return {**cfg, "Id": cfg.get("ID") or cid, "HostConfig": host}


class LogHolder:
    """The held json-files by container id; `take` hands one over (once), `release` closes it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._held: dict[str, Held] = {}
        self._lock = threading.Lock()
        self._fd = -1
        self._stop_r, self._stop_w = -1, -1
        self._thread: threading.Thread | None = None
        self._watches: dict[int, str] = {}  # wd -> container id whose directory it watches
        self._count: Callable[..., Any] = METRICS.count

    # ---- the loop's side ----------------------------------------------------------
    def start(self) -> bool:
        """Starts watching; False (nothing held, the other paths read every container) when
        the containers directory cannot be watched here."""
        libc = _libc()
        fd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            log.info("docker: cannot hold json-files (inotify: %s)", os.strerror(ctypes.get_errno()))
            return False
        if libc.inotify_add_watch(fd, str(self.root).encode(), IN_CREATE | IN_ONLYDIR) < 0:
            log.info("docker: cannot hold json-files of %s: %s", self.root, os.strerror(ctypes.get_errno()))
            os.close(fd)
            return False
        self._fd, self._libc = fd, libc
        try:  # counted on the loop's thread: /metrics iterates the counters there
            loop = asyncio.get_running_loop()
            self._count = lambda *a, **kw: loop.call_soon_threadsafe(functools.partial(METRICS.count, *a, **kw))
        except RuntimeError:
            self._count = METRICS.count
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="logship-hold-logs", daemon=True)
        self._thread.start()
        log.info("docker: holding new containers' json-files from %s", self.root)
        return True

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(5)
            self._thread = None
            for fd in (self._fd, self._stop_r, self._stop_w):
                os.close(fd)
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for h in held:
            h.file.close()

    def take(self, cid: str) -> Held | None:
        with self._lock:
            return self._held.pop(cid, None)

    def release(self, cid: str) -> None:
        h = self.take(cid)
        if h is not None:
            h.file.close()

    def __len__(self) -> int:
        return len(self._held)

    # ---- the thread's side --------------------------------------------------------
    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                continue
            try:
                self._events(data)
            except Exception:  # never let the thread die: the other paths still read every container
                log.exception("docker: holding json-files")

    def _events(self, data: bytes) -> None:
        off = 0
        while off + _EVENT.size <= len(data):
            wd, mask, _, n = _EVENT.unpack_from(data, off)
            name = data[off + _EVENT.size:off + _EVENT.size + n].rstrip(b"\0").decode("utf-8", "replace")
            off += _EVENT.size + n
            if mask & IN_Q_OVERFLOW:
                self._count("logship_docker_hold_missed_total", reason="queue_overflow")
            elif mask & IN_IGNORED:
                self._watches.pop(wd, None)  # its directory is gone
            elif wd in self._watches:
                cid = self._watches[wd]
                if mask & (IN_CREATE | IN_MOVED_TO) and name == f"{cid}-json.log":
                    self._unwatch(wd)
                    self._hold(cid)
            elif mask & IN_ISDIR and len(name) == 64:
                self._watch(name)

    def _watch(self, cid: str) -> None:
        if len(self._watches) >= MAX_WATCHED:
            self._count("logship_docker_hold_missed_total", reason="watch_limit")
            return
        wd = self._libc.inotify_add_watch(self._fd, str(self.root / cid).encode(), IN_CREATE | IN_MOVED_TO | IN_ONLYDIR)
        if wd < 0:
            return  # removed already
        self._watches[wd] = cid
        if (self.root / cid / f"{cid}-json.log").exists():  # created before the watch was in place
            self._unwatch(wd)
            self._hold(cid)

    def _unwatch(self, wd: int) -> None:
        self._watches.pop(wd, None)
        self._libc.inotify_rm_watch(self._fd, wd)

    def _hold(self, cid: str) -> None:
        directory = self.root / cid
        try:
            f = open(directory / f"{cid}-json.log", "rb")
        except OSError:
            self._count("logship_docker_hold_missed_total", reason="open_failed")
            return
        h = Held(f, read_config(directory, cid))
        if h.config is not None and not (h.config.get("HostConfig") or {}).get("AutoRemove"):
            f.close()  # it outlives its exit: inspect and its log stay readable, nothing to hold
            return
        self._count("logship_docker_logs_held_total")
        unused: list[tuple[Held, str]] = []
        with self._lock:
            old = self._held.pop(cid, None)
            if old is not None:
                unused.append((old, "expired"))
            now = h.since
            for k in [k for k, v in self._held.items() if now - v.since > HOLD_S]:
                unused.append((self._held.pop(k), "expired"))
            while len(self._held) >= MAX_HELD:
                unused.append((self._held.pop(next(iter(self._held))), "over_bound"))
            for _, reason in unused:  # counted before the new file shows: whoever sees it sees them
                self._count("logship_docker_held_unused_total", reason=reason)
            self._held[cid] = h
        for u, _ in unused:
            u.file.close()
