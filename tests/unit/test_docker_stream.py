"""Docker log stream decoding: frames, timestamps, 16 KiB partials, TTY streams, bad input."""

from __future__ import annotations

import struct

import pytest

from shipper.core.timefmt import parse_docker_time
from shipper.sources.docker.stream import Line, StreamDecoder

T1 = b"2026-11-20T23:34:59.049677385Z"
T1_NS = 1795217699049677385


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", kind, len(payload)) + payload


def entry(ts: bytes, body: bytes) -> bytes:
    return ts + b" " + body


def test_timestamps_keep_nanoseconds_and_trimmed_fractions():
    assert parse_docker_time(T1) == T1_NS
    assert parse_docker_time(b"2026-11-20T23:34:59.0496Z") == T1_NS - 77385
    assert parse_docker_time(b"2026-11-20T23:34:59Z") == T1_NS - 49677385
    assert parse_docker_time(b"1970-01-01T00:00:00.000000001Z") == 1
    assert parse_docker_time(b"2024-02-29T12:00:00Z") == 1709208000 * 10**9  # leap day
    with pytest.raises(ValueError):
        parse_docker_time(b"hello world")


def test_frames_are_demultiplexed_even_when_split_across_reads():
    data = frame(1, entry(T1, b"out\n")) + frame(2, entry(T1, b"err\n")) + frame(1, entry(T1, b"two\n"))
    for cut in range(1, len(data)):
        d = StreamDecoder()
        lines = d.feed(data[:cut]) + d.feed(data[cut:]) + d.flush()
        assert lines == [Line("stdout", T1_NS, b"out"), Line("stderr", T1_NS, b"err"), Line("stdout", T1_NS, b"two")]


def test_partial_pieces_are_merged_byte_exact_under_the_first_timestamp():
    t2 = b"2026-11-20T23:34:59.1Z"
    piece1, piece2 = bytes(range(256)) * 64, b"\x00\xff tail \r"
    d = StreamDecoder()
    # an stderr line in between must not disturb the stdout line being assembled
    lines = d.feed(frame(1, entry(T1, piece1)) + frame(2, entry(t2, b"e\n")) + frame(1, entry(t2, piece2 + b"\n")))
    assert lines == [Line("stderr", parse_docker_time(t2), b"e"),
                     Line("stdout", T1_NS, piece1 + piece2, truncated=False, merged=True)]


def test_over_long_lines_are_cut_flagged_and_counted():
    d = StreamDecoder(max_bytes=40_000)
    pieces = [frame(1, entry(T1, b"a" * 16384)) for _ in range(5)] + [frame(1, entry(T1, b"b\n"))]
    lines = d.feed(b"".join(pieces))
    assert len(lines) == 1 and lines[0].truncated and lines[0].merged and len(lines[0].data) == 40_000
    assert d.truncated_lines == 1 and d.truncated_bytes == 5 * 16384 + 1 - 40_000
    # a single whole entry over the bound too
    d2 = StreamDecoder(max_bytes=10)
    assert d2.feed(frame(1, entry(T1, b"x" * 20 + b"\n"))) == [Line("stdout", T1_NS, b"x" * 10, True)]


def test_last_line_without_newline_comes_out_at_the_end():
    d = StreamDecoder()
    assert d.feed(frame(1, entry(T1, b"no newline"))) == []
    assert d.flush() == [Line("stdout", T1_NS, b"no newline", False, False)]


def test_bad_bytes_are_kept():
    d = StreamDecoder()
    body = b"\x00nul \xff\xfe invalid \r cr"
    assert d.feed(frame(1, entry(T1, body + b"\n"))) == [Line("stdout", T1_NS, body)]
    # an entry without a timestamp is kept with time 0 (the source puts it next to its neighbour)
    assert d.feed(frame(1, b"garbage\n")) == [Line("stdout", 0, b"garbage")]
    assert d.bad_entries == 1


def test_tty_stream_lines_cr_and_last_piece():
    d = StreamDecoder(tty=True)
    raw = entry(T1, b"hello\r\n") + entry(T1, b"wor")
    lines = d.feed(raw[:20]) + d.feed(raw[20:])
    assert lines == [Line("stdout", T1_NS, b"hello")]
    assert d.flush() == [Line("stdout", T1_NS, b"wor", False, False)]


def test_tty_partial_pieces_are_found_by_their_timestamp():
    t2 = b"2026-11-20T23:34:59.051140648Z"
    piece = b"0" * 16376
    raw = entry(T1, piece) + entry(t2, b"0" * 3624 + b"\r\n") + entry(t2, b"short " + T1 + b" quoted\r\n")
    lines = StreamDecoder(tty=True).feed(raw)
    assert lines == [Line("stdout", T1_NS, b"0" * 20000, False, True),
                     Line("stdout", parse_docker_time(t2), b"short " + T1 + b" quoted")]


def test_tty_buffer_is_bounded_without_newlines():
    d = StreamDecoder(max_bytes=1000, tty=True)
    out = d.feed(entry(T1, b"z" * 5000))
    assert len(d._buf) == 0 and out == []  # handed over as a piece, held under the bound
    out = d.flush()
    assert out == [Line("stdout", T1_NS, b"z" * 1000, True, False)]


def test_inline_time_path_equals_parse_docker_time_for_every_fraction_length():
    import random
    rnd = random.Random(7)
    want, data = [], b""
    for i in range(3000):
        sec = rnd.choice([b"2026-11-21T03:21:24", b"2026-11-21T03:21:25", b"2024-02-29T23:59:59"])
        n = rnd.randint(0, 9)  # Docker trims trailing zeros: 0 to 9 digits
        ts = sec + (b"." + bytes(rnd.choice(b"0123456789") for _ in range(n)) if n else b"") + b"Z"
        data += frame(1 + i % 2, entry(ts, b"line %d\n" % i))
        want.append(Line(("stdout", "stderr")[i % 2], parse_docker_time(ts), b"line %d" % i))
    d = StreamDecoder()
    got = [line for k in range(0, len(data), 4099) for line in d.feed(data[k:k + 4099])]
    assert got == want and d.bad_entries == 0
