"""The probe's ring-buffer records (probe.c: struct hdr, write_ev, path_ev) as Python values.

The layouts and constants are read from probe.c itself at import (its `#define`s and struct
definitions), so the C stays the one source of truth; the integration test
test_ebpf_probe.py holds them to the compiled program's own struct sizes and offsets."""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass, fields
from pathlib import Path

PROBE_C = Path(__file__).with_name("probe.c")

_C_SCALARS = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "s8": "b", "s16": "h", "s32": "i", "s64": "q",
              "char": "s"}


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    offset: int
    size: int
    code: str  # struct module code: "I", "16s", ...; "" for a nested struct


def c_defines(text: str) -> dict[str, int]:
    """`#define NAME <integer>` lines (the first definition of each name)."""
    out: dict[str, int] = {}
    for name, value in re.findall(r"^#define\s+(\w+)\s+(-?\d+)\b", text, re.M):
        out.setdefault(name, int(value))
    return out


def c_struct(text: str, name: str, defines: dict[str, int]) -> tuple[list[Member], int, int]:
    """The members of `struct name` with C's natural alignment: (members, size, alignment)."""
    m = re.search(r"^struct\s+%s\s*\{(.*?)^\};" % re.escape(name), text, re.M | re.S)
    if m is None:
        raise ValueError(f"no struct {name} in probe.c")
    body = re.sub(r"//[^\n]*|/\*.*?\*/", "", m.group(1), flags=re.S)
    members: list[Member] = []
    offset, align = 0, 1
    for decl in filter(None, (d.strip() for d in body.split(";"))):
        dm = re.fullmatch(r"(struct\s+\w+|\w+)\s+(\w+)(?:\[(\w+(?:\s*\*\s*\w+)*)\])?", " ".join(decl.split()))
        if dm is None:
            raise ValueError(f"struct {name}: cannot read the member {decl!r}")
        ctype, member, count_text = dm.groups()
        count = 1
        if count_text:
            for factor in count_text.split("*"):
                factor = factor.strip()
                count *= int(factor) if factor.isdigit() else defines[factor]
        if ctype.startswith("struct "):
            _, size, a = c_struct(text, ctype.split()[1], defines)
            code = ""
        else:
            code = _C_SCALARS[ctype]
            a = size = 1 if code == "s" else struct.calcsize(code)
            if code == "s" or count > 1:
                code = f"{count}s" if code == "s" else code * count
            size *= count
        offset = -(-offset // a) * a
        members.append(Member(member, offset, size, code))
        offset += size
        align = max(align, a)
    return members, -(-offset // align) * align, align


def _format(members: list[Member], start: int, stop: int) -> struct.Struct:
    """A little-endian struct of the members in [start, stop): `pad*` members and the gaps
    alignment leaves are skipped bytes, so unpacking yields only the meaningful fields."""
    fmt, at = "<", start
    for mb in members:
        if not start <= mb.offset < stop:
            continue
        fmt += "x" * (mb.offset - at) + ("x" * mb.size if mb.name.startswith("pad") else mb.code)
        at = mb.offset + mb.size
    return struct.Struct(fmt + "x" * (stop - at))


_TEXT = PROBE_C.read_text()
_DEFINES = c_defines(_TEXT)
HDR_MEMBERS, HDR_SIZE, _ = c_struct(_TEXT, "hdr", _DEFINES)
WRITE_MEMBERS, _, _ = c_struct(_TEXT, "write_ev", _DEFINES)
_WRITE = {mb.name: mb for mb in WRITE_MEMBERS}

HDR = _format(HDR_MEMBERS, 0, HDR_SIZE)
DATA_OFFSET = _WRITE["data"].offset
WRITE_TAIL = _format(WRITE_MEMBERS, HDR_SIZE, DATA_OFFSET)  # comm, len
PATH_LEN = _DEFINES["LOGSHIP_PATH"]
ADDR_LEN = _DEFINES["LOGSHIP_ADDR"]

# Event kinds (probe.c EV_*)
WRITE, OPEN, DUP, CLOSE, SOCKET, CONNECT, FORK, EXEC, EXIT, CGROUP = (
    _DEFINES[f"EV_{k}"] for k in ("WRITE", "OPEN", "DUP", "CLOSE", "SOCKET", "CONNECT", "FORK", "EXEC", "EXIT",
                                  "CGROUP"))
# Write flags (probe.c WF_*)
WF_TRUNCATED, WF_SYSLOG_ADDR, WF_AFTER_LOSS = (_DEFINES[k] for k in ("WF_TRUNCATED", "WF_SYSLOG_ADDR", "WF_AFTER_LOSS"))
# fd_state values (probe.c FD_*): the low 8 bits; the upper 24 are the open's generation
FD_SEND, FD_SKIP, FD_SYSLOG, FD_GONE = (_DEFINES[k] for k in ("FD_SEND", "FD_SKIP", "FD_SYSLOG", "FD_GONE"))
# Kernel drop counters, by index (probe.c DROP_*), as the drop metric's reasons
_DROP_NAMES = {"DROP_RING_DATA": "ring_full_data", "DROP_RING_META": "ring_full_meta",
               "DROP_READ": "read_user_failed", "DROP_STASH_FULL": "stash_full", "DROP_BUDGET": "budget"}
DROP_REASONS = tuple(_DROP_NAMES[k] for k in sorted(_DROP_NAMES, key=_DEFINES.__getitem__))
# Per-cgroup drop counters (probe.c struct cg_drops, CG_DROP_*), as the per-container metric's reasons
_CG_DROP_NAMES = {"CG_DROP_BUDGET": "budget", "CG_DROP_RING": "ring_full"}
CG_DROP_REASONS = tuple(_CG_DROP_NAMES[k] for k in sorted(_CG_DROP_NAMES, key=_DEFINES.__getitem__))

AT_FDCWD = -100
O_CLOEXEC = 0o2000000
SOCK_CLOEXEC = 0o2000000


@dataclass(slots=True)
class Event:
    kind: int
    flags: int
    tgid: int
    tid: int
    fd: int
    fdval: int  # the fd's fd_state value in the kernel map (write: as looked up; open, dup, connect: as set)
    ktime: int  # CLOCK_MONOTONIC ns
    cgroup: int
    # write: bytes written; open: dirfd; dup: old fd; close: last fd; socket: family; fork: child; exit: group_dead;
    # cgroup: the new cgroup's id
    arg1: int
    arg2: int  # open/dup: flags; socket: type; connect: addrlen; cgroup: level
    comm: str = ""
    data: bytes = b""  # write: captured bytes; open, cgroup: path; connect: raw sockaddr


def same_open(current: int, seen: int) -> bool:
    """Whether the kernel's fd_state value `current` is still from the open (dup, connect,
    adopt) user space knows as `seen`: the upper 24 bits, its generation, are the same."""
    return current >> 8 == seen >> 8


def clears(current: int, seen: int) -> bool:
    """Whether a close user space read late (close_range, exec) may make `current` GONE."""
    return bool(seen) and current not in (0, FD_GONE) and same_open(current, seen)


def decode(raw: bytes) -> Event:
    ev = Event(*HDR.unpack_from(raw))
    kind = ev.kind
    if kind == WRITE:
        comm, n = WRITE_TAIL.unpack_from(raw, HDR.size)
        ev.comm = comm.split(b"\0", 1)[0].decode(errors="replace")
        ev.data = raw[DATA_OFFSET:DATA_OFFSET + n]
    elif kind in (OPEN, CGROUP):
        ev.data = raw[HDR.size:HDR.size + PATH_LEN].split(b"\0", 1)[0]
    elif kind == CONNECT:
        ev.data = raw[HDR.size:HDR.size + max(0, min(ev.arg2, ADDR_LEN))]
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


# The header's fields, in order, are Event's first ones: same names as probe.c's struct hdr.
_HDR_FIELDS = [mb.name for mb in HDR_MEMBERS if not mb.name.startswith("pad")]
if _HDR_FIELDS != [f.name for f in fields(Event)][:len(_HDR_FIELDS)]:  # pragma: no cover - a probe.c edit
    raise ImportError(f"probe.c struct hdr {_HDR_FIELDS} no longer matches events.Event")
