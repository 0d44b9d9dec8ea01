"""Waking a json-file follower when its file is written (inotify), instead of at its next poll.

A follower at the end of its file polls with a backoff up to POLL_MAX_S: a quiet container's
line then waits up to that long before it is read, on top of everything after it. With
inotify the follower sleeps until dockerd appends (IN_MODIFY on the file's inode, watched
through /proc/self/fd so a renamed or deleted file is still the one watched) or the poll
timeout (rotation and "still running?" checks keep their schedule). The watch exists only
while its follower waits: a file that is always being written (a flood) costs no events.
Where inotify is refused (no watches left: `fs.inotify.max_user_watches`), the follower polls.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import struct
from typing import BinaryIO

log = logging.getLogger("logship.docker")

_IN_MODIFY = 0x00000002
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then len bytes of name)

_libc = ctypes.CDLL(None, use_errno=True)


class FileWatch:
    """One inotify instance for every follower of one event loop."""

    def __init__(self) -> None:
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: dict[int, asyncio.Event] = {}
        self._refused = False  # inotify_init1 failed: every follower polls
        self._warned_full = False

    def _open(self) -> bool:
        loop = asyncio.get_running_loop()
        if self._fd >= 0 and self._loop is loop:
            return True
        if self._fd >= 0:  # a loop before this one (tests run several): its reader went with it
            os.close(self._fd)
            self._fd, self._events = -1, {}
        if self._refused:
            return False
        fd = _libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            self._refused = True
            log.warning("docker: inotify unavailable (%s): json-files are polled", os.strerror(ctypes.get_errno()))
            return False
        self._fd, self._loop = fd, loop
        loop.add_reader(fd, self._readable)
        return True

    async def written(self, f: BinaryIO, timeout: float) -> None:
        """Returns once `f` has bytes past its position, it was written to, or after `timeout`."""
        if not self._open():
            await asyncio.sleep(timeout)
            return
        wd = _libc.inotify_add_watch(self._fd, f"/proc/self/fd/{f.fileno()}".encode(), _IN_MODIFY)
        if wd < 0:
            if ctypes.get_errno() == errno.ENOSPC and not self._warned_full:
                self._warned_full = True  # (logged once; the followers that have a watch keep it)
                log.warning("docker: no inotify watches left (fs.inotify.max_user_watches): json-files are polled")
            await asyncio.sleep(timeout)
            return
        ev = self._events.setdefault(wd, asyncio.Event())
        ev.clear()
        try:
            if os.fstat(f.fileno()).st_size > f.tell():
                return  # written between the follower's last read and the watch
            await asyncio.wait_for(ev.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            if self._events.pop(wd, None) is not None:
                _libc.inotify_rm_watch(self._fd, wd)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        pos = 0
        while pos + _EVENT.size <= len(data):
            wd, _mask, _cookie, n = _EVENT.unpack_from(data, pos)
            pos += _EVENT.size + n
            ev = self._events.get(wd)
            if ev is not None:
                ev.set()


WATCH = FileWatch()  # the process's one instance (an inotify fd per event loop)

__all__ = ["WATCH", "FileWatch"]
