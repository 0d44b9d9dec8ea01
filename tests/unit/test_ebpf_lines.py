"""Line assembly of eBPF write captures, and the log-path filter."""

from __future__ import annotations

from shipper.sources.ebpf.lines import LineAssembler, PathFilter, syslog_message

K = (42, "/var/log/app.log")


def msgs(lines):
    return [ln for ln, _, _, _ in lines]


def test_whole_lines_in_one_write():
    a = LineAssembler()
    assert a.feed(K, b"one\ntwo\n", 5) == [(b"one", 5, False, -1), (b"two", 5, False, -1)]
    assert len(a) == 0


def test_one_line_in_three_pieces_keeps_the_first_piece_time():
    a = LineAssembler()
    assert a.feed(K, b"first-", 1) == []
    assert a.feed(K, b"second-", 2) == []
    assert a.feed(K, b"third\nnext", 3) == [(b"first-second-third", 1, False, -1)]
    assert a.flush(K) == [(b"next", 3, False, -1)]


def test_pieces_of_different_writers_never_mix():
    a = LineAssembler()
    other = (43, K[1])
    a.feed(K, b"aaa", 1)
    a.feed(other, b"bbb", 2)
    assert msgs(a.feed(K, b"AAA\n", 3)) == [b"aaaAAA"]
    assert msgs(a.feed(other, b"BBB\n", 4)) == [b"bbbBBB"]


def test_empty_lines_are_kept():
    assert msgs(LineAssembler().feed(K, b"a\n\nb\n", 1)) == [b"a", b"", b"b"]


def test_idle_buffers_expire_after_the_timeout():
    a = LineAssembler(timeout_ns=1000)
    a.feed(K, b"partial", 100)
    assert a.expired(1099) == []
    assert a.expired(1100) == [K]
    assert a.flush(K) == [(b"partial", 100, False, -1)]
    assert a.flush(K) == []


def test_a_write_cut_by_the_capture_ends_its_line_as_truncated():
    a = LineAssembler()
    assert a.feed(K, b"whole\nstart of a long li", 1, truncated=True) == [
        (b"whole", 1, False, -1), (b"start of a long li", 1, True, -1)]
    assert len(a) == 0


def test_lines_longer_than_the_bound_are_cut_and_the_rest_skipped():
    a = LineAssembler(max_line=10)
    out = a.feed(K, b"0123456789abcdef", 1) + a.feed(K, b"ghij\nnext\n", 2)
    assert out == [(b"0123456789", 1, True, -1), (b"next", 2, False, -1)]
    assert a.overflows == 1


def test_buffer_count_is_bounded():
    a = LineAssembler(max_buffers=2)
    a.feed((1, "p"), b"x", 1)
    a.feed((2, "p"), b"y", 2)
    assert a.feed((3, "p"), b"z", 3) == [(b"x", 1, False, -1)]  # the oldest is flushed, not lost
    assert len(a) == 2


def test_default_path_filter():
    f = PathFilter()
    for p in ("/var/log/app.log", "/var/log/messages", "/app/logs/x.log", "/srv/access_log",
              "/data/debug.log.txt"):
        assert f(p), p
    # (logrotate's old files: what a rotation copies into them was shipped when first written)
    for p in ("/var/log/app.log.gz", "/tmp/a.log.1", "/var/log/app.log-20261201",
              "/tmp/data.txt", "/etc/passwd", "/app/catalog.json", "/dev/null"):
        assert not f(p), p


def test_configured_path_filter():
    f = PathFilter(("/srv/*.out",), ())
    assert f("/srv/app.out") and not f("/var/log/app.log")


def test_syslog_message_is_one_datagram():
    assert syslog_message(b"<155>Nov 20 10:00:00 app: a\nb\n\0") == b"<155>Nov 20 10:00:00 app: a\nb"


def test_lines_carry_the_file_offset_of_their_first_byte():
    a = LineAssembler()
    assert a.feed(K, b"one\ntwo\n", 5, offset=100) == [(b"one", 5, False, 100), (b"two", 5, False, 104)]
    assert a.feed(K, b"thr", 6, offset=108) == []
    assert a.feed(K, b"ee\nfo", 7, offset=111) == [(b"three", 6, False, 108)]
    assert a.flush(K) == [(b"fo", 7, False, 114)]
