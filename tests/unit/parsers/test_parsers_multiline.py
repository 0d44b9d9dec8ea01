from __future__ import annotations

from parsers.multiline import Event, MultilineJoiner


def run(lines, **kw):
    j = MultilineJoiner(**kw)
    out = []
    for i, line in enumerate(lines):
        out += j.feed(line, i * 0.01)
    return out + j.flush()


def test_java_trace_with_caused_by():
    lines = ["java.lang.RuntimeException: outer", "\tat a.B.c(B.java:1)", "Caused by: java.io.IOException: inner",
             "\tat d.E.f(E.java:2)", "\t... 3 more", "next line"]
    ev = run(lines)
    assert [e.text for e in ev] == ["\n".join(lines[:5]), "next line"]
    assert ev[0].lines == 5 and not ev[0].truncated


def test_python_traceback_with_chain():
    lines = ["Traceback (most recent call last):", '  File "x.py", line 1, in <module>', "    f()",
             "KeyError: 'a'", "", "During handling of the above exception, another exception occurred:", "",
             "Traceback (most recent call last):", '  File "x.py", line 3, in <module>', "ValueError: b",
             "INFO next"]
    ev = run(lines)
    assert len(ev) == 2 and ev[0].text.endswith("ValueError: b") and ev[1].text == "INFO next"


def test_go_panic():
    lines = ["panic: runtime error: index out of range", "", "goroutine 1 [running]:", "main.main()",
             "\t/src/main.go:5 +0x1d", "exit status 2", "after"]
    ev = run(lines)
    assert [e.text for e in ev] == ["\n".join(lines[:6]), "after"]


def test_plain_lines_stay_separate_and_timeout():
    j = MultilineJoiner(timeout=1.0)
    assert j.feed("one", 0.0) == []
    assert j.feed("two", 0.1) == [Event("one", False, 1)]
    assert j.flush_due(0.5) == []
    assert j.flush_due(1.2) == [Event("two", False, 1)]
    assert not j.pending
    assert j.feed("three", 5.0) == [] and j.flush() == [Event("three")]


def test_line_and_byte_bounds_truncate():
    ev = run(["head"] + ["  cont"] * 9, max_lines=4)
    assert ev[0].truncated and ev[0].lines == 4
    assert sum(e.lines for e in ev) == 10
    ev = run(["x" * 50], max_bytes=10)
    assert ev[0].text == "x" * 10 and ev[0].truncated
    ev = run(["é" * 10], max_bytes=5)
    assert len(ev[0].text.encode()) <= 5 and ev[0].truncated
