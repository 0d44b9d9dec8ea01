"""The probe's ring-buffer records (probe.c: struct hdr, write_ev, path_ev) as Python values."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

# Event kinds (probe.c EV_*)
WRITE, OPEN, DUP, CLOSE, SOCKET, CONNECT, FORK, EXEC, EXIT = range(1, 10)
# Write flags (probe.c WF_*)
WF_TRUNCATED, WF_SYSLOG_ADDR = 1, 2
# fd_state values (probe.c FD_*): the low 8 bits; the upper 24 are the open's generation
FD_SEND, FD_SKIP, FD_SYSLOG = 1, 3, 4
# Kernel drop counters, by index (probe.c DROP_*)
DROP_REASONS = ("ring_full_data", "ring_full_meta", "read_user_failed", "stash_full")

AT_FDCWD = -100
O_CLOEXEC = 0o2000000
SOCK_CLOEXEC = 0o2000000

HDR = struct.Struct("<BBxxIIiIxxxxQQqq")  # kind flags pad tgid tid fd fdval pad ktime cgroup arg1 arg2
WRITE_TAIL = struct.Struct("<16sII")  # comm len pad
DATA_OFFSET = HDR.size + WRITE_TAIL.size
PATH_LEN = 256


@dataclass(slots=True)
class Event:
    kind: int
    flags: int
    tgid: int
    tid: int
    fd: int
    fdval: int  # the fd's fd_state value in the kernel map (write: as looked up; open: as set)
    ktime: int  # CLOCK_MONOTONIC ns
    cgroup: int
    # write: bytes written; open: dirfd; dup: old fd; close: last fd; socket: family; fork: child; exit: group_dead
    arg1: int
    arg2: int  # open/dup: flags; socket: type; connect: addrlen
    comm: str = ""
    data: bytes = b""  # write: captured bytes; open: path; connect: raw sockaddr


def decode(raw: bytes) -> Event:
    ev = Event(*HDR.unpack_from(raw))
    kind = ev.kind
    if kind == WRITE:
        comm, n, _ = WRITE_TAIL.unpack_from(raw, HDR.size)
        ev.comm = comm.split(b"\0", 1)[0].decode(errors="replace")
        ev.data = raw[DATA_OFFSET:DATA_OFFSET + n]
    elif kind == OPEN:
        ev.data = raw[HDR.size:HDR.size + PATH_LEN].split(b"\0", 1)[0]
    elif kind == CONNECT:
        ev.data = raw[HDR.size:HDR.size + max(0, min(ev.arg2, 112))]
    return ev


def sockaddr(raw: bytes) -> tuple[int, str]:
    """A connect() address: (family, `/dev/log` | `@abstract` | `1.2.3.4:80` | `[::1]:80`)."""
    if len(raw) < 2:
        return 0, ""
    family = int.from_bytes(raw[:2], "little")
    if family == socket.AF_UNIX:
        path = raw[2:].split(b"\0", 1)[0] if raw[2:3] != b"\0" else b"@" + raw[3:].rstrip(b"\0")
        return family, path.decode(errors="replace")
    if family == socket.AF_INET and len(raw) >= 8:
        return family, f"{socket.inet_ntop(socket.AF_INET, raw[4:8])}:{int.from_bytes(raw[2:4], 'big')}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        return family, f"[{socket.inet_ntop(socket.AF_INET6, raw[8:24])}]:{int.from_bytes(raw[2:4], 'big')}"
    return family, ""
