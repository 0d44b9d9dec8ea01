"""The fd table the eBPF source keeps from open/dup/close/socket/connect/fork/exec/exit events."""

from __future__ import annotations

import socket
import struct

from shipper.sources.ebpf.events import AT_FDCWD, O_CLOEXEC
from shipper.sources.ebpf.fdtable import FdTable, _hex_addr, socket_inodes


def unix_addr(path: str) -> bytes:
    return struct.pack("<H", socket.AF_UNIX) + path.encode() + b"\0"


def inet_addr(ip: str, port: int) -> bytes:
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + socket.inet_aton(ip) + b"\0" * 8


def test_shell_redirect_open_dup2_close():
    t = FdTable(cwd_of=lambda _: None)
    t.opened(10, 3, AT_FDCWD, "/var/log/app.log", 0)
    t.dup(10, 1, 10, O_CLOEXEC)  # the shell saves stdout (unknown: not in the table)
    t.dup(10, 3, 1, 0)
    t.close(10, 3)
    assert t.lookup(10, 1) == "/var/log/app.log"
    assert t.lookup(10, 3) is None
    t.dup(10, 10, 1, 0)  # restoring the saved stdout forgets the file on fd 1
    assert t.lookup(10, 1) is None


def test_relative_paths_resolve_against_cwd_or_dirfd():
    t = FdTable(cwd_of=lambda pid: "/srv/app" if pid == 7 else None)
    assert t.opened(7, 3, AT_FDCWD, "logs/../app.log", 0) == "/srv/app/app.log"
    t.opened(7, 4, AT_FDCWD, "/var/log", 0)
    assert t.opened(7, 5, 4, "nginx/error.log", 0) == "/var/log/nginx/error.log"
    assert t.opened(8, 3, AT_FDCWD, "gone.log", 0) == "gone.log"  # process gone: kept as written


def test_fork_copies_and_exec_closes_cloexec():
    t = FdTable(cwd_of=lambda _: None)
    t.opened(1, 3, AT_FDCWD, "/var/log/a.log", O_CLOEXEC)
    t.opened(1, 4, AT_FDCWD, "/var/log/b.log", 0)
    t.fork(1, 2)
    t.close(1, 4)
    assert t.lookup(2, 4) == "/var/log/b.log"  # the child's copy is its own
    assert t.exec(2) == [(3, 0)]
    assert t.fds(2) == {4: "/var/log/b.log"}
    assert sorted(t.exit(2)) == [4] and 2 not in t


def test_close_range_closes_or_marks():
    t = FdTable(cwd_of=lambda _: None)
    for fd in (3, 4, 9):
        t.opened(1, fd, AT_FDCWD, f"/f{fd}", 0)
    assert t.close_range(1, 4, 2**32 - 1, 4) == []  # CLOSE_RANGE_CLOEXEC only marks
    assert t.exec(1) == [(4, 0), (9, 0)]
    t.opened(1, 5, AT_FDCWD, "/f5", 0)
    assert sorted(t.close_range(1, 0, 4, 0)) == [(3, 0)]
    assert t.fds(1) == {5: "/f5"}


def test_sockets_and_connect():
    t = FdTable()
    t.socket(1, 3, socket.AF_UNIX, socket.SOCK_DGRAM | 0o2000000)
    assert t.lookup(1, 3) == "socket:unix"
    assert t.connect(1, 3, unix_addr("/dev/log")) == "socket:unix:/dev/log"
    assert t.exec(1) == [(3, 0)]  # SOCK_CLOEXEC
    t.socket(1, 4, socket.AF_INET, socket.SOCK_STREAM)
    assert t.connect(1, 4, inet_addr("10.1.2.3", 3306)) == "tcp:->10.1.2.3:3306"


def test_proc_scan(tmp_path):
    proc = tmp_path
    (proc / "5" / "fd").mkdir(parents=True)
    (proc / "5" / "net").mkdir()
    (proc / "5" / "fd" / "1").symlink_to("pipe:[77]")
    (proc / "5" / "fd" / "3").symlink_to("/var/log/app.log")
    (proc / "5" / "fd" / "4").symlink_to("socket:[1234]")
    (proc / "5" / "net" / "tcp").write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:1F90 0200007F:0CEA 01 00000000:00000000 00:00000000 00000000     0        0 1234 1\n")
    t = FdTable()
    assert t.scan(5, proc) == 3
    assert t.fds(5) == {1: "pipe:[77]", 3: "/var/log/app.log", 4: "tcp:127.0.0.1:8080->127.0.0.2:3306"}
    assert t.scan(6, proc) == 0
    t.opened(5, 3, AT_FDCWD, "/var/log/app.log", 0, fdval=0x701)
    t.scan(5, proc)  # a known fd keeps the value its last event gave it
    assert sorted(t.close_range(5, 0, 9, 0)) == [(1, 0), (3, 0x701), (4, 0)]


def test_a_scan_adds_what_events_did_not_say_and_never_undoes_an_event(tmp_path):
    """/proc is the process now; the table is where the events read so far left it. A job that
    exited (its fd directory empty) keeps the log fd its open event gave, for the writes after
    that event still waiting in the ring; an fd since reopened keeps what its event said."""
    (tmp_path / "5" / "fd").mkdir(parents=True)
    t = FdTable()
    t.opened(5, 3, AT_FDCWD, "/var/log/job.log", 0, fdval=0x701)
    assert t.scan(5, tmp_path) == 0
    assert t.fds(5) == {3: "/var/log/job.log"}
    (tmp_path / "5" / "fd" / "3").symlink_to("/etc/passwd")
    (tmp_path / "5" / "fd" / "4").symlink_to("/var/log/other.log")
    assert t.scan(5, tmp_path) == 2
    assert t.fds(5) == {3: "/var/log/job.log", 4: "/var/log/other.log"}
    assert sorted(t.close_range(5, 0, 9, 0)) == [(3, 0x701), (4, 0)]


def test_unix_socket_inodes(tmp_path):
    (tmp_path / "unix").write_text(
        "Num       RefCount Protocol Flags    Type St Inode Path\n"
        "0000000000000000: 00000002 00000000 00000000 0002 01 555 /dev/log\n"
        "0000000000000000: 00000002 00000000 00000000 0002 01 556\n")
    assert socket_inodes(tmp_path) == {"555": "socket:unix:/dev/log", "556": "socket:unix:"}


def test_hex_addr_v6():
    assert _hex_addr("00000000000000000000000001000000:0050") == "[::1]:80"


def test_log_paths_linked_to_stdout(tmp_path):
    from shipper.sources.ebpf.fdtable import links_to_a_stream

    (tmp_path / "var/log/nginx").mkdir(parents=True)
    (tmp_path / "var/log/nginx/access.log").symlink_to("/dev/stdout")
    (tmp_path / "var/log/nginx/error.log").symlink_to("../app/error.log")  # relative, to a real file
    (tmp_path / "var/log/app").mkdir()
    (tmp_path / "var/log/app/error.log").write_text("")
    (tmp_path / "var/log/chain.log").symlink_to("nginx/access.log")
    assert links_to_a_stream(tmp_path, "/var/log/nginx/access.log")
    assert links_to_a_stream(tmp_path, "/var/log/chain.log")
    assert not links_to_a_stream(tmp_path, "/var/log/nginx/error.log")
    assert not links_to_a_stream(tmp_path, "/var/log/app/error.log")
    assert not links_to_a_stream(tmp_path / "gone", "/var/log/nginx/access.log")  # process gone: trusted


def test_closes_return_the_value_the_last_event_gave_each_fd():
    """close_range and exec are read late: what they may clear in the kernel is the value
    the fd had when they happened (a dup carries its old fd's, the scan keeps the known)."""
    t = FdTable(cwd_of=lambda _: None)
    t.opened(1, 3, AT_FDCWD, "/var/log/a.log", O_CLOEXEC, fdval=0x501)
    t.dup(1, 3, 7, 0, fdval=0x501)
    t.connect(1, 8, unix_addr("/dev/log"), fdval=0x903)
    t.fork(1, 2)
    t.adopted(2, 3, 1)  # user space set the child's entry (generation 0)
    assert sorted(t.close_range(1, 3, 8, 0)) == [(3, 0x501), (7, 0x501), (8, 0x903)]
    assert t.exec(2) == [(3, 1)]
