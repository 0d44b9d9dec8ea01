"""fd -> what it is (a path, `socket:unix:/dev/log`, `tcp:10.0.0.2:4711->1.2.3.4:80`), per process.

Kept the way sysdig's user space does it: a /proc scan when a container is first seen,
then the probe's open/dup/close/socket/connect/fork/exec/exit events. Paths are the ones
the process sees (its mount namespace): /proc/<pid>/fd links, read from the host, show
them that way too. Used by the eBPF source (which fds are log files) and by syscall
snapshots (to decode fds), hence `lookup`."""

from __future__ import annotations

import os
import posixpath
import socket
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from shipper.sources.ebpf.events import AT_FDCWD, O_CLOEXEC, sockaddr

CLOSE_RANGE_CLOEXEC = 4
_SOCK_TYPE: dict[int, str] = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}


def proc_cwd(tgid: int, proc: Path = Path("/proc")) -> str | None:
    try:
        return os.readlink(proc / str(tgid) / "cwd")
    except OSError:
        return None


class Fd(NamedTuple):
    desc: str
    cloexec: bool = False
    # The kernel's fd_state value as of the last event about this fd (0: none, or GONE):
    # a close_range or exec read late clears the kernel's entry only while it still holds
    # this generation, never a newer open's at the same number (loader.py close_fd).
    fdval: int = 0


class FdTable:
    def __init__(self, cwd_of: Callable[[int], str | None] = proc_cwd) -> None:
        self._procs: dict[int, dict[int, Fd]] = {}  # tgid -> fd -> Fd
        self._cwd_of = cwd_of

    # ---- queries ----------------------------------------------------------------------
    def lookup(self, tgid: int, fd: int) -> str | None:
        fds = self._procs.get(tgid)
        entry = fds.get(fd) if fds is not None else None
        return entry.desc if entry is not None else None

    def fds(self, tgid: int) -> dict[int, str]:
        return {fd: e.desc for fd, e in self._procs.get(tgid, {}).items()}

    def processes(self) -> Iterator[int]:
        return iter(list(self._procs))

    def __len__(self) -> int:
        return len(self._procs)

    def __contains__(self, tgid: int) -> bool:
        return tgid in self._procs

    # ---- updates from events -------------------------------------------------------------
    def set(self, tgid: int, fd: int, desc: str, cloexec: bool = False, fdval: int = 0) -> None:
        self._procs.setdefault(tgid, {})[fd] = Fd(desc, cloexec, fdval)

    def adopted(self, tgid: int, fd: int, fdval: int) -> None:
        """User space set the kernel's entry (loader.py adopt_fd)."""
        entry = self._procs.get(tgid, {}).get(fd)
        if entry is not None:
            self._procs[tgid][fd] = entry._replace(fdval=fdval)

    def resolve(self, tgid: int, dirfd: int, path: str) -> str:
        """An openat() path made absolute: against the dirfd's path, or the cwd for AT_FDCWD
        (best effort: a process already gone keeps its relative path)."""
        if path.startswith("/"):
            return posixpath.normpath(path)
        base = self._cwd_of(tgid) if dirfd == AT_FDCWD else self.lookup(tgid, dirfd)
        if not base or not base.startswith("/"):
            return path
        return posixpath.normpath(posixpath.join(base, path))

    def opened(self, tgid: int, fd: int, dirfd: int, path: str, flags: int, fdval: int = 0) -> str:
        full = self.resolve(tgid, dirfd, path)
        self.set(tgid, fd, full, bool(flags & O_CLOEXEC), fdval)
        return full

    def dup(self, tgid: int, old: int, new: int, flags: int, fdval: int = 0) -> str | None:
        entry = self._procs.get(tgid, {}).get(old)
        if entry is None:
            self.close(tgid, new)
            return None
        self.set(tgid, new, entry.desc, bool(flags & O_CLOEXEC), fdval)
        return entry.desc

    def close(self, tgid: int, fd: int) -> bool:
        return self._procs.get(tgid, {}).pop(fd, None) is not None

    def close_range(self, tgid: int, first: int, last: int, flags: int) -> list[tuple[int, int]]:
        """The fds closed, with their fdval (CLOSE_RANGE_CLOEXEC only marks them)."""
        fds = self._procs.get(tgid, {})
        hit = [fd for fd in fds if first <= fd <= last]
        if flags & CLOSE_RANGE_CLOEXEC:
            for fd in hit:
                fds[fd] = fds[fd]._replace(cloexec=True)
            return []
        return [(fd, fds.pop(fd).fdval) for fd in hit]

    def socket(self, tgid: int, fd: int, family: int, type_: int) -> None:  # (fdval 0: the kernel made it GONE)
        kind = "unix" if family == socket.AF_UNIX else _SOCK_TYPE.get(type_ & 0xF, "inet") if family in (
            socket.AF_INET, socket.AF_INET6) else f"family{family}"
        self.set(tgid, fd, f"socket:{kind}", bool(type_ & O_CLOEXEC))

    def connect(self, tgid: int, fd: int, raw: bytes, fdval: int = 0) -> str:
        family, addr = sockaddr(raw)
        old = self._procs.get(tgid, {}).get(fd, Fd(""))
        if family == socket.AF_UNIX:
            desc = f"socket:unix:{addr}"
        else:
            kind = old.desc.removeprefix("socket:") if old.desc.startswith("socket:") else "tcp"
            desc = f"{kind}:->{addr}"
        self.set(tgid, fd, desc, old.cloexec, fdval)
        return desc

    def fork(self, parent: int, child: int) -> None:
        """A new process inherits its parent's fds. Threads are forks too (the tracepoint
        cannot tell them apart): their copy is keyed by their tid, never looked up, and
        dropped at their exit."""
        fds = self._procs.get(parent)
        if fds is not None:
            self._procs[child] = dict(fds)

    def exec(self, tgid: int) -> list[tuple[int, int]]:
        """execve() closes the close-on-exec fds; returns them with their fdval."""
        fds = self._procs.get(tgid, {})
        return [(fd, fds.pop(fd).fdval) for fd in [fd for fd, e in fds.items() if e.cloexec]]

    def exit(self, tgid: int) -> list[int]:
        return list(self._procs.pop(tgid, {}))

    # ---- /proc scan --------------------------------------------------------------------
    def scan(self, pid: int, proc: Path = Path("/proc")) -> int:
        """Adds an existing process's fds (those opened before the probe saw it); returns
        how many /proc shows. A process gone meanwhile yields 0. An fd the table knows from
        an event stays as that event left it: /proc shows the process as it is now, while the
        events not read yet (a busy machine: seconds of them) still come, in order; an
        exiting process shows no fds at all, yet its last writes are still in the ring."""
        fd_dir = proc / str(pid) / "fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            return 0
        sockets: dict[str, str] | None = None
        fds = self._procs.setdefault(pid, {})
        for name in names:
            fd = int(name)
            if fd in fds:
                continue
            try:
                target = os.readlink(fd_dir / name)
            except OSError:
                continue
            if target.startswith("socket:["):
                if sockets is None:
                    sockets = socket_inodes(proc / str(pid) / "net")
                target = sockets.get(target[8:-1], target)
            fds[fd] = Fd(target)
        return len(names)


def links_to_a_stream(root: Path, path: str, hops: int = 8) -> bool:
    """True when `path`, seen from the file system at `root` (/proc/<pid>/root), is a
    symlink chain ending in /dev/ or /proc/: the Docker-image habit of linking a log file
    to /dev/stdout, whose lines the Docker source already ships. False when it cannot be
    told (process gone): the path is trusted."""
    p = path
    for _ in range(hops):
        if p.startswith(("/dev/", "/proc/")):
            return True
        try:
            target = os.readlink(str(root) + p)
        except OSError:  # not a symlink, or nothing there
            return False
        p = posixpath.normpath(target if target.startswith("/") else posixpath.join(posixpath.dirname(p), target))
    return False


def socket_inodes(net: Path) -> dict[str, str]:
    """inode -> description, from a process's /proc/<pid>/net tables (its network namespace)."""
    out: dict[str, str] = {}
    try:
        for line in (net / "unix").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 7:
                out[parts[6]] = "socket:unix:" + (parts[7] if len(parts) > 7 else "")
    except OSError:
        pass
    for name, kind in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
        try:
            lines = (net / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) >= 10:
                out[parts[9]] = f"{kind}:{_hex_addr(parts[1])}->{_hex_addr(parts[2])}"
    return out


def _hex_addr(s: str) -> str:
    """`0100007F:0050` (the kernel's little-endian hex) -> `127.0.0.1:80`."""
    host, _, port = s.partition(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, raw[::-1])}:{int(port, 16)}"
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return f"[{socket.inet_ntop(socket.AF_INET6, words)}]:{int(port, 16)}"
