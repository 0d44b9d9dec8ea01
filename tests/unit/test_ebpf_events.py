"""Decoding the probe's ring-buffer records (layout of probe.c's struct hdr / write_ev / path_ev)."""

from __future__ import annotations

import socket
import struct

from shipper.sources.ebpf import events as E


def hdr(kind, *, flags=0, tgid=100, tid=101, fd=3, fdval=0, ktime=123456789, cgroup=77, arg1=0, arg2=0) -> bytes:
    return E.HDR.pack(kind, flags, tgid, tid, fd, fdval, ktime, cgroup, arg1, arg2)


def test_c_structs_are_laid_out_with_natural_alignment():
    text = """#define N 4
struct inner {
    u8 a;
    u64 b;   // aligned to 8
};
struct outer {
    u16 x;
    struct inner in;
    char name[3];
    u32 pad;
    s32 y;
    char data[2 * N];
};
"""
    members, size, align = E.c_struct(text, "outer", E.c_defines(text))
    assert [(m.name, m.offset, m.size) for m in members] == [
        ("x", 0, 2), ("in", 8, 16), ("name", 24, 3), ("pad", 28, 4), ("y", 32, 4), ("data", 36, 8)]
    assert (size, align) == (48, 8)
    assert E._format(members, 24, 36).format == "<3sxxxxxi"  # pads and alignment gaps are skipped bytes


def test_the_header_is_read_from_probe_c_into_the_event_fields():
    # The compiled program's sizes and offsets are checked in tests/integration/test_ebpf_probe.py.
    names = [m.name for m in E.HDR_MEMBERS if not m.name.startswith("pad")]
    assert names == ["kind", "flags", "tgid", "tid", "fd", "fdval", "ktime", "cgroup", "arg1", "arg2"]
    assert len(E.HDR.unpack(bytes(E.HDR.size))) == len(names)
    assert E.DATA_OFFSET == E.HDR.size + E.WRITE_TAIL.size


def test_write_event():
    data = b"hello\nworld\n"
    # the ring record may carry slack past len
    raw = hdr(E.WRITE, flags=E.WF_TRUNCATED, fdval=0x1201, arg1=5000) \
        + E.WRITE_TAIL.pack(b"nginx\0\0\0", len(data)) + data + b"\xff" * 8
    ev = E.decode(raw)
    assert (ev.kind, ev.tgid, ev.tid, ev.fd, ev.cgroup, ev.ktime) == (E.WRITE, 100, 101, 3, 77, 123456789)
    assert ev.comm == "nginx" and ev.data == data and ev.arg1 == 5000
    assert ev.flags & E.WF_TRUNCATED and ev.fdval & 0xFF == 1


def test_open_event_path_stops_at_nul():
    raw = hdr(E.OPEN, fd=4, arg1=E.AT_FDCWD, arg2=E.O_CLOEXEC) + b"/var/log/app.log\0junk".ljust(E.PATH_LEN, b"\0")
    ev = E.decode(raw)
    assert ev.data == b"/var/log/app.log" and ev.arg1 == -100 and ev.fd == 4


def test_connect_event_and_sockaddrs():
    addr = struct.pack("<H", socket.AF_UNIX) + b"/dev/log\0"
    ev = E.decode(hdr(E.CONNECT, arg2=110) + addr.ljust(E.PATH_LEN, b"\0"))
    assert E.sockaddr(ev.data) == (socket.AF_UNIX, "/dev/log")
    v4 = struct.pack("<H", socket.AF_INET) + struct.pack(">H", 514) + socket.inet_aton("10.0.0.1")
    assert E.sockaddr(v4) == (socket.AF_INET, "10.0.0.1:514")
    v6 = struct.pack("<H", socket.AF_INET6) + struct.pack(">H", 80) + b"\0" * 4 + socket.inet_pton(socket.AF_INET6,
                                                                                                   "::1")
    assert E.sockaddr(v6) == (socket.AF_INET6, "[::1]:80")
    assert E.sockaddr(struct.pack("<H", socket.AF_UNIX) + b"\0abstract") == (socket.AF_UNIX, "@abstract")


def test_meta_events_carry_their_args():
    ev = E.decode(hdr(E.FORK, fd=-1, arg1=4242))
    assert ev.kind == E.FORK and ev.arg1 == 4242 and ev.data == b""
    ev = E.decode(hdr(E.CLOSE, fd=3, arg1=2**32 - 1, arg2=4))
    assert (ev.fd, ev.arg1, ev.arg2) == (3, 2**32 - 1, 4)


def test_the_capture_is_a_power_of_two_within_what_the_probe_can_mask() -> None:
    from shipper.config import EbpfSettings
    from shipper.sources.ebpf.loader import CAPTURE_MAX, capture_size

    assert [capture_size(n) for n in (1, 64, 65, 4096, 8193, 1 << 20)] == [64, 64, 128, 4096, 16384, CAPTURE_MAX]
    # The default holds a whole 8-32 KiB runtime flush (Python, Java, Node), which a job
    # that exits at once leaves no file to read back from.
    assert capture_size(EbpfSettings().capture_bytes) == EbpfSettings().capture_bytes >= 32768
