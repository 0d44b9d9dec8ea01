"""The C speed-ups (parsers/_keywords.c, parsers/_stamps.c, shipper/sources/docker/_frames.c) give exactly what the
Python code they stand in for gives, on generated input; and they are built."""

from __future__ import annotations

import importlib
import struct
from datetime import UTC, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from parsers import levels, timestamps
from parsers.formats import generic
from shipper.sources.docker import stream as docker_stream
from shipper.sources.docker.stream import StreamDecoder
from tests.conftest import infra_missing
from tests.sizing import examples

_keywords: Any
_stamps: Any
_frames: Any
try:  # extension modules: typed as Any, the tests below hold them to the Python they stand in for
    _keywords = importlib.import_module("parsers._keywords")
    _stamps = importlib.import_module("parsers._stamps")
    _frames = importlib.import_module("shipper.sources.docker._frames")
except ImportError:  # pragma: no cover - asserted below
    _keywords = _stamps = _frames = None


@pytest.fixture(autouse=True)
def _built() -> None:
    if _keywords is None or _stamps is None or _frames is None:
        infra_missing("the C speed-ups",
                      "built by `pip install -e .` with gcc and python3-dev; `make test` provisions them")


def test_the_c_versions_are_the_ones_in_use():
    assert levels.heuristic is _keywords.heuristic
    assert generic.stampish is _keywords.stampish
    assert timestamps.to_datetime is _stamps.to_datetime
    assert docker_stream._split_simple is _frames.split


# ---- level keywords -------------------------------------------------------------
WORDS = ["emerg", "EMERGENCY", "Panic", "fatal", "crit", "critical", "err", "Error", "exception", "warn",
         "WARNING", "notice", "info", "Info", "debug", "trace", "errors", "stderr", "informational", "x", "_err",
         "err_", "9err", "ERR0", "trac", "tracer", "infoo"]
SEPARATORS = [" ", "", "_", "-", ".", ":", "[", "]", "\t", "=", "0", "é", "\u0130", "\u0131", "\u212a", "\x00"]


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(SEPARATORS), st.text(max_size=6)),
                          max_size=14))
    return "".join(parts)


@settings(max_examples=examples(3000))
@given(texts())
def test_keywords_agree_with_python(text: str):
    assert _keywords.heuristic(text) == levels._heuristic_py(text)


@settings(max_examples=examples(500))
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_keywords_agree_with_python_on_any_ascii(text: str):
    assert _keywords.heuristic(text) == levels._heuristic_py(text)


@pytest.mark.parametrize("text, level", [
    ("x" * 4093 + " err", None),  # beyond the bound
    ("x" * 4092 + " err", "error"),
    ("x" * 4092 + " errors", "error"),  # cut at the bound, as the Python version cuts
    ("an Error, then PANIC", "emergency"),
    ("stderr errors_total", None),
    ("naïve error", "error"),  # non-ASCII: the Python version decides
    ("", None),
])
def test_keyword_edges(text: str, level: str | None):
    assert _keywords.heuristic(text) == levels._heuristic_py(text) == level


# ---- the generic reader's stamp pre-check -----------------------------------------
STAMP_BITS = ["1", "0", "9", "12", "123456", ":", ".", " ", "a", "-", "/", "\u0661", "\uff11", "é", "\U0001f600"]


@settings(max_examples=examples(3000))
@given(st.lists(st.one_of(st.sampled_from(STAMP_BITS), st.text(max_size=3)), max_size=20),
       st.integers(min_value=-2, max_value=70))
def test_stampish_agrees_with_python(parts: list[str], end: int):
    text = "".join(parts)
    assert _keywords.stampish(text, end) is generic._stampish_py(text, end)


@pytest.mark.parametrize("text, end, found", [
    ("12:00", 320, True), ("1.5", 320, True), ("1.5", 2, False), ("123456", 320, True), ("12345", 320, False),
    ("x123456", 6, False), ("a1:b", 320, False), ("\u0661:\u0662", 320, False), ("é 1:2", 320, True), ("", 5, False),
])
def test_stampish_edges(text: str, end: int, found: bool):
    assert _keywords.stampish(text, end) is generic._stampish_py(text, end) is found


def test_keywords_refuse_what_is_not_text():
    with pytest.raises(TypeError):
        _keywords.heuristic(b"error")


# ---- @timestamp from epoch ns -------------------------------------------------------
def _same_datetime(ns: int, zone: tzinfo) -> None:
    try:
        want: object = timestamps._to_datetime_py(ns, zone)
    except (OverflowError, ValueError) as exc:
        want = type(exc)
    try:
        got: object = _stamps.to_datetime(ns, zone)
    except (OverflowError, ValueError) as exc:
        got = type(exc)
    assert got == want
    if not isinstance(want, type):  # the same instant, fields, zone object and offset
        assert (got.timetuple(), got.microsecond, got.tzinfo, got.utcoffset(), got.fold) == (  # type: ignore[attr-defined]
            want.timetuple(), want.microsecond, want.tzinfo, want.utcoffset(), want.fold)  # type: ignore[attr-defined]


ZONES = st.one_of(
    st.just(UTC),
    st.integers(-86399, 86399).map(lambda s: timezone(timedelta(seconds=s))),
    st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m))),
    st.builds(lambda us: timezone(timedelta(microseconds=us)), st.integers(-86_399_999_999, 86_399_999_999)),
    st.sampled_from([ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York"), ZoneInfo("UTC")]),
)


@settings(max_examples=examples(3000))
@given(st.one_of(st.integers(timestamps.MIN_NS - 10**12, timestamps.MAX_NS + 10**12),
                 st.integers(-10**18, 4 * 10**18), st.sampled_from([timestamps.MIN_NS, timestamps.MAX_NS, 0, -1])),
       ZONES)
def test_stamps_agree_with_python(ns: int, zone: tzinfo):
    _same_datetime(ns, zone)


@pytest.mark.parametrize("ns", [0, -1, -999, -1000, -1001, 1, 999, 1_700_000_000_123_456_789, 951_782_400 * 10**9,
                                timestamps.MIN_NS, timestamps.MAX_NS, timestamps.MIN_NS - 1, timestamps.MAX_NS + 1,
                                10**40, -(10**40)])
@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=23, minutes=59)),
                                  timezone(timedelta(seconds=1)), ZoneInfo("Europe/Paris")])
def test_stamp_edges(ns: int, zone: tzinfo):
    _same_datetime(ns, zone)  # the year 1 / 9999 bounds, an offset beyond them, floors of negative ns


def test_stamps_default_to_utc_and_refuse_what_is_not_a_zone():
    assert _stamps.to_datetime(0) == timestamps._to_datetime_py(0) and _stamps.to_datetime(0).tzinfo is UTC
    with pytest.raises((TypeError, AttributeError)):
        _stamps.to_datetime(0, "UTC")
    with pytest.raises(TypeError):
        _stamps.to_datetime()


# ---- frames ----------------------------------------------------------------------
STAMPS = [b"2026-11-20T23:34:59.049677385Z", b"2026-11-20T23:34:59.0496Z", b"2026-11-20T23:34:59Z",
          b"1970-01-01T00:00:00.1Z", b"0000-01-01T00:00:00.5Z", b"2026-11-20T23:34:59.0496773851Z",
          b"2026-11-20T23:34:59.Z", b"2026-11-20 23:34:59Z", b"2026-1x-20T23:34:59Z", b"2026-11-20T23:34:59.1_2Z",
          b"", b"garbage"]


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int], int]:
    data = b""
    for _ in range(draw(st.integers(0, 12))):
        stamp = draw(st.sampled_from(STAMPS))
        body = draw(st.binary(max_size=40)) + draw(st.sampled_from([b"\n", b"\n", b"\n", b""]))
        payload = stamp + draw(st.sampled_from([b" ", b" ", b""])) + body
        kind = draw(st.sampled_from([1, 1, 2, 0, 3]))
        data += struct.pack(">BxxxI", kind, len(payload)) + payload
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    return data, cuts, draw(st.sampled_from([8, 30, 1 << 20]))


def _decode(data: bytes, cuts: list[int], max_bytes: int) -> tuple[list, tuple[int, int, int]]:
    d = StreamDecoder(max_bytes)
    out, prev = [], 0
    for c in [*cuts, len(data)]:
        out += d.feed(data[prev:c])
        prev = c
    out += d.flush()
    return [tuple(line) for line in out], (d.truncated_lines, d.truncated_bytes, d.bad_entries)


@settings(max_examples=examples(3000))
@given(streams())
def test_frames_agree_with_python(case: tuple[bytes, list[int], int]):
    with_c = _decode(*case)
    docker_stream._split_simple = None
    try:
        assert _decode(*case) == with_c
    finally:
        docker_stream._split_simple = _frames.split


def test_frames_stop_where_python_must_take_over():
    def frame(kind: int, payload: bytes) -> bytes:
        return struct.pack(">BxxxI", kind, len(payload)) + payload
    whole, piece = frame(1, b"2026-11-20T23:34:59.5Z one line\n"), frame(2, b"2026-11-20T23:34:59.5Z piece")
    lines, pos = _frames.split(whole + piece + whole, 0, 1 << 20)
    assert lines == [("stdout", 1795217699500000000, b"one line", False, False)] and pos == len(whole)
    assert lines[0][0] is "stdout"  # noqa: F632 - the interned literal: stages compare streams with `is`
    assert _frames.split(whole[:20], 0, 1 << 20) == ([], 0)
    with pytest.raises(ValueError):
        _frames.split(whole, len(whole) + 1, 1 << 20)
    with pytest.raises(TypeError):
        _frames.split(bytearray(whole), 0, 1 << 20)
