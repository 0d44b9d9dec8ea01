"""Syscall windows, pure logic: ring decoding, errno/flag/sockaddr decoding, rendering,
redaction, the rule language, triggers and the per-container rate limit."""

from __future__ import annotations

import ctypes
import os
import socket
import struct

import pytest

from shipper.config import SnapshotSettings, load
from shipper.core.container import Container
from shipper.core.record import FILE, Record
from shipper.snapshots.decode import FdNames, decode_event, errno_name, escape, open_flags, sockaddr, syscall_name
from shipper.snapshots.redact import Redactor, is_mysql_handshake_response
from shipper.snapshots.render import clock, render
from shipper.snapshots.ring import DATA_IO, DATA_PATH, DATA_SOCKADDR, RingGeometry, Syscall, decode_ring
from shipper.transforms.trigger_rules import RuleError, parse_rule
from shipper.transforms.triggers import RateLimiter, Triggers

WEB = Container("a1b2c3d4e5f6", "web", "php:8")


def rec(msg: bytes = b"x", level: str | None = None, container: Container = WEB, **kw) -> Record:
    r = Record(message=msg, time_ns=1_700_000_000_000_000_000, stream=FILE, container=container, source="ebpf",
               pid=10, tid=11, comm="php", path="/var/log/app/php_error.log", **kw)
    if level:
        r.fields["log.level"] = level
    return r


# ---- ring ----------------------------------------------------------------------------
def test_geometry_rounds_and_sizes():
    g = RingGeometry.from_settings(SnapshotSettings(ring_entries=50, data_bytes=100, max_threads=10))
    assert (g.entries, g.data_bytes) == (64, 128)
    assert ctypes.sizeof(g.entry_type()) == 88 + 128 == g.entry_bytes
    assert g.memory_bytes == 10 * (8 + 64 * 216)
    assert "-DLOGSHIP_CAPTURE_DATA=1" in g.cflags()
    assert "-DLOGSHIP_CAPTURE_DATA=0" in RingGeometry.from_settings(SnapshotSettings(capture_data=False)).cflags()


def _slots(g: RingGeometry, entries: list[tuple[int, int, int, bool, bytes]], tid: int = 7):
    E = g.entry_type()
    slots = [E() for _ in range(g.entries)]
    for i, (ts, nr, ret, done, data) in enumerate(entries):
        e = slots[i % g.entries]
        e.ts, e.nr, e.ret, e.done, e.tid = ts, nr, ret, int(done), tid
        e.data_len, e.kind = len(data), DATA_IO if data else 0
        ctypes.memmove(ctypes.addressof(e) + E.data.offset, data, len(data))
    return slots


def test_decode_ring_oldest_first_after_wrap_with_binary_data():
    g = RingGeometry.from_settings(SnapshotSettings(ring_entries=4))
    # 6 completed syscalls into 4 slots: the ring keeps the last 4; slot 6%4 holds one in progress.
    entries = [(100 + i, 1, i, True, b"\x02\x00ab" if i == 5 else b"") for i in range(6)]
    slots = _slots(g, entries)
    slots[6 % 4].done, slots[6 % 4].ts = 0, 200  # overwrites ts=102: the syscall now in progress
    r = decode_ring(6, slots, 7, mono_to_epoch=1000)
    assert [s.ts_ns for s in r.entries] == [1103, 1104, 1105, 1200]
    assert r.entries[-1].done is False and r.entries[2].data == b"\x02\x00ab"  # NUL bytes kept
    assert r.overwritten == 3


def test_decode_ring_skips_other_threads_and_empty_slots():
    g = RingGeometry.from_settings(SnapshotSettings(ring_entries=4))
    slots = _slots(g, [(100, 0, 0, True, b""), (101, 0, 0, True, b"")])
    slots[1].tid = 99
    assert [s.ts_ns for s in decode_ring(2, slots, 7, 0).entries] == [100]


# ---- decode ----------------------------------------------------------------------------
def test_errno_and_names():
    assert errno_name(-2) == "ENOENT" and errno_name(-115) == "EINPROGRESS"
    assert errno_name(0) is None and errno_name(5) is None and errno_name(-5000) is None
    assert syscall_name(42) == "connect" and syscall_name(257) == "openat" and syscall_name(999) == "syscall_999"


def test_open_flags():
    assert open_flags(os.O_WRONLY | os.O_CREAT | os.O_APPEND) == "O_WRONLY|O_CREAT|O_APPEND"
    assert open_flags(os.O_RDONLY | os.O_CLOEXEC) == "O_RDONLY|O_CLOEXEC"
    assert open_flags(os.O_RDWR | os.O_TRUNC) == "O_RDWR|O_TRUNC"


def test_sockaddr():
    sin = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 3306) + socket.inet_aton("172.17.0.1") + bytes(8)
    assert sockaddr(sin) == "172.17.0.1:3306"
    sin6 = struct.pack("=H", socket.AF_INET6) + struct.pack("!H", 80) + bytes(4) + socket.inet_pton(socket.AF_INET6,
                                                                                                    "::1")
    assert sockaddr(sin6) == "[::1]:80"
    assert sockaddr(struct.pack("=H", socket.AF_UNIX) + b"/dev/log\0") == "unix:/dev/log"
    assert sockaddr(b"\x02") == "?"


def test_escape():
    assert escape(b"ok \\ \n\r\t\x00\xff") == "ok \\\\ \\n\\r\\t\\x00\\xff"


def sc(nr: int, args: tuple[int, ...] = (0,) * 6, ret: int = 0, kind: int = 0, data: bytes = b"",
       ts: int = 1) -> Syscall:
    return Syscall(ts_ns=ts, dur_ns=5, tid=11, nr=nr, args=(*args, *(0,) * (6 - len(args))), ret=ret, done=True,
                   kind=kind, data=data)


def test_decode_learns_fds_inside_the_window_and_from_the_table():
    fds = FdNames(10, lambda tgid, fd: "socket:unix:/dev/log" if (tgid, fd) == (10, 9) else None)
    ev = decode_event(sc(257, (0xFFFFFF9C, 0, os.O_WRONLY | os.O_APPEND, 0o644), ret=3, kind=DATA_PATH,
                         data=b"/var/log/app/php_error.log"), fds, None)
    assert ev["args"] == {"dirfd": "AT_FDCWD", "name": "/var/log/app/php_error.log", "flags": "O_WRONLY|O_APPEND",
                          "mode": "0o644"}
    ev = decode_event(sc(1, (3, 0, 14), ret=14, kind=DATA_IO, data=b"Database error"), fds, None)
    assert ev["args"]["fd"] == "3(/var/log/app/php_error.log)" and ev["data"] == "Database error"
    assert decode_event(sc(1, (9, 0, 1), ret=1), fds, None)["args"]["fd"] == "9(socket:unix:/dev/log)"
    sin = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 3306) + socket.inet_aton("10.0.0.2") + bytes(8)
    ev = decode_event(sc(42, (4, 0, 16), ret=-115, kind=DATA_SOCKADDR, data=sin), fds, None)
    assert ev["errno"] == "EINPROGRESS" and ev["args"]["addr"] == "10.0.0.2:3306"
    assert decode_event(sc(45, (4, 0, 100), ret=5, kind=DATA_IO, data=b"hello"), fds,
                        None)["args"]["fd"] == "4(->10.0.0.2:3306)"
    decode_event(sc(3, (3,)), fds, None)  # close forgets
    assert decode_event(sc(1, (3, 0, 1), ret=1), fds, None)["args"]["fd"] == "3"


# ---- render ------------------------------------------------------------------------------
def test_render_sysdig_style_with_gaps():
    ts = 1_700_000_000 * 10**9 + 408938827
    assert clock(ts).endswith(":20.408938827")
    doc = {"logship.snapshot.id": "S1", "container.name": "web", "process.name": "httpd", "process.thread.id": 28599,
           "message": "Database error", "snapshot": {"trigger": "t", "ring_overwritten": 3, "events_lost": 2},
           "events": [
               {"ts_ns": ts, "syscall": "recvfrom", "done": True, "ret": 72, "phase": "before",
                "args": {"fd": "14(127.0.0.1:51525->127.0.0.1:3306)", "size": 4096}, "data": "Access denied",
                "data_truncated": True},
               {"ts_ns": ts + 1, "syscall": "connect", "done": True, "ret": -115, "errno": "EINPROGRESS",
                "phase": "after", "args": {}},
               {"ts_ns": ts + 2, "syscall": "read", "done": False, "phase": "after", "args": {"fd": "3"}},
           ]}
    lines = render(doc).splitlines()
    assert (f"{clock(ts)} httpd (28599) < recvfrom fd=14(127.0.0.1:51525->127.0.0.1:3306) size=4096 res=72 "
            "data=Access denied...") in lines
    assert any("ring overwrote 3 events" in x for x in lines) and any("2 events lost" in x for x in lines)
    assert lines.index("# ---- the log line was written above ----") == len(lines) - 3
    assert lines[-2].endswith("< connect res=-115(EINPROGRESS)") and " > read fd=3" in lines[-1]


# ---- redaction -------------------------------------------------------------------------
@pytest.mark.parametrize("raw, secret", [
    (b"POST /login HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n", b"dXNlcjpwYXNz"),
    (b"GET /x HTTP/1.1\r\nX: Bearer abc.def.ghi\r\n", b"abc.def.ghi"),
    (b"user=bob&password=hunter2&next=/", b"hunter2"),
    (b"pass=s3cr3t", b"s3cr3t"),
    (b'{"api_key": "k-123", "x": 1}', b"k-123"),
    (b"apikey: AbCd1234", b"AbCd1234"),
    (b"aws AKIAABCDEFGHIJKLMNOP here", b"AKIAABCDEFGHIJKLMNOP"),
])
def test_redaction_scrubs_secrets(raw, secret):
    out, fired = Redactor().scrub(raw)
    assert secret not in out and b"***" in out and fired


def test_redaction_keeps_plain_text_and_custom_patterns():
    text = b"Access denied for user 'root'@'localhost' (using password: YES)"
    assert Redactor().scrub(text) == (text, [])
    assert Redactor(["card=[0-9]+"]).scrub(b"card=4111")[0] == b"***"
    with pytest.raises(ValueError):
        Redactor(["("])


def _handshake_response() -> bytes:
    caps = (0x200 | 0x8000 | 0x80000).to_bytes(4, "little")
    body = caps + (16 << 20).to_bytes(4, "little") + b"\x21" + bytes(23) + b"root\0" + b"\x14" + b"S" * 20
    return len(body).to_bytes(3, "little") + b"\x01" + body


def test_mysql_auth_packet_is_redacted_alone_and_after_a_greeting():
    pkt = _handshake_response()
    assert is_mysql_handshake_response(pkt)
    out, fired = Redactor().scrub(pkt)
    assert fired == ["mysql-auth"] and b"root" not in out and b"S" * 20 not in out
    fds = FdNames(10)
    greeting = b"\x4a\x00\x00\x00\x0a8.0.36\x00" + bytes(60)
    decode_event(sc(0, (5, 0, 4096), ret=len(greeting), kind=DATA_IO, data=greeting), fds, Redactor())
    ev = decode_event(sc(1, (5, 0, 12), ret=12, kind=DATA_IO, data=b"\x08\x00\x00\x01rootpass"), fds, Redactor())
    assert ev["redacted"] == ["mysql-auth"] and "rootpass" not in ev["data"]


# ---- rules and triggers -------------------------------------------------------------------
def test_rule_language():
    r = parse_rule("container=web and message~Database")
    assert r.matches(rec(b"Database error")) and not r.matches(rec(b"fine"))
    assert not r.matches(rec(b"Database error", container=Container("ffff00001111", "db", "mysql")))
    assert parse_rule('message~"Database (error|gone)" and level=ERROR').matches(rec(b"Database gone", "error"))
    assert parse_rule("container=a1b2c3 and path~php_error").matches(rec())
    assert parse_rule("stream=file").matches(rec()) and not parse_rule("level=error").matches(rec())


@pytest.mark.parametrize("bad, says", [
    ("", "empty rule"), ("colour=red", "unknown key 'colour'"), ("container", "incomplete condition"),
    ("container=", "missing value"), ("container=web and", "must follow the final `and`"),
    ("container=web or level=error", "expected `and`"), ("message~(", "bad regex"),
])
def test_rule_errors_are_clear(bad, says):
    with pytest.raises(RuleError, match=None) as e:
        parse_rule(bad)
    assert says in str(e.value)


def test_triggers_level_regex_containers_and_armed_rules():
    t = Triggers(SnapshotSettings(message_regex="Database"))
    assert t.match(rec(b"x", "error")) == "log.level=error"
    assert t.match(rec(b"x", "critical")) and not t.match(rec(b"x", "warning")) and not t.match(rec(b"x"))
    assert t.match(rec(b"Database gone", "info")) == "message~Database"
    only_db = Triggers(SnapshotSettings(containers=("db*",)))
    assert only_db.match(rec(b"x", "error")) is None
    rid, _ = only_db.arm("container=web and message~boom")
    assert str(only_db.match(rec(b"boom"))).startswith(f"armed#{rid}")
    assert only_db.disarm(rid) and only_db.match(rec(b"boom")) is None
    assert Triggers(SnapshotSettings(min_level="off")).match(rec(b"x", "emergency")) is None


def test_rate_limit_per_container_sliding_minute():
    now = [0.0]
    rl = RateLimiter(3, clock=lambda: now[0])
    assert [rl.allow("a") for _ in range(4)] == [True, True, True, False]
    assert rl.allow("b")
    now[0] = 59.9
    assert not rl.allow("a")
    now[0] = 60.0
    assert rl.allow("a")


def test_settings_from_env():
    cfg = load({"LOGSHIP_SNAPSHOT_MESSAGE_REGEX": "Database", "LOGSHIP_SNAPSHOT_CONTAINERS": "web,api",
                "LOGSHIP_SNAPSHOT_CAPTURE_DATA": "false"})
    assert cfg.snapshot.containers == ("web", "api") and cfg.snapshot.capture_data is False
