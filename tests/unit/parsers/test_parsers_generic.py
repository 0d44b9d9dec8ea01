"""The generic header reader: real-world "timestamp + level + message" layouts no
specific format claims (hand-written lines in the shapes of the systems named in
issue 18; no corpus data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import parsers

REF = datetime(2020, 1, 1, tzinfo=UTC)

# line, expected @timestamp, level (None: none), message, logger (None: none)
CASES = [
    ("2019-11-07 08:09:10,123 disk check finished", datetime(2019, 11, 7, 8, 9, 10, 123000, tzinfo=UTC), None,
     "disk check finished", None),
    ("20191107-08:09:10:123|StepCounter|30002312|onStepsChanged 3579",
     datetime(2019, 11, 7, 8, 9, 10, 123000, tzinfo=UTC), None, "onStepsChanged 3579", "StepCounter"),
    ("20191107-8:9:1:5|Comp|12|a|b|c", datetime(2019, 11, 7, 8, 9, 1, 5000, tzinfo=UTC), None, "a|b|c", "Comp"),
    ("[03.14 09:26:53] firefox.exe - example.org:443 open through proxy p.example.org:8080 HTTPS",
     datetime(2019, 3, 14, 9, 26, 53, tzinfo=UTC), None, "example.org:443 open through proxy p.example.org:8080 HTTPS",
     "firefox.exe"),
    (("- 1302012428 2011.04.05 R01-M1-N2-C:J03-U01 2011-04-05-06.07.08.123456 R01-M1-N2-C:J03-U01 RAS KERNEL INFO "
      "3 ddr error(s) detected and corrected"), datetime(2011, 4, 5, 6, 7, 8, 123456, tzinfo=UTC), "info",
     "3 ddr error(s) detected and corrected", None),
    ("KERNMC 1302012428 2011.04.05 R01-M1 2011-04-05-06.07.08.123456 R01-M1 RAS KERNEL FATAL machine check",
     datetime(2011, 4, 5, 6, 7, 8, 123456, tzinfo=UTC), "critical", "machine check", None),
    ("2016-09-28 04:30:30, Info                  CBS    Loaded stack v6.1 Warning: none",
     datetime(2016, 9, 28, 4, 30, 30, tzinfo=UTC), "info", "Loaded stack v6.1 Warning: none", "CBS"),
    ("- 1131566461 2005.11.09 node12 Nov 9 12:01:01 node12/node12 crond(pam_unix)[2915]: session closed for root",
     datetime(2005, 11, 9, 12, 1, 1, tzinfo=UTC), None, "session closed for root", "crond(pam_unix)[2915]"),
    (("api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.api.wsgi.server [req-1 a b - - -] "
      '10.0.0.1 "GET /v2 HTTP/1.1" status: 200'), datetime(2017, 5, 16, 0, 0, 0, 8000, tzinfo=UTC), "info",
     '10.0.0.1 "GET /v2 HTTP/1.1" status: 200', "nova.api.wsgi.server"),
    ("134681 node-246 unix.hw 1077804742 1 Component State Change: Component alt0 is unavailable",
     datetime(2004, 2, 26, 14, 12, 22, tzinfo=UTC), None, "Component State Change: Component alt0 is unavailable",
     None),
    ("2286759 full partition status 1061219795 -1 running", datetime(2003, 8, 18, 15, 16, 35, tzinfo=UTC), None,
     "running", None),
    ("I, [2019-11-07T08:09:10.123456 #1234]  INFO -- : Completed 200 OK",
     datetime(2019, 11, 7, 8, 9, 10, 123456, tzinfo=UTC), "info", "Completed 200 OK", None),
    ("12:34:56.789 [main] DEBUG com.example.App - started", datetime(2019, 12, 31, 12, 34, 56, 789000, tzinfo=UTC),
     "debug", "started", "com.example.App"),
    ("Thu Nov 07 08:09:10 2019 [notice] child pid 12 exit", datetime(2019, 11, 7, 8, 9, 10, tzinfo=UTC), "notice",
     "child pid 12 exit", None),
    ("11/07/2019 08:09:10 PM ERROR: boom", datetime(2019, 11, 7, 20, 9, 10, tzinfo=UTC), "error", "boom", None),
    ("07-Nov-2019 08:09:10.123 SEVERE [main] org.apache.catalina.Cls.start Server failed",
     datetime(2019, 11, 7, 8, 9, 10, 123000, tzinfo=UTC), "critical", "Server failed", "org.apache.catalina.Cls.start"),
    ("[2019-11-07 08:09:10] production.ERROR: Something broke {\"a\":1}", datetime(2019, 11, 7, 8, 9, 10, tzinfo=UTC),
     "error", "Something broke {\"a\":1}", "production"),
    ("[2017-08-04 10:48:20,748] WARN No meta.properties file (kafka.server.Checkpoint)",
     datetime(2017, 8, 4, 10, 48, 20, 748000, tzinfo=UTC), "warning", "No meta.properties file",
     "kafka.server.Checkpoint"),
    ("2019-11-07T08:09:10.5+02:00 [warn] low disk", datetime(2019, 11, 7, 6, 9, 10, 500000, tzinfo=UTC), "warning",
     "low disk", None),
    ("2019.11.07 08:09:10 -0500 wrn: retrying", datetime(2019, 11, 7, 13, 9, 10, tzinfo=UTC), "warning", "retrying",
     None),
    ("19-11-07 08:09:10 E [db] query failed", datetime(2019, 11, 7, 8, 9, 10, tzinfo=UTC), "error", "query failed",
     None),
]


@pytest.mark.parametrize("line, ts, level, msg, logger", CASES, ids=[c[0][:40] for c in CASES])
def test_generic_layouts(line, ts, level, msg, logger):
    out = parsers.parse(line, source_time=REF, tz=UTC)
    assert out["@timestamp"] == ts, out
    assert out.get("log.level") == level, out
    assert out["message"] == msg, out
    assert out.get("log.logger") == logger, out
    assert out["logship.timestamp_ns"] == (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def test_explicit_level_beats_keywords():
    out = parsers.parse("2011-04-05-06.07.08.123456 R1 RAS KERNEL INFO instruction cache parity error corrected")
    assert out["log.level"] == "info"
    out = parsers.parse("2016-09-28 04:30:30, Info     CBS    Warning: unrecognized packageExtended attribute")
    assert out["log.level"] == "info"
    out = parsers.parse("2016-09-28 04:30:30 something failed with an error")  # no header level: keywords
    assert out["log.level"] == "error" and out["message"] == "something failed with an error"


@pytest.mark.parametrize("line", [
    "Backup finished 2024-01-01 12:00:00 ok",  # a date inside prose is not a header
    "Connecting to db at 10.11.10.1:5432",
    "user logged in: alice",
    "err: bad",
    "",
])
def test_prose_stays_unknown(line):
    out = parsers.parse(line, source_time=REF)
    assert out["event.dataset"] == "unknown" and out["message"] == line


def test_year_of_a_yearless_stamp_from_the_records_epoch_field():
    out = parsers.parse("- 1131566461 2005.11.09 n1 Nov 9 12:01:01 n1/n1 sshd[1]: x", source_time=REF)
    assert out["@timestamp"].year == 2005


def test_levels_need_something_after_them():
    out = parsers.parse("2556843 gige5 gige temperature 1072878243 1 warning")
    assert out["message"] == "warning" and out["log.level"] == "warning"


def test_stamp_zone_kept_on_timestamp():
    out = parsers.parse("2019-11-07T08:09:10+05:30 INFO x.y: ready")
    assert out["@timestamp"].utcoffset() == timedelta(hours=5, minutes=30)
