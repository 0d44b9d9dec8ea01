"""Where a captured write landed in its file, and the bytes past the probe's copy."""

from __future__ import annotations

import os
from pathlib import Path

from shipper.core.checkpoints import FileCheckpoint, FileCheckpointStore
from shipper.core.container import Container
from shipper.core.record import FILE, Record
from shipper.sources.ebpf.filetrack import FileTracker, TrackedFile, find_by_identity, open_in_root


def tracked(path: Path, content: bytes) -> tuple[FileTracker, TrackedFile]:
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    ft = FileTracker()
    return ft, ft.add(TrackedFile("c1", "/var/log/app.log", fd, os.fstat(fd)))


def test_the_first_write_seen_is_found_at_the_end(tmp_path):
    ft, tf = tracked(tmp_path / "a.log", b"old\nnew\n")
    assert ft.place(tf, b"new\n", 4, 1) == (4, b"new\n", False)
    assert tf.cursor == 8 and tf.synced


def test_the_first_write_seen_is_found_by_content_when_more_followed(tmp_path):
    ft, tf = tracked(tmp_path / "a.log", b"old\nfirst\nsecond\n")
    assert ft.place(tf, b"first\n", 6, 1) == (4, b"first\n", False)
    assert ft.place(tf, b"second\n", 7, 2) == (10, b"second\n", False)  # at the cursor: no file access


def test_a_write_longer_than_the_copy_is_read_back(tmp_path):
    body = b"".join(b"line %06d\n" % i for i in range(2000))
    ft, tf = tracked(tmp_path / "a.log", body)
    half = len(body) // 2
    assert ft.place(tf, body[:4096], half, 1) == (0, body[:half], False)
    assert ft.place(tf, body[half:half + 4096], len(body) - half, 2) == (half, body[half:], False)
    assert ft.notes["read_back"] == 2


def test_a_write_the_file_no_longer_holds_stays_truncated(tmp_path):
    ft, tf = tracked(tmp_path / "a.log", b"x" * 5000)
    placed = ft.place(tf, b"x" * 4096, 9000, 1)  # (the file was cut since)
    assert placed is not None and placed[2] and len(placed[1]) < 9000


def test_after_a_catch_up_writes_already_read_back_are_dropped(tmp_path):
    ft, tf = tracked(tmp_path / "a.log", b"one\ntwo\nthree\n")
    tf.cursor, tf.handover_ns = 14, 100  # the catch-up read it all at monotonic time 100
    tf.shipped_unclaimed(0, 14)
    assert ft.place(tf, b"one\n", 4, 50) is None  # ended before the hand-over
    assert ft.place(tf, b"three\n", 6, 150) is None  # ended after it, but its bytes were read
    with open(tmp_path / "a.log", "ab") as f:
        f.write(b"four\n")
    assert ft.place(tf, b"four\n", 5, 160) == (14, b"four\n", False)


def test_bytes_nobody_reported_are_shipped_with_the_next_write(tmp_path):
    ft, tf = tracked(tmp_path / "a.log", b"lost event\nseen\n")
    tf.cursor, tf.synced = 0, False
    assert ft.place(tf, b"seen\n", 5, 1) == (0, b"lost event\nseen\n", False)
    assert ft.notes["unseen_bytes"] == 11


def test_a_truncated_file_starts_a_new_generation(tmp_path):
    ft, tf = tracked(tmp_path / "a.log", b"a" * 99 + b"\n")
    tf.cursor, tf.synced = 100, True
    (tmp_path / "a.log").write_bytes(b"after\n")  # copytruncate, then a write
    first_id = tf.file_id
    assert ft.place(tf, b"after\n", 6, 1) == (0, b"after\n", False)
    assert tf.gen == 1 and tf.file_id != first_id and tf.cursor == 6


def test_paths_resolve_inside_the_root_never_outside(tmp_path):
    root = tmp_path / "root"
    (root / "var/log").mkdir(parents=True)
    (root / "var/log/app.log").write_bytes(b"inside\n")
    (tmp_path / "secret").write_bytes(b"host file\n")
    os.symlink(str(tmp_path / "secret"), root / "var/log/evil.log")  # absolute: resolved in the root
    fd = open_in_root(str(root), "/var/log/app.log")
    assert os.read(fd, 100) == b"inside\n"
    os.close(fd)
    try:
        fd = open_in_root(str(root), "/var/log/evil.log")
    except OSError:
        return  # (nothing at that path inside the root)
    try:
        assert os.read(fd, 100) != b"host file\n"
    finally:
        os.close(fd)


def test_a_rotated_file_is_found_by_its_identity(tmp_path):
    (tmp_path / "var/log").mkdir(parents=True)
    p = tmp_path / "var/log/app.log"
    p.write_bytes(b"x\n")
    st = os.stat(p)
    os.rename(p, tmp_path / "var/log/app.log.1")
    p.write_bytes(b"new\n")
    found = find_by_identity(str(tmp_path), "/var/log/app.log", st.st_dev, st.st_ino)
    assert found is not None
    fd, path = found
    os.close(fd)
    assert path == "/var/log/app.log.1"
    assert find_by_identity(str(tmp_path), "/var/log/app.log", st.st_dev, st.st_ino + 10**9) is None


def test_file_checkpoints_round_trip_and_never_go_back_a_generation(tmp_path):
    s = FileCheckpointStore(tmp_path)
    s.advance(FileCheckpoint("c1", "/var/log/app.log", 1, 2, 0, 100))
    s.advance(FileCheckpoint("c1", "/var/log/app.log", 1, 2, 1, 10))  # after a truncation
    s.advance(FileCheckpoint("c1", "/var/log/app.log", 1, 2, 0, 500))  # a late ack of the old generation
    s.save()
    again = FileCheckpointStore(tmp_path)
    [cp] = again.of_container("c1")
    assert (cp.gen, cp.offset, cp.path) == (1, 10, "/var/log/app.log")
    assert again.of_container("c2") == []


def test_file_record_ids_depend_on_the_offset_not_the_time():
    c = Container(id="c1", name="n", image="i")
    live = Record(b"x", 111, FILE, c, seq=4096, source="ebpf", path="/var/log/app.log", file_id="1:2:0")
    read_back = Record(b"x", 999, FILE, c, seq=4096, source="ebpf", path="/var/log/app.log.1", file_id="1:2:0")
    other_gen = Record(b"x", 111, FILE, c, seq=4096, source="ebpf", path="/var/log/app.log", file_id="1:2:1")
    assert live.doc_id() == read_back.doc_id() != other_gen.doc_id()


def test_writes_from_before_a_truncation_are_not_given_offsets_of_the_new_content(tmp_path):
    ft, tf = tracked(tmp_path / "a.log", b"old 1\n")
    tf.cursor, tf.synced = 0, True
    assert ft.place(tf, b"old 1\n", 6, 1) == (0, b"old 1\n", False)
    (tmp_path / "a.log").write_bytes(b"new 1\n")  # old 2 was written, copied away, truncated; then new 1
    assert ft.place(tf, b"old 2\n", 6, 2) == (-1, b"old 2\n", False)  # shipped, by time (not in the file)
    assert ft.place(tf, b"new 1\n", 6, 3) == (0, b"new 1\n", False)
    assert tf.gen == 1


def test_a_write_of_a_line_like_all_others_found_before_the_cursor_was_shipped(tmp_path):
    # A log of identical lines (a health check's): after a read-back, a live event of a line
    # already read is found at the cursor (the same bytes, the next line), so the last one's
    # bytes lie before the cursor. The file still holds what was shipped there: no truncation.
    line = b"GET /healthz 200\n"
    ft, tf = tracked(tmp_path / "a.log", line * 10)
    tf.moved_to(len(line) * 10)
    tf.synced, tf.handover_ns = False, 100
    assert ft.place(tf, line, len(line), 150) is None
    assert tf.gen == 0 and tf.cursor == len(line) * 10


def test_a_file_cut_and_grown_past_the_cursor_is_a_new_generation(tmp_path):
    ft, tf = tracked(tmp_path / "a.log", b"".join(b"old %d\n" % i for i in range(10)))
    tf.moved_to(os.path.getsize(tmp_path / "a.log"))
    tf.synced = False
    (tmp_path / "a.log").write_bytes(b"".join(b"new %d\n" % i for i in range(20)))  # copytruncate, 20 writes
    assert ft.place(tf, b"new 2\n", 6, 1) == (12, b"new 2\n", False)
    assert tf.gen == 1


def _realistic(n: int) -> bytes:
    return b"".join(b'10.0.%d.%d - - [03/Dec/2026:10:00:00 +0000] "GET /api/v1/orders/%06d HTTP/1.1" 200 %d\n'
                    % (i % 255, i % 7, i, 300 + i % 900) for i in range(n))


def test_the_first_write_seen_of_a_file_a_fast_job_wrote_on_is_found_anywhere_in_it(tmp_path, monkeypatch):
    """A job wrote megabytes before the consumer read its first event (at offset 0): found by
    searching the whole file once, not shipped as a piece with the bytes after it lost."""
    body = _realistic(40_000)  # ~3.4 MiB: the first write is far before the last WINDOW
    ft, tf = tracked(tmp_path / "a.log", body)
    reads: list[int] = []
    real = TrackedFile.read

    def read(self: TrackedFile, off: int, n: int) -> bytes:
        reads.append(n)
        return real(self, off, n)

    monkeypatch.setattr(TrackedFile, "read", read)
    assert ft.place(tf, body[:8192], 8192, 1) == (0, body[:8192], False)
    assert tf.cursor == 8192 and ft.notes["found_by_search"] == 1
    ft2, tf2 = tracked(tmp_path / "b.log", body)
    assert ft2.place(tf2, b"not in the file\n" * 8, 128, 1) == (-1, b"not in the file\n" * 8, False)
    reads.clear()
    ft2.place(tf2, b"nor this\n" * 8, 72, 2)
    assert sum(reads) <= 2 * (1 << 20) + 100  # searched once per file: later ones look near the end only


def test_a_write_further_on_than_the_search_reaches_is_read_from_the_cursor(tmp_path):
    """Write events refused for megabytes (a budget, a full ring): the next one seen lies past the
    window. Not a piece: BEYOND, and the source reads the file from the cursor."""
    from shipper.sources.ebpf.filetrack import BEYOND, WINDOW

    body = _realistic(60_000)
    assert len(body) > 2 * WINDOW
    ft, tf = tracked(tmp_path / "a.log", body)
    assert ft.place(tf, body[:8192], 8192, 1) == (0, body[:8192], False)
    ft.lost_before("c1")
    far = len(body) - 16384
    assert ft.place(tf, body[far:far + 8192], 8192, 2) is BEYOND
    assert tf.cursor == 8192 and ft.notes["beyond_window"] == 1
    near = 8192 + 100_000  # within the window: found, with the bytes before it
    at = body.index(b"\n", near) + 1
    placed = ft.place(tf, body[at:at + 8192], 8192, 3)
    assert placed == (8192, body[8192:at + 8192], False)


def _any(path: str) -> bool:
    return True


def test_a_file_pinned_while_its_writer_had_it_is_read_after_the_writer_and_the_file_are_gone(tmp_path):
    """A job's write held before Docker reported it: its file is opened from the writer's fd
    then, so once the job has exited and (`--rm`) its file is deleted, the write still finds it."""
    path = tmp_path / "job.log"
    path.write_bytes(b"a\nb\n")
    wfd = os.open(path, os.O_WRONLY | os.O_APPEND)
    ft = FileTracker()
    ft.pin(7, os.getpid(), wfd, 9, _any)
    ft.pin(8, os.getpid(), 0, 9, _any)  # (not a regular file, or not open: nothing pinned)
    os.close(wfd)
    path.unlink()
    tf = ft.for_write("c1", 0, os.getpid(), wfd, 9, str(path))
    assert tf is not None and tf.read(0, 10) == b"a\nb\n"
    assert ft.notes["pinned"] == 1 and ft._pins == {}


def test_a_pin_is_not_taken_for_another_file_and_unpinned_with_its_cgroup(tmp_path):
    (tmp_path / "other.log").write_bytes(b"x\n")
    wfd = os.open(tmp_path / "other.log", os.O_RDONLY)
    ft = FileTracker()
    ft.pin(7, os.getpid(), wfd, 9, lambda p: p.endswith(".data"))  # (not a log file: not pinned)
    assert ft._pins == {}
    ft.pin(7, os.getpid(), wfd, 9, _any)
    assert ft.for_write("c1", 0, os.getpid(), wfd, 9, str(tmp_path / "app.log")) is None
    assert ft._pins == {}  # (its fd closed)
    ft.pin(7, os.getpid(), wfd, 9, _any)
    ft.unpin(7)
    assert ft._pins == {}
    os.close(wfd)
