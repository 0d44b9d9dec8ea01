"""The eBPF source's user-space half on hand-made events (no kernel): fd attribution,
what goes back to the kernel's fd map, records, drops, and the start-up modes."""

from __future__ import annotations

import os
import asyncio
import ctypes
import logging
import socket
import struct

import pytest

from shipper.config import EbpfSettings
from shipper.core.container import Container, ContainerRegistry
from shipper.core.record import Record
from shipper.sources.ebpf import events as E
from shipper.sources.ebpf import source as S
from shipper.sources.ebpf.diagnose import Facts
from shipper.sources.ebpf.filetrack import TrackedFile

CG = 77
SEND = (5 << 8) | E.FD_SEND


class FakeProbe:
    capture = 4096

    def __init__(self) -> None:
        self.fds: dict[tuple[int, int], int] = {}
        self.skipped: list[tuple[int, int, int]] = []

    def set_fd(self, tgid: int, fd: int, value: int) -> None:
        if value:
            self.fds[(tgid, fd)] = value
        else:
            self.fds.pop((tgid, fd), None)

    def adopt_fd(self, tgid: int, fd: int, value: int) -> bool:
        if (tgid, fd) in self.fds:
            return False
        self.fds[(tgid, fd)] = value
        return True

    def close_fd(self, tgid: int, fd: int, seen: int) -> None:
        if E.clears(self.fds.get((tgid, fd), 0), seen):
            self.fds[(tgid, fd)] = E.FD_GONE

    def skip_fd(self, tgid: int, fd: int, seen: int) -> None:
        self.skipped.append((tgid, fd, seen))

    def unskip_fd(self, tgid: int, fd: int, seen: int) -> None:
        self.skipped.remove((tgid, fd, seen))

    def drops(self) -> list[int]:
        return [0, 0, 0, 0]

    unclaimed: set[int] = set()

    def unclaim(self, cg: int) -> None:
        self.unclaimed = self.unclaimed | {cg}

    def remove_cgroup(self, cg: int) -> None:
        pass

    def add_cgroup(self, cg: int) -> None:
        pass

    def claim(self, cg: int) -> None:
        self.unclaimed = self.unclaimed - {cg}

    def forget_cgroup_counters(self, cg: int) -> None:
        pass

    def container_drops(self) -> dict[int, tuple[int, int]]:
        return {}


def ev(kind, fd=-1, *, tgid=100, tid=None, fdval=0, flags=0, arg1=0, arg2=0, data=b"", comm="sh", ktime=1000, cg=CG):
    return E.Event(kind, flags, tgid, tid or tgid, fd, fdval, ktime, cg, arg1, arg2, comm if kind == E.WRITE else "",
                   data)


async def _unused_emit(batch: list[Record]) -> None:
    raise AssertionError("these tests read the source's batches, nothing emits")


@pytest.fixture
def src() -> S.EbpfSource:
    s = S.EbpfSource(EbpfSettings(), emit=_unused_emit, registry=ContainerRegistry())
    s.probe = FakeProbe()
    s._by_cgroup[CG] = Container(id="c" * 64, name="app", image="img")
    s._offset = 1_700_000_000_000_000_000
    return s


def feed(s: S.EbpfSource, *events: E.Event) -> list:
    for e in events:
        s._handlers[e.kind](e)
    out, s._batch = s._batch, []
    return out


def test_shell_redirect_is_attributed_to_the_file(src):
    recs = feed(src,
                ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, arg2=0o2101, data=b"/var/log/app.log"),
                ev(E.DUP, 10, arg1=1, arg2=E.O_CLOEXEC),
                ev(E.DUP, 1, arg1=3),
                ev(E.CLOSE, 3, arg1=3),
                ev(E.WRITE, 1, fdval=SEND, arg1=6, data=b"line1\n", ktime=5000),
                ev(E.DUP, 1, arg1=10), ev(E.CLOSE, 10, arg1=10))
    assert len(recs) == 1
    r = recs[0]
    assert (r.message, r.path, r.stream, r.source, r.pid, r.tid, r.comm) == (
        b"line1", "/var/log/app.log", "file", "ebpf", 100, 100, "sh")
    assert r.time_ns == src._offset + 5000 and r.container.name == "app"
    assert src.probe.skipped == []
    assert src.table.lookup(100, 1) is None  # stdout restored


def test_a_file_that_is_no_log_is_skipped_in_the_kernel(src):
    feed(src, ev(E.OPEN, 4, fdval=SEND, arg1=E.AT_FDCWD, data=b"/etc/passwd"))
    assert src.probe.skipped == [(100, 4, SEND)]
    # a dup of it keeps the open's generation: a write through it is skipped too, not shipped
    assert feed(src, ev(E.DUP, 1, arg1=4), ev(E.WRITE, 1, fdval=SEND, data=b"root:x\n")) == []
    assert src.probe.skipped[-1] == (100, 1, SEND)


def test_lines_of_one_write_get_distinct_ids(src):
    feed(src, ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, data=b"/var/log/a.log"))
    recs = feed(src, ev(E.WRITE, 3, fdval=SEND, data=b"a\nb\nc\n"))
    assert [r.message for r in recs] == [b"a", b"b", b"c"]
    assert len({r.doc_id() for r in recs}) == 3 and len({r.time_ns for r in recs}) == 1


def test_syslog_connected_or_addressed(src):
    addr = struct.pack("<H", socket.AF_UNIX) + b"/dev/log\0"
    recs = feed(src,
                ev(E.SOCKET, 5, arg1=socket.AF_UNIX, arg2=socket.SOCK_DGRAM),
                ev(E.CONNECT, 5, arg2=len(addr), data=addr),
                ev(E.WRITE, 5, fdval=E.FD_SYSLOG, data=b"<155>Nov 20 10:00:00 app: a\nb\n", comm="logger"),
                ev(E.WRITE, 9, flags=E.WF_SYSLOG_ADDR, data=b"<14>unconnected\0", comm="logger"))
    assert [(r.stream, r.message, r.path) for r in recs] == [
        ("syslog", b"<155>Nov 20 10:00:00 app: a\nb", None), ("syslog", b"<14>unconnected", None)]
    assert recs[0].seq != recs[1].seq


def test_fork_hands_log_fds_to_the_child_and_exit_flushes(src):
    feed(src, ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, data=b"/var/log/a.log"),
         ev(E.OPEN, 4, fdval=SEND, arg1=E.AT_FDCWD, data=b"/etc/hosts"),
         ev(E.FORK, arg1=200))
    assert src.probe.fds == {(200, 3): E.FD_SEND}  # only log fds go to the kernel map
    assert feed(src, ev(E.WRITE, 3, tgid=200, fdval=E.FD_SEND, data=b"no newline yet")) == []
    recs = feed(src, ev(E.EXIT, tgid=200, arg1=1))
    assert [(r.message, r.pid) for r in recs] == [(b"no newline yet", 200)]
    assert 200 not in src.table and (200, 3) not in src.probe.fds


def test_exec_drops_cloexec_fds_in_the_kernel(src):
    feed(src, ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, arg2=E.O_CLOEXEC, data=b"/var/log/a.log"))
    src.probe.fds[(100, 3)] = SEND
    feed(src, ev(E.EXEC))
    assert src.probe.fds[(100, 3)] == E.FD_GONE and src.table.lookup(100, 3) is None  # (no fallback to a parent)


def test_partial_lines_time_out(src):
    feed(src, ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, data=b"/var/log/a.log"),
         ev(E.WRITE, 3, fdval=SEND, data=b"half", ktime=10))
    src._expire(10 + 999_999_999)
    assert src._batch == []
    src._expire(10 + 1_000_000_000)
    assert [r.message for r in src._batch] == [b"half"]


def test_drops_are_counted_by_reason(src):
    recs = feed(src, ev(E.WRITE, 7, fdval=SEND, data=b"x\n"),  # an fd user space never saw opened
                ev(E.WRITE, 7, fdval=SEND, data=b"x\n", cg=999),  # a cgroup no longer shipped
                ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, data=b"/var/log/a.log"),
                ev(E.WRITE, 3, fdval=SEND, flags=E.WF_TRUNCATED, arg1=10000, data=b"cut"))
    assert src._drops == {"unknown_fd": 1, "unknown_container": 1, "truncated": 1}
    assert [(r.message, r.truncated) for r in recs] == [(b"cut", True)]


def test_a_new_container_is_held_until_docker_reports_it(src):
    new = 88
    for e in (ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, data=b"/var/log/early.log", cg=new),
              ev(E.WRITE, 3, fdval=SEND, data=b"first\n", cg=new)):
        src._hold(e)
    assert src._batch == [] and src._held_bytes > 0
    src._by_cgroup[new] = Container(id="n" * 64, name="new", image="img")  # the registry reported it
    src._replay(new)
    assert [(r.message, r.path, r.container.name) for r in src._batch] == [(b"first", "/var/log/early.log", "new")]
    assert src._held == {} and src._held_bytes == 0


def test_an_unreported_container_is_released_after_the_hold(src):
    src._hold(ev(E.WRITE, 3, fdval=SEND, data=b"ignored\n", cg=99))
    since = src._held[99][0]
    src._release_unclaimed(since + S.HOLD_NS - 1)
    assert 99 in src._held
    src._release_unclaimed(since + S.HOLD_NS)
    assert src._held == {} and src._held_bytes == 0 and src.probe.unclaimed == {99}


def test_a_container_docker_declines_is_released_at_once(src):
    """LOGSPOUT=ignore and the like: let go when Docker's source decides, not after the hold."""
    src._hold(ev(E.WRITE, 3, fdval=SEND, data=b"ignored\n", cg=99))
    src._seen_cgroups["i" * 64] = (99, 0)
    src.registry.subscribe(src)
    src.registry.decline("i" * 64)
    src._run_commands()
    assert src._held == {} and src._held_bytes == 0 and src.probe.unclaimed == {99}


def test_a_shipped_container_is_not_released_by_a_late_decline(src):
    src._hold(ev(E.WRITE, 3, fdval=SEND, data=b"kept\n", cg=98))
    src._by_cgroup[98] = Container(id="k" * 64, name="kept", image="img")
    src._seen_cgroups["k" * 64] = (98, 0)
    src.container_declined("k" * 64)
    src._run_commands()
    assert 98 in src._held


def _no_bcc() -> Facts:
    return Facts(bcc_error="ModuleNotFoundError: No module named 'bcc'", cap_eff=0, tracefs=True, headers=True,
                 btf=True, release="x")


def test_mode_on_fails_with_the_cause(monkeypatch):
    monkeypatch.setattr(S.Facts, "gather", classmethod(lambda cls: _no_bcc()))
    s = S.EbpfSource(EbpfSettings(), emit=_unused_emit, registry=ContainerRegistry(), mode="on")
    with pytest.raises(S.EbpfUnavailable, match="python3-bpfcc"):
        asyncio.run(s.run())


def test_mode_auto_warns_once_and_keeps_running(monkeypatch, caplog):
    monkeypatch.setattr(S.Facts, "gather", classmethod(lambda cls: _no_bcc()))
    s = S.EbpfSource(EbpfSettings(), emit=_unused_emit, registry=ContainerRegistry(), mode="auto")

    async def go() -> bool:
        t = asyncio.create_task(s.run())
        await asyncio.sleep(0.2)
        running = not t.done()
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)
        return running

    with caplog.at_level(logging.WARNING, logger="logship.ebpf"):
        assert asyncio.run(go())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "python3-bpfcc" in warnings[0].getMessage()


def test_a_file_whose_write_events_were_refused_is_read_from_its_cursor_once_idle(src, tmp_path):
    """The kernel refused (budget) or lost (full ring) the events of "b" and "c": once the file
    had no write event for SWEEP_IDLE_NS, the source reads it from the cursor; the refused
    events, if they still come, find their bytes read already; a later write lands after."""
    import os
    import time

    from shipper.sources.ebpf.filetrack import TrackedFile

    path = tmp_path / "app.log"
    path.write_bytes(b"a\nb\nc\n")
    fd = os.open(path, os.O_RDONLY)
    tf = src.files.add(TrackedFile("c" * 64, "/var/log/app.log", fd, os.fstat(fd)))
    tf.cursor, tf.synced = 2, True  # "a\n" came with its event
    now = time.monotonic_ns()
    tf.event_ns = now
    src._to_sweep.add(CG)
    src._sweep(now)
    assert src._batch == [] and CG in src._to_sweep  # still written: its next event ships the bytes before it
    src._sweep(now + S.SWEEP_IDLE_NS)
    src._pace()
    out, src._batch = src._batch, []
    assert [(r.message, r.seq, r.file_id) for r in out] == [(b"b", 2, tf.file_id), (b"c", 4, tf.file_id)]
    assert tf.cursor == 6 and CG not in src._to_sweep
    late = src.files.place(tf, b"b\n", 2, now + 1)  # a refused event that came after all
    assert late is None
    with open(path, "ab") as f:
        f.write(b"d\n")
    assert src.files.place(tf, b"d\n", 2, time.monotonic_ns()) == (6, b"d\n", False)


def test_a_write_after_lost_events_is_placed_by_its_content_with_the_bytes_before_it(src, tmp_path):
    """The event of "b" was lost; the kernel flags the next one sent (WF_AFTER_LOSS): "c" is found
    where it is, and "b" is shipped with it, instead of "c" being taken to be at the cursor."""
    import os

    from shipper.sources.ebpf.filetrack import TrackedFile

    path = tmp_path / "app.log"
    path.write_bytes(b"a\nb\nc\n")
    fd = os.open(path, os.O_RDONLY)
    tf = src.files.add(TrackedFile("c" * 64, "/var/log/app.log", fd, os.fstat(fd)))
    tf.cursor, tf.synced = 2, True
    assert src.files.place(tf, b"c\n", 2, 10) == (2, b"c\n", False)  # unflagged: the fast path trusts the cursor
    tf.cursor, tf.synced = 2, True
    src.files.lost_before("c" * 64)
    assert src.files.place(tf, b"c\n", 2, 10) == (2, b"b\nc\n", False) and tf.cursor == 6


def test_the_ring_is_read_ahead_into_a_bounded_backlog_handled_a_slice_at_a_time(src, monkeypatch):
    """A ring a flood refills as fast as it is read must not keep the poll thread in one
    consume call: the callback tells libbpf to stop (-1) once the backlog is full, and each
    poll handles at most CONSUME_MAX events of it, in order."""
    monkeypatch.setattr(S, "BACKLOG_MAX_BYTES", 3 * (5 + S.EVENT_OVERHEAD))
    monkeypatch.setattr(S, "CONSUME_MAX", 2)
    raws = [_raw(ev(E.OPEN, 3 + i, fdval=SEND, arg1=E.AT_FDCWD, data=b"/x.og")) for i in range(3)]
    assert [src._on_raw(None, r, len(r)) for r in raws] == [0, 0, -1]
    bad = ctypes.create_string_buffer(b"\0" * 8)
    assert src._on_raw(None, bad, 8) == 0 and src._drops["bad_event"] == 1  # (not an event: counted, not kept)
    src._handle_backlog()
    assert [e.fd for e in src._backlog] == [5] and src._backlog_bytes == 5 + S.EVENT_OVERHEAD
    src._handle_backlog()
    assert not src._backlog and src._backlog_bytes == 0 and sorted(src.table.fds(100)) == [3, 4, 5]


def test_a_removed_containers_last_events_are_its_own_not_held(src):
    """Docker reports a job removed at once: the removal may be read before its last events
    (still in the ring). It is forgotten only after a consume that drained the ring."""
    c = src._by_cgroup[CG]
    src._cgroup_of[c.id] = CG
    src.container_removed(c)
    src._run_commands()
    assert src._by_cgroup[CG] is c  # not yet: the ring may hold its events
    feed(src, ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, data=b"/var/log/job.log"))
    assert src._held == {}
    src._ring_more = True  # that consume was cut short: more of its events may wait
    src._forget_cgroups()
    assert src._by_cgroup[CG] is c
    src._ring_more = False
    src._backlog.append(ev(E.CLOSE, 3, arg1=3))  # (read, not handled yet)
    src._forget_cgroups()
    assert src._by_cgroup[CG] is c
    src._backlog.clear()
    src._forget_cgroups()
    assert CG not in src._by_cgroup


def test_a_container_reported_again_before_its_forget_stays(src):
    c = src._by_cgroup[CG]
    src._cgroup_of[c.id] = CG
    src.container_removed(c)
    src._run_commands()
    again = Container(id=c.id, name=c.name, image=c.image)
    src._by_cgroup[CG] = again  # (reported again: container_added's command)
    src._forget_cgroups()
    assert src._by_cgroup[CG] is again


def test_a_write_past_the_search_window_after_lost_events_has_the_file_read_in_order(src, tmp_path, monkeypatch):
    """Megabytes of write events refused (a fast job over its ring budget): the next event seen
    lies past what is searched around the cursor. Its fd is muted and the file is read from the
    cursor: every line once, in order, with its offset; none shipped as a piece."""
    import os

    from shipper.sources.ebpf.filetrack import WINDOW, TrackedFile

    lines = [b'{"level":"info","msg":"order %06d paid","ms":%d}' % (i, i % 97) for i in range(60_000)]
    body = b"".join(x + b"\n" for x in lines)
    assert len(body) > 2 * WINDOW
    path = tmp_path / "app.log"
    path.write_bytes(body)
    fd = os.open(path, os.O_RDONLY)
    tf = src.files.add(TrackedFile("c" * 64, "/var/log/app.log", fd, os.fstat(fd)))
    feed(src, ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, arg2=0o2101, data=b"/var/log/app.log"))
    src.files._by_fd[(100, 3, SEND)] = tf
    first = body.index(b"\n", 8000) + 1
    tf.cursor, tf.synced = first, True
    far = body.index(b"\n", len(body) - 20_000) + 1
    assert feed(src, ev(E.WRITE, 3, fdval=SEND, flags=E.WF_AFTER_LOSS, arg1=8192, data=body[far:far + 8192])) == []
    assert tf in src._behind and src.files.notes["beyond_window"] == 1 and src.probe.skipped == [(100, 3, SEND)]
    out: list[Record] = []
    monkeypatch.setattr(src, "_submit", lambda: out.extend(feed(src)))
    while tf in src._behind:
        src._pace()
        out += feed(src)
    k = body[:first].count(b"\n")
    assert [r.message for r in out] == lines[k:]
    assert [r.seq for r in out][:2] == [first, first + len(lines[k]) + 1] and not [r for r in out if r.truncated]
    assert src.probe.skipped == []  # its writes are sent again once the file is read to its end


def _raw(e: E.Event) -> "ctypes.Array[ctypes.c_char]":
    """The event as the ring holds it."""
    head = E.HDR.pack(e.kind, e.flags, e.tgid, e.tid, e.fd, e.fdval, e.ktime, e.cgroup, e.arg1, e.arg2)
    tail = e.data.ljust(E.PATH_LEN, b"\0") if e.kind in (E.OPEN, E.CGROUP) else (
        E.WRITE_TAIL.pack(e.comm.encode(), len(e.data)) + e.data)
    return ctypes.create_string_buffer(head + tail)


def test_a_job_gone_before_its_cgroup_was_read_is_shipped_from_its_mkdir_event(src, monkeypatch):
    """A busy machine: Docker reports a job started, exited and removed before the poll thread
    read the job's cgroup_mkdir event: no directory is left to stat. The report waits for that
    event; the job's events after it are its own, and its removal comes after them."""
    monkeypatch.setattr(S, "cgroup_id", lambda cid: None)
    monkeypatch.setattr(S, "container_pids", lambda cid: [])
    job, cg = Container(id="d" * 64, name="job", image="img"), 4242
    src.container_added(job)
    src.container_removed(job)
    src._run_commands()
    assert cg not in src._by_cgroup and job.id in src._unresolved
    ring = [ev(E.CGROUP, 0, arg1=cg, arg2=1, data=b"/docker/" + job.id.encode(), cg=1),  # (dockerd's cgroup)
            ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, data=b"/var/log/job.log", cg=cg),
            ev(E.WRITE, 3, fdval=SEND, arg1=4, data=b"one\n", cg=cg)]
    for e in ring:
        buf = _raw(e)
        src._on_raw(None, buf, len(buf))
        src._handle_backlog()
    assert [(r.message, r.container.name) for r in src._batch] == [(b"one", "job")]
    assert src._held == {} and src._unresolved == {} and src._drops == {}
    src._forget_cgroups()
    assert cg not in src._by_cgroup and job.id not in src._cgroup_of


def test_a_report_whose_cgroup_never_becomes_known_is_counted(src, monkeypatch):
    monkeypatch.setattr(S, "cgroup_id", lambda cid: None)
    src.container_added(Container(id="e" * 64, name="lost", image="img"))
    src._run_commands()
    since = src._unresolved["e" * 64][1]
    src._expire_unresolved(since + S.HOLD_NS - 1)
    assert src._drops == {}
    src._expire_unresolved(since + S.HOLD_NS)
    assert src._drops == {"no_cgroup": 1} and src._unresolved == {}


def test_only_container_cgroups_are_named():
    from shipper.sources.ebpf.cgroups import container_of_path

    cid = "0b9c" * 16
    assert container_of_path(f"/docker/{cid}") == cid
    assert container_of_path(f"/system.slice/docker-{cid}.scope") == cid
    assert container_of_path(f"/docker/{cid}/init.scope") is None
    assert container_of_path(f"/system.slice/{cid}") is None
    assert container_of_path(f"/user.slice/docker-{cid}") is None
    assert container_of_path("/docker") is None


def _removed_with_unread_bytes(src: S.EbpfSource, tmp_path) -> tuple[Container, TrackedFile]:
    import os

    path = tmp_path / "job.log"
    path.write_bytes(b"a\nb\nc\n")
    fd = os.open(path, os.O_RDONLY)
    c = src._by_cgroup[CG]
    tf = src.files.add(TrackedFile(c.id, "/var/log/job.log", fd, os.fstat(fd)))
    tf.cursor, tf.synced = 2, True  # "b" and "c": events refused (budget), and the job is gone
    src._cgroup_of[c.id] = CG
    src.container_removed(c)
    src._run_commands()
    return c, tf


def test_a_removed_containers_files_are_read_to_their_end_before_it_is_forgotten(src, tmp_path):
    """A job over its budget, removed before a sweep came: the shipper's fd still has the file,
    so what its events did not bring is read before the container is forgotten."""
    c, tf = _removed_with_unread_bytes(src, tmp_path)
    src._forget_cgroups()
    assert src._by_cgroup[CG] is c and src._behind[tf].why == "exit"
    src._pace()
    out, src._batch = src._batch, []
    assert [r.message for r in out] == [b"b", b"c"] and tf.cursor == 6
    src._forget_cgroups()
    assert CG not in src._by_cgroup and src._drops["file_gap"] == 0


def test_a_removed_containers_file_not_read_in_time_is_a_gap(src, tmp_path, monkeypatch):
    c, tf = _removed_with_unread_bytes(src, tmp_path)
    src._forget_cgroups()
    monkeypatch.setattr(S, "DRAIN_NS", 0)  # (the pipeline had no room for it meanwhile)
    src._forget_cgroups()
    assert CG not in src._by_cgroup and src._drops["file_gap"] == 1


def test_pins_of_writes_still_in_the_backlog_outlive_the_replay_of_what_was_held(src, tmp_path, monkeypatch):
    """A job's open was held (Docker had not reported it yet); its first write was read from
    the ring, pinning its file, but not handled. Docker reports the job, the held open is
    replayed: the pin must wait for that write, which finds the file after the job and its
    file are gone."""
    monkeypatch.setattr(S, "CONSUME_MAX", 1)
    path = tmp_path / "job.log"
    path.write_bytes(b"one\ntwo\n")
    wfd = os.open(path, os.O_WRONLY | os.O_APPEND)
    new, me = 88, os.getpid()
    for e in (ev(E.OPEN, wfd, tgid=me, fdval=SEND, arg1=E.AT_FDCWD, data=str(path).encode(), cg=new),
              ev(E.WRITE, wfd, tgid=me, fdval=SEND, arg1=8, data=b"one\ntwo\n", cg=new)):
        r = _raw(e)
        src._on_raw(None, r, len(r))
    src._handle_backlog()
    assert new in src._held and len(src.files._pins) == 1
    src._by_cgroup[new] = Container(id="n" * 64, name="job", image="img")
    src._replay(new)
    assert len(src.files._pins) == 1
    os.close(wfd)
    path.unlink()
    src._handle_backlog()
    assert src.files._pins == {} and len(src.files) == 1 and src.files.notes["unopenable"] == 0
