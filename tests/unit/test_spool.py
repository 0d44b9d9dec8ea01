"""The disk spool: order, bounds, restart, corruption (plain values, a tmp dir)."""

from __future__ import annotations

from pathlib import Path

from shipper.sinks.spool import HEADER, Spool


def _spool(d: Path, **kw) -> Spool:
    kw = {"max_bytes": 1 << 20, "segment_bytes": 200, "fsync": "never", **kw}
    return Spool(d, **kw)


def _drain(s: Spool) -> list[bytes]:
    out: list[bytes] = []
    while True:
        got = s.read(3, 1 << 20)
        if not got:
            return out
        out.extend(p for _, p in got)
        s.commit()


def test_replays_in_order_across_segments(tmp_path):
    s = _spool(tmp_path)
    items = [b"doc-%03d" % i for i in range(100)]
    for i in range(0, 100, 7):
        s.append(items[i:i + 7])
    assert len(list(tmp_path.glob("*.seg"))) > 2
    assert _drain(s) == items
    assert s.empty
    s.append([b"late"])
    assert _drain(s) == [b"late"]


def test_positions_identify_frames(tmp_path):
    s = _spool(tmp_path)
    pos = s.append([b"a", b"b"])
    got = s.read(10, 1 << 20)
    assert [p for p, _ in got] == pos


def test_survives_a_restart_and_resumes_after_the_head(tmp_path):
    s = _spool(tmp_path)
    s.append([b"x%d" % i for i in range(10)])
    assert [p for _, p in s.read(4, 1 << 20)] == [b"x0", b"x1", b"x2", b"x3"]
    s.commit()
    s.read(3, 1 << 20)  # read but never committed: must come again
    s.close()
    s2 = _spool(tmp_path)
    assert not s2.empty
    assert _drain(s2) == [b"x%d" % i for i in range(4, 10)]
    s2.close()
    assert _drain(_spool(tmp_path)) == []


def test_rewind_reads_uncommitted_frames_again(tmp_path):
    s = _spool(tmp_path)
    s.append([b"a", b"b"])
    assert len(s.read(10, 1 << 20)) == 2
    s.rewind()
    assert [p for _, p in s.read(10, 1 << 20)] == [b"a", b"b"]


def test_bounded(tmp_path):
    s = _spool(tmp_path, max_bytes=100)
    assert s.has_room(50)
    s.append([b"x" * 60])
    assert not s.has_room(50)
    _drain(s)
    assert s.has_room(50) and s.pending_bytes == 0


def _damaged(tmp_path: Path, payloads: list[bytes], damage) -> Spool:
    """A spool left by a previous run with `payloads`, its segment bytes passed through `damage`."""
    s = _spool(tmp_path, segment_bytes=1 << 20)
    s.append(payloads)
    s.close()
    seg = next(tmp_path.glob("*.seg"))
    seg.write_bytes(damage(bytearray(seg.read_bytes())))
    return _spool(tmp_path, segment_bytes=1 << 20)


def test_corrupt_record_is_quarantined_and_the_others_replayed(tmp_path):
    def flip(raw: bytearray) -> bytes:
        raw[HEADER.size + len(b"first") + HEADER.size + 2] ^= 0xFF  # a byte inside "second-doc"
        return bytes(raw)

    s = _damaged(tmp_path, [b"first", b"second-doc", b"third"], flip)
    assert _drain(s) == [b"first", b"third"]
    assert s.quarantined == 1
    q = list(tmp_path.glob("*.quarantine"))
    assert len(q) == 1 and b"ond-doc" in q[0].read_bytes()


def test_corrupt_length_and_torn_tail(tmp_path):
    def break_length(raw: bytearray) -> bytes:
        raw[HEADER.size + 3] = 0xEE  # the length of "two" is now huge
        return bytes(raw) + b"\x09\x00\x00"  # and a torn tail after "three"

    s = _damaged(tmp_path, [b"one", b"two", b"three"], break_length)
    assert _drain(s) == [b"one", b"three"]
    assert s.quarantined == 2
