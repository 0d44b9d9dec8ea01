"""The cached fast paths give exactly what the general paths give (or defer to them)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st

from parsers import detect, rfc3164
from parsers.formats import android, log4j
from tests.sizing import examples

UTC = timezone.utc
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-3, minutes=-30)), ZoneInfo("Europe/Paris")])
REFS = st.sampled_from([datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 12, 31, 23, 0, tzinfo=UTC),
                        datetime(2023, 3, 1, tzinfo=UTC), datetime(2024, 1, 1, 0, 30, tzinfo=UTC)])


def norm(out: dict | None):
    """Datetimes compared with their offset (== alone ignores the zone)."""
    if out is None:
        return None
    return {k: (v, v.utcoffset()) if isinstance(v, datetime) else v for k, v in out.items()}


def call(fn, *args):
    """Normalised result, or the exception type (parse() turns that into its failsafe)."""
    try:
        return norm(fn(*args))
    except Exception as exc:  # noqa: BLE001 -- both paths must fail alike
        return type(exc)


def two(lo: int = 0, hi: int = 99):
    """Mostly two digits in (and around) the range, sometimes not digits at all."""
    valid = st.integers(lo, hi).map(lambda i: f"{i:02d}")
    junk = st.sampled_from(["0x", " 1", "٣٣", "1", "123"])
    return st.integers(0, 19).flatmap(lambda k: junk if k == 0 else valid)


tails = st.sampled_from([
    "", " INFO [main] org.apache.Cls: msg", " - INFO  [Q[myid=1]/0:2181:Fast@774] - Notification",
    " - app.mod - WARNING - asctime", " WARN 4242 --- [main] c.e.Cls : boot", " garbage", "  ERROR x$Y - z",
    " INFO Outer$Inner: m", " DEBUG a@b.c: m", " INFO a.b.c", " info [t] a.b:c - d",
])


@st.composite
def iso_line(draw):
    sep = draw(st.sampled_from(["T", "T", " ", " ", "t", "_"]))
    frac = draw(st.sampled_from(["", ".", ","])) + draw(st.text("0123456789", max_size=11))
    off = draw(st.one_of(st.sampled_from(["", "Z", "z", "+0100", "+01:00", "-23:59", "+24:00", "+05:99", "+1", "+12:3",
                                          "-0"]), st.text("+-:0123459Zz", max_size=6)))
    return (f"{draw(st.one_of(st.integers(1990, 2030), st.integers(0, 10000))):04d}-"
            f"{draw(two(0, 13))}-{draw(two(0, 32))}{sep}"
            f"{draw(two(0, 25))}:{draw(two(0, 61))}:{draw(two(0, 61))}{frac}{off}{draw(tails)}")


@settings(max_examples=examples(3000), deadline=None)
@given(iso_line(), ZONES)
def test_iso_fast_path_equals_general(line, tz):
    assert call(detect._iso_prefixed, line, None, tz) == call(detect._iso_prefixed_general, line, None, tz)


@st.composite
def bsd_line(draw):
    mon = draw(st.sampled_from(["Jan", "feb", "DEC", "Foo", "Jun"]))
    day = draw(st.sampled_from([" 1", "01", "29", "31", "1", "0", "3x", "  "]))
    year = draw(st.sampled_from(["", "", " 2023", " 2023x", "2024 "]))
    after = draw(st.sampled_from([" host sshd[12]: msg err", " host sshd(pam)[19939]: x", " h a: warn", "  h", " ",
                                  "", ".5 h a: m", ": h a: m", " h a[]: m", " h a[1]b: m", " h [x]: m", " tag: m",
                                  " h a\u00e9: m", " h a:\tb: m", " h a[1]:"]))
    return f"{mon} {day}{year} {draw(two(0, 25))}:{draw(two(0, 61))}:{draw(two(0, 61))}{after}"


@settings(max_examples=examples(3000), deadline=None)
@given(bsd_line(), ZONES, REFS)
def test_rfc3164_fast_path_equals_general(line, tz, ref):
    assert call(rfc3164.parse, line, ref, tz) == call(rfc3164._general, line, ref, tz, False)


@settings(max_examples=examples(3000), deadline=None)
@given(st.text("ab:[]1 \t\n\xa0\u00e9", max_size=12))
def test_split_tag_equals_tag_regex(text):
    got = rfc3164._split_tag(text)
    if got is not True:  # True: the regex decides
        m = rfc3164._TAG.match(text)
        assert got == (False if m is None else (m.group(1), m.group(2), m.end()))


@st.composite
def spark_or_hdfs_line(draw):
    if draw(st.booleans()):
        stamp = (f"{draw(two())}/{draw(two(0, 13))}/{draw(two(0, 32))} "
                 f"{draw(two(0, 25))}:{draw(two(0, 61))}:{draw(two(0, 61))}")
    else:
        pid = draw(st.sampled_from(["148", "", "1x", "٣"]))
        stamp = (f"{draw(two())}{draw(two(0, 13))}{draw(two(0, 32))} "
                 f"{draw(two(0, 25))}{draw(two(0, 61))}{draw(two(0, 61))} {pid}")
    return stamp + draw(tails)


@settings(max_examples=examples(3000), deadline=None)
@given(spark_or_hdfs_line(), ZONES)
def test_log4j_fast_path_equals_general(line, tz):
    assert call(log4j.parse, line, None, tz) == call(log4j._parse_general, line, None, tz)


# The TAIL regex before its logger part was made possessive (no backtracking).
OLD_TAIL = re.compile(
    r"(?: +-)? +(?:\[([^\]]*)\] +)?" + log4j._LEVEL + r" +(?:([0-9]+) +)?(?:-{1,3} +)?(?:\[(.*?)\]:? +)?(?:-+ +)?"
    r"(?:([\w$\-]*[.$][\w$.\-@]*) (?:-|:) +|([\w$\-]*[.$][\w$.\-@]*): +)?(.*)",
    re.S,
)


@settings(max_examples=examples(5000), deadline=None)
@given(st.text(" -[]:.$@aZ_9\u00e9INFOWARN", max_size=30), tails)
def test_possessive_tail_same_groups(text, tail):
    for s in (" INFO " + text, tail + text, " ERROR [t] " + text, text):
        old, new = OLD_TAIL.match(s), log4j.TAIL.match(s)
        assert (old and (old.groups(), old.end())) == (new and (new.groups(), new.end())), s


@st.composite
def logcat_line(draw):
    frac = draw(st.sampled_from([".811", ".8", ".123456", ".1234567", ""]))
    tail = draw(st.sampled_from(["  1702  2395 D WindowManager: m", " 1 2 X t: m", "  1  2 E : m", " 1 2 I t:m", ""]))
    return f"{draw(two(0, 13))}-{draw(two(0, 32))} {draw(two(0, 25))}:{draw(two(0, 61))}:{draw(two(0, 61))}{frac}{tail}"


@settings(max_examples=examples(3000), deadline=None)
@given(logcat_line(), ZONES, REFS)
def test_logcat_fast_path_equals_general(line, tz, ref):
    assert call(android.parse, line, ref, tz) == call(android._parse_general, line, ref, tz)


def test_caches_stay_bounded_and_right_after_junk():
    from parsers import stamp_cache

    good = "2024-05-06 07:08:09,123 INFO [main] a.b.C: m"
    want = detect._iso_prefixed_general(good, None, UTC)
    for i in range(stamp_cache._LIMIT * 2 + 7):
        detect._iso_prefixed(f"{i:04d}-99-99 99:{i % 100:02d}:00 junk", None, UTC)
        assert len(stamp_cache.ISO_MINUTES) <= stamp_cache._LIMIT
    assert norm(detect._iso_prefixed(good, None, UTC)) == norm(want)


# ---- logfmt: all tokens at once (findall) vs one match object per token ----------------
LOGFMT_BITS = ["k", "key", "=", '"', "\\", " ", "\t", "v", "msg", "level", "time", "2026-01-01T00:00:00Z", "info",
               "x=1", '"a b"', "==", "\n", 'q="x \\" y"']


def _logfmt_general(line: str) -> dict | None:
    from parsers.formats import logfmt
    return logfmt.parse_bounded(line, None, UTC)


@settings(max_examples=examples(3000))
@given(st.lists(st.one_of(st.sampled_from(LOGFMT_BITS), st.text(max_size=3)), max_size=80))
def test_logfmt_findall_path_matches_the_general_one(parts: list[str]):
    from parsers.formats import logfmt
    line = "".join(parts)
    if len(line) <= logfmt.SCAN_LIMIT:  # the general path then scans it all too: the same pairs
        assert logfmt.parse(line, None, UTC) == _logfmt_general(line)


def test_logfmt_findall_path_at_the_key_bound():
    from parsers.formats import logfmt
    for n in (63, 64, 65, 66):
        for line in (" ".join(f"k{i}=v" for i in range(n)), " ".join(f"k{i}" if i % 3 else f"k{i}=" for i in range(n))):
            assert logfmt.parse(line, None, UTC) == _logfmt_general(line)


def test_dateutil_answers_are_cached_per_minute_and_bounded():
    from parsers import timestamps
    timestamps._FALLBACK.clear()
    first = timestamps.parse_fallback("Sun Jan 10 16:47:39 EST 2021", UTC)
    assert first is not None
    assert first == (1610315259 * 10**9, first[1]) and first[1].utcoffset(None) == timedelta(hours=-5)
    assert len(timestamps._FALLBACK) == 1 and timestamps.parse_fallback("Sun Jan 10 16:47:39 EST 2021", UTC) == first
    assert timestamps.parse_fallback("not a stamp at all", UTC) is None  # refusals are kept too
    assert timestamps.parse_fallback("not a stamp at all", UTC) is None and len(timestamps._FALLBACK) == 2
    for i in range(1100):
        timestamps.parse_fallback(f"Jan 10 16:47:39 {2000 + i % 50} x{i}", UTC)
    assert len(timestamps._FALLBACK) <= 1024


# ---- access logs: the per-minute CLF cache, the one-regex IPv4 check ----------------
@settings(max_examples=examples(3000))
@given(two(1, 31), st.sampled_from(["Jan", "Feb", "Dec", "feb", "Foo"]), st.sampled_from(["2024", "1900", "0000"]),
       two(0, 24), two(0, 60), st.integers(0, 99).map("{:02d}".format),
       st.sampled_from(["+0000", "-0700", "+0530", "+2400", "-9999", "+0060"]))
def test_clf_minute_cache_matches_the_builder(day, mon, year, hh, mm, ss, off):
    """Seconds as both callers' regexes give them (two ASCII digits); the rest may be junk."""
    from parsers import timestamps
    try:
        want: object = timestamps._clf(day, mon, year, hh, mm, ss, off)
    except Exception as exc:  # noqa: BLE001 -- both must fail alike
        want = type(exc)
    out: dict = {}
    for _ in range(2):  # a miss, then a hit
        try:
            got: object = timestamps.set_clf(out, day, mon, year, hh, mm, ss, off)
        except Exception as exc:  # noqa: BLE001 -- both must fail alike
            got = type(exc)
        if isinstance(want, type):
            assert got is want
        elif want is None:
            assert got is False
        else:
            assert got is True and (out["logship.timestamp_ns"], out["@timestamp"]) == want


def _is_ipv4_reference(text: str) -> bool:
    parts = text.split(".")
    return text.isascii() and all(0 < len(p) <= 3 and int(p) <= 255 and (p == "0" or p[0] != "0") for p in parts)


@settings(max_examples=examples(3000))
@given(st.lists(st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "007", "", "1\u0661", "256"])),
                min_size=4, max_size=4).map(".".join))
def test_ipv4_check_matches_the_octet_rules(text: str):
    from parsers import numbers
    if text.count(".") == 3 and text.replace(".", "").isdigit():
        assert numbers._is_ip(text) is _is_ipv4_reference(text)


# ---- JSON: a flat object is copied, not walked ------------------------------------------
JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=3), inner, max_size=4)),
                           max_leaves=12)


def _flatten_walked(obj: dict, prefix: str = "", depth: int = 1, into: dict | None = None) -> tuple[dict, int]:
    from parsers.formats import _structured
    return _structured.flatten(obj, prefix, depth, {} if into is None else into)  # `into` closes the copy path


@settings(max_examples=examples(3000))
@given(st.one_of(st.dictionaries(st.text(max_size=3), JSON_VALUES, max_size=8),
                 st.dictionaries(st.text(max_size=3), st.integers(), min_size=60, max_size=70),
                 st.dictionaries(st.one_of(st.integers(), st.text(max_size=2)), st.integers(), max_size=5)))
def test_flatten_copy_path_matches_the_walk(obj: dict):
    from parsers.formats import _structured
    got, want = _structured.flatten(obj), _flatten_walked(obj)
    assert got == want and list(got[0]) == list(want[0])  # the same keys in the same order
