"""Files behind the pipeline: a container with no room in the fair stage has its log file
read from the file at the pipeline's pace (its writers muted in the kernel meanwhile), never
dropped; a heavy writer is read so too; catch-ups and sweeps go the same way. Hand-made
events on real files (no kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipper.config import EbpfSettings
from shipper.core.budget import FairQueue
from shipper.core.container import Container, ContainerRegistry
from shipper.core.record import Record
from shipper.sources.ebpf import events as E
from shipper.sources.ebpf import source as S
from shipper.sources.ebpf.filetrack import TrackedFile
from tests.unit.test_ebpf_source import CG, SEND, FakeProbe, _unused_emit, ev, feed

APP = Container(id="c" * 64, name="app", image="img")


class Room:
    def __init__(self) -> None:
        self.free = True

    def __call__(self, _container_id: str, _size: int) -> bool:
        return self.free


@pytest.fixture
def room() -> Room:
    return Room()


@pytest.fixture
def src(room: Room) -> S.EbpfSource:
    s = S.EbpfSource(EbpfSettings(), emit=_unused_emit, registry=ContainerRegistry(), room=room)
    s.probe = FakeProbe()
    s._by_cgroup[CG] = APP
    return s


def follow(src: S.EbpfSource, path: Path, content: bytes, cursor: int) -> TrackedFile:
    """The file as the source follows it: opened, its writer's fd 3 known, the cursor placed."""
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    tf = src.files.add(TrackedFile(APP.id, "/var/log/app.log", fd, os.fstat(fd)))
    tf.cursor, tf.synced = cursor, True
    feed(src, ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, arg2=0o2101, data=b"/var/log/app.log"))
    src.files._by_fd[(100, 3, SEND)] = tf
    return tf


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def lines(records: list[Record]) -> list[tuple[bytes, int]]:
    return [(r.message, r.seq) for r in records]


def test_no_room_the_file_waits_in_the_file_and_is_read_when_room_comes(src, room, tmp_path):
    path = tmp_path / "app.log"
    tf = follow(src, path, b"a\n", 2)
    room.free = False
    append(path, b"b\nc\n")
    assert feed(src, ev(E.WRITE, 3, fdval=SEND, arg1=2, data=b"b\n"),
                ev(E.WRITE, 3, fdval=SEND, arg1=2, data=b"c\n")) == []  # not made into records: not dropped
    assert tf in src._behind and src.probe.skipped == [(100, 3, SEND)]  # muted once, not per write
    src._pace()
    assert src._batch == [] and tf.cursor == 2  # still no room: nothing read
    room.free = True
    append(path, b"d\n")  # written while muted: no event at all
    src._pace()
    out, src._batch = src._batch, []
    assert lines(out) == [(b"b", 2), (b"c", 4), (b"d", 6)] and all(r.file_id == tf.file_id for r in out)
    assert tf not in src._behind and src.probe.skipped == []  # caught up: its writes are sent again
    late = ev(E.WRITE, 3, fdval=SEND, arg1=2, data=b"d\n", ktime=tf.handover_ns - 1)
    assert feed(src, late) == []  # an event of a write read back already
    append(path, b"e\n")
    assert lines(feed(src, ev(E.WRITE, 3, fdval=SEND, arg1=2, data=b"e\n", ktime=tf.handover_ns + 1))) == [(b"e", 8)]


def test_a_line_begun_when_the_file_falls_behind_is_read_whole_from_the_file(src, room, tmp_path):
    path = tmp_path / "app.log"
    follow(src, path, b"", 0)
    append(path, b"first half ")
    assert feed(src, ev(E.WRITE, 3, fdval=SEND, arg1=11, data=b"first half ")) == []  # waits for its newline
    room.free = False
    append(path, b"second half\n")
    feed(src, ev(E.WRITE, 3, fdval=SEND, arg1=12, data=b"second half\n"))
    assert len(src.lines) == 0  # the half line is not flushed on its own later
    room.free = True
    src._pace()
    assert lines(src._batch) == [(b"first half second half", 0)]


def test_a_heavy_writer_is_read_from_its_file(src, tmp_path, monkeypatch):
    monkeypatch.setattr(S, "HEAVY_WRITES_PER_TICK", 3)
    path = tmp_path / "app.log"
    tf = follow(src, path, b"", 0)
    append(path, b"1\n2\n3\n4\n5\n")
    live = feed(src, *(ev(E.WRITE, 3, fdval=SEND, arg1=2, data=b"%d\n" % i) for i in range(1, 6)))
    assert lines(live) == [(b"1", 0), (b"2", 2), (b"3", 4)] and tf in src._behind
    src._pace()
    assert lines(src._batch) == [(b"4", 6), (b"5", 8)]


def test_a_removed_container_with_a_file_behind_counts_a_gap(src, room, tmp_path, caplog):
    path = tmp_path / "app.log"
    follow(src, path, b"a\n", 2)
    room.free = False
    append(path, b"b\n")
    feed(src, ev(E.WRITE, 3, fdval=SEND, arg1=2, data=b"b\n"))
    src._forget_behind(APP)  # (the "forget" command's first step, when Docker reports the removal)
    assert src._drops["file_gap"] == 1 and not src._behind
    assert "removed with 2 bytes past offset 2 not read yet" in caplog.text


def rec(c: Container, file_id: str | None) -> Record:
    return Record(b"x" * 44, 1, "file", c, source="ebpf", file_id=file_id)


def test_the_fair_stage_never_refuses_paced_file_lines() -> None:
    other = Container(id="o" * 64, name="other", image="img")
    q = FairQueue(4 * 300)
    assert q.offer([rec(other, None)] * 3) == []
    batch = [rec(APP, "1:2:0"), rec(APP, None), rec(APP, "1:2:0")]
    q.offer([rec(APP, None)])
    refused = q.offer(batch, paced=S.from_a_file)
    assert refused == [batch[1]]  # the syslog-like line is dropped (counted by the caller); file lines wait
    assert q.held[APP.id] == 3 * (44 + 256)


def test_writes_dropped_from_a_full_hold_are_read_from_the_file(src, tmp_path, monkeypatch):
    """A new container's events wait for Docker's report in a bounded hold; those dropped from it
    (counted) leave no hole in its file: the writes replayed after them are placed by content."""
    path = tmp_path / "app.log"
    tf = follow(src, path, b"", 0)
    del src._by_cgroup[CG]  # not reported yet: its events are held
    append(path, b"a\nb\nc\n")
    monkeypatch.setattr(S, "HOLD_MAX_BYTES", 2 * (2 + 128))
    for data in (b"a\n", b"b\n", b"c\n"):
        src._hold(ev(E.WRITE, 3, fdval=SEND, arg1=2, data=data))
    assert src._drops["hold_full"] == 1 and len(src._held[CG][1]) == 2  # "c" did not fit
    src._by_cgroup[CG] = APP
    src._replay(CG)
    assert lines(src._batch) == [(b"a", 0), (b"b", 2)]
    assert tf.synced is False and CG in src._to_sweep  # the next write is placed by content; the file swept
    src._batch = []
    append(path, b"d\n")
    assert lines(feed(src, ev(E.WRITE, 3, fdval=SEND, arg1=2, data=b"d\n"))) == [(b"c", 4), (b"d", 6)]
