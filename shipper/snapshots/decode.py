"""Ring entries -> readable events: syscall names, decoded arguments (fd -> path or
socket, open flags, sockaddrs), return values with errno names, data excerpts."""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

from shipper.snapshots.redact import IN, OUT, Excerpt, Redactor
from shipper.snapshots.ring import DATA_IO, DATA_PATH, DATA_SOCKADDR, Syscall
from shipper.snapshots.syscall_table import NAMES

AT_FDCWD = -100

# Argument kinds by syscall (positions 0..5); a missing syscall shows no arguments.
FD, PATH, OFLAGS, MODE, SIZE, INT = "fd", "path", "oflags", "mode", "size", "int"
SOCKADDR, HEX, DIRFD = "sockaddr", "hex", "dirfd"
ARGS: dict[str, tuple[tuple[str, str], ...]] = {
    "read": (("fd", FD), ("", ""), ("size", SIZE)),
    "write": (("fd", FD), ("", ""), ("size", SIZE)),
    "pread64": (("fd", FD), ("", ""), ("size", SIZE), ("pos", INT)),
    "pwrite64": (("fd", FD), ("", ""), ("size", SIZE), ("pos", INT)),
    "readv": (("fd", FD), ("", ""), ("iovcnt", INT)),
    "writev": (("fd", FD), ("", ""), ("iovcnt", INT)),
    "preadv": (("fd", FD), ("", ""), ("iovcnt", INT)),
    "pwritev": (("fd", FD), ("", ""), ("iovcnt", INT)),
    "recvfrom": (("fd", FD), ("", ""), ("size", SIZE)),
    "sendto": (("fd", FD), ("", ""), ("size", SIZE)),
    "recvmsg": (("fd", FD),),
    "sendmsg": (("fd", FD),),
    "open": (("name", PATH), ("flags", OFLAGS), ("mode", MODE)),
    "creat": (("name", PATH), ("mode", MODE)),
    "openat": (("dirfd", DIRFD), ("name", PATH), ("flags", OFLAGS), ("mode", MODE)),
    "openat2": (("dirfd", DIRFD), ("name", PATH)),
    "close": (("fd", FD),),
    "connect": (("fd", FD), ("addr", SOCKADDR)),
    "bind": (("fd", FD), ("addr", SOCKADDR)),
    "accept": (("fd", FD),),
    "accept4": (("fd", FD),),
    "listen": (("fd", FD), ("backlog", INT)),
    "shutdown": (("fd", FD), ("how", INT)),
    "socket": (("domain", INT), ("type", INT), ("proto", INT)),
    "dup": (("fd", FD),),
    "dup2": (("oldfd", FD), ("newfd", INT)),
    "dup3": (("oldfd", FD), ("newfd", INT)),
    "fcntl": (("fd", FD), ("cmd", INT)),
    "fstat": (("fd", FD),),
    "newfstatat": (("dirfd", DIRFD),),
    "lseek": (("fd", FD), ("offset", INT), ("whence", INT)),
    "fsync": (("fd", FD),),
    "fdatasync": (("fd", FD),),
    "ioctl": (("fd", FD), ("request", HEX)),
    "getdents64": (("fd", FD),),
    "sendfile": (("out_fd", FD), ("in_fd", FD)),
    "poll": (("nfds", INT), ("timeout", INT)),
    "epoll_wait": (("epfd", FD), ("maxevents", INT), ("timeout", INT)),
    "setsockopt": (("fd", FD), ("level", INT), ("optname", INT)),
    "getsockopt": (("fd", FD), ("level", INT), ("optname", INT)),
    "getsockname": (("fd", FD),),
    "getpeername": (("fd", FD),),
    "kill": (("pid", INT), ("sig", INT)),
    "exit_group": (("status", INT),),
    "exit": (("status", INT),),
    "futex": (("addr", HEX), ("op", INT)),
    "nanosleep": (),
    "clock_nanosleep": (("clock", INT),),
    "mmap": (("addr", HEX), ("length", SIZE), ("prot", INT), ("flags", HEX), ("fd", FD)),
    "munmap": (("addr", HEX), ("length", SIZE)),
    "brk": (("addr", HEX),),
}
# Syscalls whose non-negative result is a new fd (the fd table learns it).
RETURNS_FD = {"open", "openat", "openat2", "creat", "socket", "accept", "accept4", "dup", "dup2", "dup3"}

_OFLAG_NAMES = [(getattr(os, n), n) for n in (
    "O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_DSYNC",
    "O_DIRECT", "O_LARGEFILE", "O_DIRECTORY", "O_NOFOLLOW", "O_NOATIME", "O_CLOEXEC", "O_PATH", "O_TMPFILE")
    if hasattr(os, n)]
O_SYNC_ONLY = getattr(os, "O_SYNC", 0) & ~getattr(os, "O_DSYNC", 0)


def syscall_name(nr: int) -> str:
    return NAMES.get(nr, f"syscall_{nr}")


def errno_name(ret: int) -> str | None:
    """-2 -> ENOENT; None for results that are not errors."""
    if -4095 <= ret < 0:
        return errno.errorcode.get(-ret, f"E{-ret}")
    return None


def open_flags(flags: int) -> str:
    """O_WRONLY|O_CREAT|O_APPEND style; O_RDONLY when no access bit is set."""
    names: list[str] = []
    if flags & 3 == 0:
        names.append("O_RDONLY")
    tmpfile = getattr(os, "O_TMPFILE", 0)
    for bit, name in _OFLAG_NAMES:
        if name == "O_TMPFILE":
            if tmpfile and flags & tmpfile == tmpfile:
                names.append(name)
            continue
        if name == "O_DIRECTORY" and tmpfile and flags & tmpfile == tmpfile:
            continue
        if bit and flags & bit == bit:
            names.append(name)
    if O_SYNC_ONLY and flags & O_SYNC_ONLY:
        names.append("O_SYNC")
    known = 3 | getattr(os, "O_SYNC", 0)
    for bit, _ in _OFLAG_NAMES:
        known |= bit
    rest = flags & ~known
    if rest:
        names.append(hex(rest))
    return "|".join(names)


def sockaddr(data: bytes) -> str:
    """struct sockaddr bytes -> `1.2.3.4:80`, `[::1]:80`, `unix:/dev/log`, or `family=N`."""
    if len(data) < 2:
        return "?"
    family = struct.unpack_from("=H", data)[0]
    if family == socket.AF_INET and len(data) >= 8:
        port = struct.unpack_from("!H", data, 2)[0]
        return f"{socket.inet_ntop(socket.AF_INET, data[4:8])}:{port}"
    if family == socket.AF_INET6 and len(data) >= 24:
        port = struct.unpack_from("!H", data, 2)[0]
        return f"[{socket.inet_ntop(socket.AF_INET6, data[8:24])}]:{port}"
    if family == socket.AF_UNIX:
        path = data[2:]
        if path[:1] == b"\0":  # abstract socket
            return "unix:@" + path[1:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return "unix:" + path.split(b"\0", 1)[0].decode("utf-8", "replace")
    return f"family={family}"


def escape(data: bytes) -> str:
    """Printable ASCII kept, the rest as \\n, \\r, \\t, \\xNN: one line, lossless enough to read."""
    out: list[str] = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x09:
            out.append("\\t")
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


@dataclass(slots=True)
class FdNames:
    """fd -> name, learned from the window's own syscalls first (an fd opened inside the
    window, by a process gone before /proc could be read), then the source's fd table."""
    tgid: int
    lookup: Callable[[int, int], str | None] | None = None
    learned: dict[int, str] = field(default_factory=dict)
    generation: dict[int, int] = field(default_factory=dict)  # fd -> times it was closed or reused (streams)

    def name(self, fd: int) -> str | None:
        if fd in self.learned:
            return self.learned[fd]
        if self.lookup is not None:
            try:
                return self.lookup(self.tgid, fd)
            except Exception:  # noqa: BLE001 - a naming aid must never break a snapshot
                return None
        return None


READS = frozenset({"read", "pread64", "readv", "preadv", "recvfrom", "recvmsg"})


def decode_events(scs: list[Syscall], fds: FdNames, redactor: Redactor | None) -> list[dict[str, Any]]:
    """Syscalls in time order -> snapshot events; the data excerpts of each fd are redacted
    together, as the stream they are (redact.py)."""
    events: list[dict[str, Any]] = []
    excerpts: list[tuple[dict[str, Any], Excerpt]] = []
    for sc in scs:
        ev, ex = _decode(sc, fds)
        events.append(ev)
        if ex is not None:
            excerpts.append((ev, ex))
    if redactor is not None:
        redactor.scrub_streams([ex for _, ex in excerpts])
    for ev, ex in excerpts:
        _set_data(ev, ex, redactor is not None)
    return events


def decode_event(sc: Syscall, fds: FdNames, redactor: Redactor | None) -> dict[str, Any]:
    """One syscall on its own as a snapshot event (its excerpt redacted alone)."""
    return decode_events([sc], fds, redactor)[0]


def _set_data(ev: dict[str, Any], ex: Excerpt, redacted: bool) -> None:
    ev["data"] = escape(ex.out if redacted else ex.data)
    if ex.fired:
        ev["redacted"] = ex.fired


def _decode(sc: Syscall, fds: FdNames) -> tuple[dict[str, Any], Excerpt | None]:
    """One syscall as a snapshot event (JSON-ready) and its data excerpt; updates `fds`."""
    name = syscall_name(sc.nr)
    ev: dict[str, Any] = {"ts_ns": sc.ts_ns, "syscall": name, "nr": sc.nr, "tid": sc.tid, "done": sc.done}
    args: dict[str, Any] = {}
    for i, (aname, kind) in enumerate(ARGS.get(name, ())):
        if not kind:
            continue
        v = sc.args[i]
        if kind == FD:
            fd = _signed(v) & 0xFFFFFFFF
            fd = fd - (1 << 32) if fd >= 1 << 31 else fd
            label = fds.name(fd)
            args[aname] = f"{fd}({label})" if label else str(fd)
        elif kind == DIRFD:
            d = _signed(v) & 0xFFFFFFFF
            d = d - (1 << 32) if d >= 1 << 31 else d
            args[aname] = "AT_FDCWD" if d == AT_FDCWD else (f"{d}({fds.name(d)})" if fds.name(d) else str(d))
        elif kind == PATH:
            if sc.kind == DATA_PATH:
                args[aname] = sc.data.decode("utf-8", "replace")
        elif kind == SOCKADDR:
            if sc.kind == DATA_SOCKADDR:
                args[aname] = sockaddr(sc.data)
        elif kind == OFLAGS:
            args[aname] = open_flags(v & 0xFFFFFFFF)
        elif kind == MODE:
            args[aname] = oct(v & 0o7777)
        elif kind == HEX:
            args[aname] = hex(v)
        else:
            args[aname] = _signed(v)
    ev["args"] = args
    if sc.done:
        ev["ret"] = sc.ret
        err = errno_name(sc.ret)
        if err:
            ev["errno"] = err
        ev["dur_ns"] = sc.dur_ns
    ex = None
    if sc.kind == DATA_IO and sc.data:
        fd = int(sc.args[0] & 0xFFFFFFFF)
        ex = Excerpt((fd, fds.generation.get(fd, 0)), IN if name in READS else OUT, sc.data)
        ev["data_len"] = len(sc.data)
        if sc.done and sc.ret > len(sc.data):
            ev["data_truncated"] = True
    _learn(name, sc, fds)
    return ev, ex


def _learn(name: str, sc: Syscall, fds: FdNames) -> None:
    if not sc.done:
        return
    if name in RETURNS_FD and sc.ret >= 0:
        if name in ("open", "openat", "openat2", "creat") and sc.kind == DATA_PATH:
            fds.learned[sc.ret] = sc.data.decode("utf-8", "replace")
        elif name in ("dup", "dup2", "dup3"):
            src = fds.name(int(sc.args[0] & 0xFFFFFFFF))
            if src:
                fds.learned[sc.ret] = src
        elif name == "socket":
            fds.learned[sc.ret] = "socket"
        fds.generation[sc.ret] = fds.generation.get(sc.ret, 0) + 1  # a new stream on that number
    elif name == "connect" and sc.kind == DATA_SOCKADDR and (sc.ret == 0 or sc.ret == -errno.EINPROGRESS):
        fds.learned[int(sc.args[0] & 0xFFFFFFFF)] = "->" + sockaddr(sc.data)
    elif name == "close" and sc.ret == 0:
        fd = int(sc.args[0] & 0xFFFFFFFF)
        fds.learned.pop(fd, None)
        fds.generation[fd] = fds.generation.get(fd, 0) + 1
