"""The shipper's multi-line stage: joins traces per stream, keeps ids and acks exact."""

from __future__ import annotations

from typing import Callable

from hypothesis import given, settings, strategies as st

from parsers.multiline import MultilineJoiner
from shipper.core.container import Container
from shipper.transforms.multiline import MultilineStage
from shipper.core.record import SYSLOG, Record
from tests.fakes import ack
from tests.sizing import examples

A = Container(id="a" * 64, name="a", image="i")
B = Container(id="b" * 64, name="b", image="i")


def recs(c, lines, stream="stdout", t0=100):
    acked: list[int] = []

    def acker(i: int) -> Callable[[Record], None]:
        return lambda r: acked.append(i)

    out = [Record(message=ln, time_ns=t0 + i, stream=stream, container=c, on_delivered=acker(i))
           for i, ln in enumerate(lines)]
    return out, acked


def test_java_trace_is_one_record_and_acks_every_line():
    lines = [b"Exception in thread \"main\" java.lang.IllegalStateException: boom",
             b"\tat com.shop.Cart.pay(Cart.java:42)", b"\tat com.shop.Main.main(Main.java:7)", b"next line"]
    rs, acked = recs(A, lines)
    st = MultilineStage(timeout_s=1.0)
    out = st.feed(rs, now=0.0)
    assert len(out) == 1
    assert out[0].message == b"\n".join(lines[:3])
    assert out[0].time_ns == 100 and out[0].doc_id() == rs[0].doc_id()
    ack(out[0])
    assert acked == [0, 1, 2]
    rest = st.flush_due(now=5.0)
    assert [r.message for r in rest] == [b"next line"] and rest[0] is rs[3]


def test_streams_do_not_mix_and_syslog_passes_through():
    st = MultilineStage()
    a, _ = recs(A, [b"first a", b"  continued a"])
    b, _ = recs(B, [b"first b"])
    s, _ = recs(A, [b"<13>Jan  1 00:00:00 h app: x", b"  indented datagram"], stream=SYSLOG)
    out = st.feed([a[0], b[0], a[1], *s], now=0.0)
    assert [r.message for r in out] == [s[0].message, s[1].message]
    out = st.flush()
    assert sorted(r.message for r in out) == [b"first a\n  continued a", b"first b"]


def test_invalid_utf8_survives_joining_byte_exact():
    st = MultilineStage()
    rs, _ = recs(A, [b"bad \xff start", b"\tat x(\xfe)"])
    out = st.feed(rs, 0.0) + st.flush()
    assert out[0].message == b"bad \xff start\n\tat x(\xfe)"


def test_bounded_by_lines():
    st = MultilineStage(max_lines=3)
    rs, acked = recs(A, [b"head"] + [b"  cont %d" % i for i in range(7)])
    out = st.feed(rs, 0.0) + st.flush()
    assert sum(r.message.count(b"\n") + 1 for r in out) == 8
    assert out[0].truncated
    for r in out:
        ack(r)
    assert sorted(acked) == list(range(8))




_piece = st.sampled_from(["plain", "  indented", "\tat x.y(Z.java:1)", "Caused by: e", "... 3 more", "",
                          "Traceback (most recent call last):", "  File \"a.py\", line 1", "ValueError: v",
                          "panic: boom", "goroutine 1 [running]:", "main.main()", ".dot", "ERROR x"])


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(_piece, st.integers(0, 3)), max_size=40))
def test_fast_path_matches_the_pure_joiner(items):
    lines = [p for p, _ in items]
    times = []
    t = 0.0
    for _, gap in items:
        t += gap * 0.4  # some gaps exceed the 1 s timeout
        times.append(t)
    ref = MultilineJoiner(timeout=1.0)
    want: list[str] = []
    for ln, now in zip(lines, times, strict=True):
        want += [e.text for e in ref.feed(ln, now)]
    want += [e.text for e in ref.flush()]
    stage = MultilineStage(timeout_s=1.0)
    got: list[bytes] = []
    for ln, now in zip(lines, times, strict=True):
        rec = Record(message=ln.encode(), time_ns=int(now * 1e9), stream="stdout", container=A)
        got += [r.message for r in stage.feed([rec], now)]
    got += [r.message for r in stage.flush()]
    assert [g.decode() for g in got] == want


def test_joined_record_keeps_the_snapshot_id_of_its_lines():
    st = MultilineStage()
    rs, _ = recs(A, [b"Traceback (most recent call last):", b"  File \"a.py\", line 1", b"ValueError: x"])
    rs[2].snapshot_id = "S1"
    out = st.feed(rs, 0.0) + st.flush()
    assert len(out) == 1 and out[0].snapshot_id == "S1"
