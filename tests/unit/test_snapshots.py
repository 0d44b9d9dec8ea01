"""Syscall windows, pure logic: ring decoding, errno/flag/sockaddr decoding, rendering,
redaction, the rule language, triggers and the per-container rate limit."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import time

import pytest

from shipper.config import SnapshotSettings, load
from shipper.core.container import Container
from shipper.core.record import FILE, Record
from shipper.snapshots.decode import (FdNames, decode_event, decode_events, errno_name, escape, open_flags, sockaddr,
                                      syscall_name)
from shipper.snapshots.redact import Excerpt, Redactor, is_mysql_handshake_response
from shipper.snapshots.render import clock, render
from shipper.snapshots.ring import DATA_IO, DATA_PATH, DATA_SOCKADDR, RingGeometry, Syscall, decode_ring
from shipper.transforms.trigger_rules import RuleError, parse_rule
from shipper.snapshots.scope import SnapshotScope
from shipper.transforms.triggers import MAX_ARMED_RULES, RateLimiter, Triggers

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
    assert g.memory_bytes == 10 * (8 + 64 * 216) + 8 * g.pids
    assert "-DLOGSHIP_IO_BYTES=100" in g.cflags()
    assert RingGeometry.from_settings(SnapshotSettings()).io_bytes == 80  # sysdig's snaplen
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
def _stream(*parts: tuple[str, bytes], fd: int = 5) -> list[Excerpt]:
    exs = [Excerpt(fd, d, data) for d, data in parts]
    Redactor().scrub_streams(exs)
    return exs


def _mysql(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


JWT = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
PEM = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END RSA PRIVATE KEY-----\n"


# The unit table: every case of issue 21 (and the old ones), one excerpt each.
@pytest.mark.parametrize("raw, secret", [
    (b"POST /login HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n", b"dXNlcjpwYXNz"),
    (b"GET /x HTTP/1.1\r\nX: Bearer abc.def.ghi\r\n", b"abc.def.ghi"),
    (b"user=bob&password=hunter2&next=/", b"hunter2"),
    (b"pass=s3cr3t", b"s3cr3t"),
    (b'{"api_key": "k-123", "x": 1}', b"k-123"),
    (b"apikey: AbCd1234", b"AbCd1234"),
    (b"aws AKIAABCDEFGHIJKLMNOP here", b"AKIAABCDEFGHIJKLMNOP"),
    (b'{"id_token": "abc.def", "ok": 1}', b"abc.def"),
    (b"auth_token=tok123456", b"tok123456"),
    (b'{"session_token":"sess-9f8e7d"}', b"sess-9f8e7d"),
    (b"sessionToken: Zm9vYmFy", b"Zm9vYmFy"),
    (b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", b"wJalrXUtnFEMI"),
    (b"export DB_PASSWORD='pa ss;word'\n", b"pa ss;word"),
    (b"password = correct horse; battery staple\nnext", b"horse; battery"),
    (b'"password": "with \'quote\' inside" }', b"quote"),
    (b"X-Api-Key: 0123456789abcdef\r\n", b"0123456789abcdef"),
    (b"Cookie: sid=abcdef123\r\n", b"abcdef123"),
    (b"got " + JWT + b" from idp", JWT[40:80]),
    (b"key:\n" + PEM, b"MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo"),
    (b"DATABASE_URL=postgres://app:s3cretpw@db:5432/app", b"s3cretpw"),
    (b"fetch https://user:hunter22@example.com/x", b"hunter22"),
    (b"clone https://ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789@github.com/a/b", b"ghp_AbCdEf"),
    (b"token ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 used", b"ghp_AbCdEfGhIj"),
    (b"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", b"github_pat_11ABCDEFG"),
    (b"glpat-abcdefghij0123456789", b"glpat-abcdefghij"),
    (b"slack xoxb-1234567890-abcdefghij", b"xoxb-1234567890"),
    (b"p\x00\x00\x00\x0dhunter2pw\x00", b"hunter2pw"),  # PostgreSQL PasswordMessage
    (b"*2\r\n$4\r\nAUTH\r\n$8\r\nredispass\r\n", b"redispass"),  # Redis AUTH (RESP)
    (b"*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$9\r\nredispass\r\n", b"redispass"),  # Redis 6 ACL AUTH
    (b"AUTH redispass\r\n", b"redispass"),  # Redis inline
    (b"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$6\r\nnewpw1\r\n", b"newpw1"),
    (b"AUTH PLAIN AHVzZXIAcGFzc3dvcmQ=\r\n", b"AHVzZXIAcGFzc3dvcmQ="),  # SMTP
    (b"a1 LOGIN alice imappass\r\n", b"imappass"),  # IMAP
    (b"PASS pop3pass\r\n", b"pop3pass"),  # POP3
    (b"ALTER USER app IDENTIFIED BY 'sqlpass';", b"sqlpass"),
    (b"AIzaSyA1234567890abcdefghijklmnopqrstuv", b"AIzaSyA12345"),
])
def test_redaction_scrubs_secrets(raw, secret):
    out, fired = Redactor().scrub(raw)
    assert secret not in out and b"***" in out and fired, out


@pytest.mark.parametrize("text", [
    b"Access denied for user 'root'@'localhost' (using password: YES)",
    b"author=John keyboard=us passenger=3",
    b'{"token": null, "password": false}',
    b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n",
])
def test_redaction_keeps_plain_text(text):
    assert Redactor().scrub(text) == (text, [])


def test_redaction_custom_patterns_are_re2():
    assert Redactor(["card=[0-9]+"]).scrub(b"card=4111")[0] == b"***"
    with pytest.raises(ValueError):
        Redactor(["("])
    with pytest.raises(ValueError):
        Redactor(["(a)\\1"])  # a backreference: not RE2


def test_redaction_sees_an_fd_as_a_stream():
    a, b = _stream(("out", b"GET / HTTP/1.1\r\nAuthorization: Bea"), ("out", b"rer abcdefghijklmnop\r\nHost: x\r\n"))
    assert b"Bea" not in a.out and b"abcdefghijklmnop" not in b.out and b"Host: x" in b.out
    a, b = _stream(("out", b"GET / HTTP/1.1\r\nAuthoriz"), ("out", b"ation: Bearer abcdefghijklmnop\r\n"))
    assert b"abcdefghijklmnop" not in b.out
    a, b = _stream(("in", b"token " + JWT[:30]), ("in", JWT[30:] + b" ok"))
    assert JWT[:30] not in a.out and JWT[40:] not in b.out and b.out.endswith(b" ok")
    # an excerpt of another fd is another stream
    a, b = _stream(("out", b"Authorization: Bea"), ("out", b"rer-looking text\n"))
    exs = [Excerpt(1, "out", b"Authorization:"), Excerpt(2, "out", b" plain text\n")]
    Redactor().scrub_streams(exs)
    assert exs[1].out == b" plain text\n"


def test_mysql_every_client_packet_until_ok_or_err():
    greeting = _mysql(0, b"\x0a8.0.36\x00" + bytes(40))
    response = _mysql(1, (0x200 | 0x8000).to_bytes(4, "little") + bytes(28) + b"root\0\x14" + b"S" * 20)
    cleartext = _mysql(3, b"cleartextpw\x00")  # after an AuthSwitchRequest to mysql_clear_password
    exs = _stream(("in", greeting), ("out", response), ("in", _mysql(2, b"\xfemysql_clear_password\x00")),
                  ("out", cleartext), ("in", _mysql(4, b"\x00\x00\x00\x02\x00")), ("out", _mysql(0, b"\x03SELECT 1")))
    assert b"root" not in exs[1].out and b"cleartextpw" not in exs[3].out
    assert exs[1].fired == exs[3].fired == ["mysql-auth"]
    assert exs[5].out.endswith(b"SELECT 1") and not exs[5].fired  # after the OK: queries are shown
    # COM_CHANGE_USER re-authenticates: it and the client's packets up to the server's answer
    exs = _stream(("out", _mysql(0, b"\x11bob\x00\x14" + b"H" * 20)),
                  ("in", _mysql(1, b"\xfemysql_clear_password\x00")), ("out", _mysql(2, b"bobspw\x00")),
                  ("in", _mysql(3, b"\xff\x15\x04denied")), ("out", _mysql(0, b"\x03SELECT 2")))
    assert b"bob" not in exs[0].out and b"bobspw" not in exs[2].out and exs[4].out.endswith(b"SELECT 2")


def test_mysql_handshake_response_alone_is_redacted():
    caps = (0x200 | 0x8000 | 0x80000).to_bytes(4, "little")
    pkt = _mysql(1, caps + (16 << 20).to_bytes(4, "little") + b"\x21" + bytes(23) + b"root\0" + b"\x14" + b"S" * 20)
    assert is_mysql_handshake_response(pkt)
    out, fired = Redactor().scrub(pkt)
    assert fired == ["mysql-auth"] and b"root" not in out and b"S" * 20 not in out


def test_smtp_and_imap_sasl_continuations():
    exs = _stream(("out", b"AUTH LOGIN\r\n"), ("in", b"334 VXNlcm5hbWU6\r\n"), ("out", b"dXNlcg==\r\n"),
                  ("in", b"334 UGFzc3dvcmQ6\r\n"), ("out", b"cGFzc3dvcmQ=\r\n"), ("in", b"235 2.7.0 ok\r\n"),
                  ("out", b"MAIL FROM:<a@b>\r\n"))
    assert b"cGFzc3dvcmQ=" not in exs[4].out and b"dXNlcg==" not in exs[2].out
    assert exs[6].out == b"MAIL FROM:<a@b>\r\n"
    exs = _stream(("out", b"a1 AUTHENTICATE PLAIN\r\n"), ("in", b"+ \r\n"), ("out", b"AGFsaWNlAHB3\r\n"),
                  ("in", b"a1 OK done\r\n"), ("out", b"a2 SELECT INBOX\r\n"))
    assert b"AGFsaWNlAHB3" not in exs[2].out and exs[4].out == b"a2 SELECT INBOX\r\n"


def test_decoded_window_redacts_per_fd_stream():
    fds = FdNames(10)
    evs = decode_events([sc(1, (5, 0, 30), ret=30, kind=DATA_IO, data=b"GET / HTTP/1.1\r\nAuthorization: Bea"),
                         sc(1, (5, 0, 30), ret=30, kind=DATA_IO, data=b"rer abcdefghijklmnop\r\n")], fds, Redactor())
    assert "abcdefghijklmnop" not in evs[1]["data"] and "header" in evs[1]["redacted"]


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


def test_triggers_level_regex_and_armed_rules_in_scope():
    t = Triggers(SnapshotSettings(message_regex="Database"))
    assert t.match(rec(b"x", "error")) == "log.level=error"
    assert t.match(rec(b"x", "critical")) and not t.match(rec(b"x", "warning")) and not t.match(rec(b"x"))
    assert t.match(rec(b"Database gone", "info")) == "message~Database"
    rid, _ = t.arm("container=web and message~boom")
    assert str(t.match(rec(b"boom"))).startswith(f"armed#{rid}")
    assert t.disarm(rid) and t.match(rec(b"boom")) is None
    assert Triggers(SnapshotSettings(min_level="off")).match(rec(b"x", "emergency")) is None
    nothing = Triggers(SnapshotSettings(message_regex="Database"), in_scope=lambda cid: False)
    nothing.arm("container=web and message~boom")
    assert nothing.match(rec(b"Database boom", "error")) is None  # out of scope: no trigger, armed or not


def test_scope_is_opt_in_by_label_setting_or_armed_rule():
    web = Container("a1b2c3d4e5f6", "web", "php")
    labelled = Container("ffff00001111", "db", "mysql", labels={"logship.snapshots": "true"})
    other = Container("eeee00002222", "cache", "redis", labels={"logship.snapshots": "false"})
    t = Triggers(SnapshotSettings())
    scope = SnapshotScope(SnapshotSettings(containers=("api*",)), lambda: t.armed)
    t.in_scope, t.on_change = scope.__contains__, scope.refresh
    changes = []
    scope.on_change = lambda: changes.append(len(scope))
    for c in (web, labelled, other, Container("1234abcd0000", "api-1", "go")):
        scope.container_added(c)
    assert set(scope.why) == {labelled.id, "1234abcd0000"} and changes == [1, 2]
    assert t.match(rec(b"x", "error")) is None  # web is not in scope
    rid, _ = t.arm("container=web and message~boom")
    assert web.id in scope and scope.why[web.id] == f"armed rule #{rid}"
    assert str(t.match(rec(b"boom"))).startswith(f"armed#{rid}") and t.match(rec(b"x", "error")) == "log.level=error"
    t.arm("message~boom")  # no container condition: brings nothing into scope
    assert other.id not in scope
    t.disarm(rid)
    assert web.id not in scope
    scope.container_removed(labelled)
    assert set(scope.why) == {"1234abcd0000"}
    assert scope.pids_in_scope(lambda cid: [1, 2] if cid == "1234abcd0000" else [9]) == {1, 2}


def test_regexes_are_re2_with_caps():
    started = time.monotonic()
    r = parse_rule("message~(.*a){1,30}$x")  # 31 s on one 26-byte line with Python's re
    assert not r.matches(rec(b"a" * 26)) and time.monotonic() - started < 1
    assert Triggers(SnapshotSettings(message_regex="(.*a){1,30}$x")).match(rec(b"a" * 26)) is None
    with pytest.raises(RuleError, match="RE2"):
        parse_rule("message~(?<=a)b")
    with pytest.raises(RuleError, match="longer than"):
        parse_rule("message~" + "a" * 2000)
    with pytest.raises(RuleError, match="conditions"):
        parse_rule(" and ".join(["stream=file"] * 9))
    with pytest.raises(ValueError, match="LOGSHIP_SNAPSHOT_MESSAGE_REGEX"):
        Triggers(SnapshotSettings(message_regex="x" * 600))
    t = Triggers(SnapshotSettings())
    for _ in range(MAX_ARMED_RULES):
        t.arm("message~x")
    with pytest.raises(RuleError, match="armed already"):
        t.arm("message~x")


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


def test_ring_syscalls_are_one_list_for_kernel_and_user_space():
    from shipper.snapshots.decode import ARGS
    from shipper.snapshots.ring import _fentry_fn, ring_syscalls

    names = ring_syscalls()
    assert {"read", "write", "openat", "connect", "accept4", "close", "sendto", "recvfrom"} <= set(names)
    assert all(syscall_name(nr) in names for nr in (0, 1, 3, 42, 257))
    assert set(names) - {"sendfile64"} <= set(ARGS), "every kept syscall has its arguments decoded"
    assert _fentry_fn("kfunc", "read") == "kfunc____x64_sys_read"  # bcc's KFUNC_PROBE name
