"""``parse(..., want_datetime=False)``: no ``@timestamp``, everything else identical,
``@timestamp`` derived from ``logship.timestamp_ns`` (property-tested against the datetime library)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import parsers
from parsers import timestamps
from tests.sizing import examples

UTC = timezone.utc
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), ZoneInfo("Europe/Paris"),
         ZoneInfo("America/New_York")]
REF = datetime(2024, 3, 31, 1, 30, tzinfo=UTC)  # a DST switch night in Europe

LINES = [
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [a b=\"c\"] An application event",
    "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    "<13>1 2024-03-31T02:30:00.123456789 host app - - - no offset, DST gap in Paris",
    "<13>1 - host app - - - no stamp",
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    "<13>2024-01-01T00:00:00+01:00 host tag[12]: iso 3164",
    "Mar 31 02:30:00 host sshd[1]: yearless",
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "-" "curl/8"',
    "[Wed Jul 30 20:07:49.180019 2014] [suexec:notice] [pid 28262] AH01232: suEXEC mechanism enabled",
    "[01/Mar/2021:12:00:19 +0000] [mod:alert] [pid 4803:tid 3814] [client 1.2.3.4:24259] x",
    "2024/01/01 12:00:00 [error] 123#0: *1 open() failed, client: 1.2.3.4, server: x",
    "2009/11/10 23:00:00.123456 main.go:12: hello",
    "[31-Jul-2014 02:46:33 Europe/Paris] PHP Fatal error:  boom",
    "27066:M 30 Jul 2019 20:22:18.877 * Ready",
    "[27066] 30 Jul 20:22:18.877 # old redis",
    "1:signal-handler (1564514538) Received SIGTERM",
    '{"ts": 1700000000.25, "level": "info", "msg": "epoch"}',
    '{"time": "2024-01-01T00:00:00.5+01:00", "msg": "iso"}',
    '{"time": "Mon, 01 Jan 2024 10:00:00 PST", "msg": "dateutil"}',
    '{"msg": "no time"}',
    "[1, 2]",
    'ts=2024-03-31T02:30:00 level=warn msg="logfmt"',
    "ERROR:root:default python",
    "2024-03-31 02:30:00,123 - app.mod - WARNING - asctime",
    "2024-01-01 12:00:00,123 ERROR [main] com.example.Cls - log4j",
    "17/06/09 20:10:40 INFO spark.SparkContext: spark",
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: hdfs",
    "I0101 00:00:00.000000 1 f.go:1] klog",
    "E20240101 00:00:00.000001 7 g.cc:9] glog",
    "03-17 16:13:38.811  1702  2395 D WindowManager: logcat",
    "2024-02-02T02:02:02.5Z plain text after a stamp",
    "nothing to see",
    "",
]


def _same(line: str | bytes, **kw) -> None:
    full = parsers.parse(line, **kw)
    lean = parsers.parse(line, want_datetime=False, **kw)
    assert "@timestamp" not in lean
    full.pop("@timestamp", None)
    assert lean == full, line


@pytest.mark.parametrize("tz", ZONES, ids=str)
@pytest.mark.parametrize("line", LINES)
def test_every_format_same_fields_and_ns(line, tz):
    _same(line, tz=tz)
    _same(line, tz=tz, source_time=REF)


def test_timestamp_ns_kept_and_datetime_dropped():
    out = parsers.parse(LINES[0], want_datetime=False)
    assert out["logship.timestamp_ns"] == 1065910455003000000 and "@timestamp" not in out


def test_hinted_and_broken_lines_same():
    for hint in ("syslog", "syslog.rfc3164", "json", "nginx.access", "unknown"):
        for line in LINES[:8]:
            _same(line, hint=hint, source_time=REF)
    _same("<13>1 2024-13-01T00:00:00Z h a - - - bad month", source_time=REF)


prefixes = st.sampled_from([
    "<165>1 2003-10-11T22:14:15.003Z ", "<13>Jan  1 00:00:00 ", "2024-01-01 00:00:00,000 ", '{"ts": ',
    '{"time": "2024-01-01T00:00:00', "ts=2024-01-01T00:00:00", "I0101 00:00:00.000000 1 f.go:1] ",
    "1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"", "[01-Jan-2024 00:00:00] ", "1:M 01 Jan 00:00:00.000 * ",
    "2024/01/01 00:00:00 [error] 1#1: ", "17/06/09 20:10:40 INFO a.B: ", "03-17 16:13:38.811  1  2 D t: ", ""])


@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefixes, st.text(max_size=60), st.sampled_from(ZONES), st.sampled_from([None, REF]))
def test_random_lines_same(prefix, tail, tz, source_time):
    _same(prefix + tail, tz=tz, source_time=source_time)


# ---- the builders on their own, over edge and impossible values


@settings(max_examples=examples(3000), deadline=None)
@given(st.integers(-1, 10001), st.integers(-1, 13), st.integers(-1, 32), st.integers(-1, 25), st.integers(-1, 61),
       st.integers(-1, 61), st.integers(-1, 1_000_000_000), st.sampled_from(ZONES))
def test_build_ns_equals_datetime_arithmetic(y, mo, d, h, mi, s, ns, tz):
    """build()'s arithmetic against the datetime library (leap second folded onto :59.999999999)."""
    got = timestamps.build(y, mo, d, h, mi, s, ns, tz)
    try:
        leap = s == 60
        ref = datetime(y, mo, d, h, mi, 59 if leap else s, tzinfo=tz)
        want = (ref - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
        if not leap and not 0 <= ns < 1_000_000_000:  # a leap second is :59.999999999 whatever ns says
            raise ValueError
        want += 999_999_999 if leap else ns
    except (ValueError, OverflowError):
        want = None
    assert got == want


@settings(max_examples=examples(2000), deadline=None)
@given(st.one_of(st.integers(-(10 ** 20), 10 ** 20), st.floats(allow_nan=True, allow_infinity=True)))
def test_from_epoch_within_datetime_range(value):
    ns = timestamps.from_epoch(value)
    if ns is not None:
        assert timestamps.MIN_NS <= ns <= timestamps.MAX_NS
        timestamps.to_datetime(ns)  # representable
