"""The ack tracker: a container's watermark only covers a delivered prefix, whatever
order the sink acknowledges in."""

from __future__ import annotations

import random

from shipper.core.acks import AckTracker, AckWindow
from shipper.core.container import Container
from shipper.core.record import Record
from tests.fakes import ack

C = Container(id="c1", name="n", image="i")


def recs(times: list[int], stream: str = "stdout") -> list[Record]:
    return [Record(b"x", t, stream, C) for t in times]


def window() -> tuple[AckWindow, list[tuple[str, int]]]:
    calls: list[tuple[str, int]] = []
    return AckWindow("c1", lambda cid, t: calls.append((cid, t))), calls


def test_in_order_acks_advance_to_each_time():
    w, calls = window()
    rs = recs([10, 20, 30])
    w.track(rs)
    for r in rs:
        ack(r)
    assert calls == [("c1", 10), ("c1", 20), ("c1", 30)]
    assert len(w) == 0


def test_out_of_order_acks_wait_for_the_gap():
    w, calls = window()
    rs = recs([10, 20, 30, 40])
    w.track(rs)
    ack(rs[2])
    ack(rs[1])
    assert calls == [] and w.watermark_ns == 0  # the first is still outstanding
    ack(rs[0])
    assert calls == [("c1", 30)]
    ack(rs[3])
    assert w.watermark_ns == 40


def test_interleaved_streams_keep_the_watermark_below_an_earlier_outstanding_time():
    # stderr's line was stamped before stdout's but arrived after it
    w, calls = window()
    out, err = recs([100])[0], recs([95], "stderr")[0]
    w.track([out, err])
    ack(out)
    assert w.watermark_ns == 94  # not 100: resuming at 100 would skip the stderr line
    ack(err)
    assert w.watermark_ns == 100


def test_duplicate_ack_is_counted_not_fatal():
    w, _ = window()
    r = recs([5])[0]
    w.track([r])
    ack(r)
    ack(r)
    assert w.duplicate_acks == 1 and w.watermark_ns == 5


def test_random_order_over_many_records_with_compaction():
    w, calls = window()
    rng = random.Random(7)
    delivered: list[Record] = []
    expected_max = 0
    for block in range(20):  # tracked in batches, acked shuffled across batches
        rs = recs(list(range(block * 1000 + 1, block * 1000 + 1001)))
        w.track(rs)
        delivered.extend(rs)
        rng.shuffle(delivered)
        for r in delivered[: len(delivered) // 2]:
            ack(r)
        delivered = delivered[len(delivered) // 2:]
        expected_max = block * 1000 + 1000
        # invariant: everything up to the watermark is delivered
        assert all(r.time_ns > w.watermark_ns for r in delivered)
    for r in delivered:
        ack(r)
    assert w.watermark_ns == expected_max and len(w) == 0
    assert len(w._times) < 4096 * 2  # the window's lists were compacted
    assert [t for _, t in calls] == sorted(t for _, t in calls)


def test_tracker_keeps_one_window_per_container():
    seen: list[tuple[str, int]] = []
    t = AckTracker(lambda cid, ns: seen.append((cid, ns)))
    a, b = t.window("a", 50), t.window("b")
    assert t.window("a") is a and a.watermark_ns == 50
    r = recs([40])[0]
    a.track([r])
    ack(r)
    assert seen == []  # 40 is below the restored watermark: no step back
    r2 = recs([7])[0]
    b.track([r2])
    assert t.outstanding() == 1
    ack(r2)
    assert seen == [("b", 7)]


def test_lag_is_the_age_of_the_oldest_undelivered_line():
    import time as _time

    from shipper.core.acks import AckTracker
    from shipper.core.container import Container
    from shipper.core.record import Record

    t = AckTracker(lambda cid, ns: None)
    c = Container(id="x" * 64, name="x", image="i")
    now = _time.time_ns()
    recs = [Record(message=b"a", time_ns=now - 5_000_000_000, stream="stdout", container=c),
            Record(message=b"b", time_ns=now - 1_000_000_000, stream="stdout", container=c)]
    t.window(c.id).track(recs)
    assert 4.5 < t.lag_s() < 6.0
    ack(recs[0])
    assert 0.5 < t.lag_s() < 2.0
    ack(recs[1])
    assert t.lag_s() == 0.0


def test_runs_of_acks_match_the_model():
    """delivered_many flags long consecutive runs with one slice assignment: the watermark,
    the outstanding count and the duplicate count are still those of the model: flag each
    record of the run, then advance over the delivered prefix once."""
    rng = random.Random(11)
    for _ in range(300):
        times = [rng.randrange(1, 60) for _ in range(rng.randrange(1, 120))]
        w, _ = window()
        rs = recs(times)
        w.track(rs)
        order = list(range(len(times)))
        runs: list[list[int]] = []
        while order:  # consecutive slices, shuffled slices, and repeats
            k = rng.randrange(1, 30)
            run, order = order[:k], order[k:]
            if rng.random() < 0.3:
                rng.shuffle(run)
            if rng.random() < 0.2 and runs:
                run = run + rng.choice(runs)[:3]
            runs.append(run)
        rng.shuffle(runs)
        done = [False] * len(times)
        head = wm = dups = 0
        for run in runs:
            w.delivered_many([rs[i] for i in run])
            for i in run:
                dups += done[i]
                done[i] = True
            h = done.index(False) if False in done else len(done)
            if h > head:
                last = max(times[:h])
                wm = max(wm, last if h == len(done) else min(last, times[h] - 1))
                head = h
            assert (w.watermark_ns, len(w), w.duplicate_acks) == (wm, done.count(False), dups)
        assert len(w) == 0 and w.watermark_ns == max(times)
