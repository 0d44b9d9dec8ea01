"""Hand-written RFC 5424 / RFC 3164 / priority cases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import parsers
from parsers import validate_rfc5424
from parsers.priority import FACILITY_NAMES, PRI_FIELDS

UTC = timezone.utc


def test_rfc5424_full_header_and_sd_escapes():
    line = ('<86>1 2021-07-04T09:08:07.123456789+02:00 web-7 billing 4711 INV42 '
            '[req@123 id="a\\"b" path="c:\\\\x" br="\\]"][meta seq="9"] \ufeffcharged 3 cards')
    out = parsers.parse(line.encode())
    assert out["event.dataset"] == "syslog.rfc5424"
    assert out["log.syslog.priority"] == 86
    assert out["log.syslog.facility.code"] == 10 and out["log.syslog.facility.name"] == "authpriv"
    assert out["log.syslog.severity.code"] == 6 and out["log.level"] == "info"
    assert out["log.syslog.version"] == 1
    assert out["log.syslog.hostname"] == out["host.hostname"] == "web-7"
    assert out["log.syslog.appname"] == "billing"
    assert out["log.syslog.procid"] == "4711" and out["process.pid"] == 4711
    assert out["log.syslog.msgid"] == "INV42"
    assert out["log.syslog.structured_data"] == {"req@123": {"id": 'a"b', "path": "c:\\x", "br": "]"},
                                                 "meta": {"seq": "9"}}
    assert out["message"] == "charged 3 cards"
    assert out["event.original"] == line
    tz = timezone(timedelta(hours=2))
    assert out["@timestamp"] == datetime(2021, 7, 4, 9, 8, 7, 123456, tzinfo=tz)
    assert out["logship.timestamp_ns"] == int(datetime(2021, 7, 4, 7, 8, 7, tzinfo=UTC).timestamp()) * 10**9 + 123456789


def test_rfc5424_nil_values_use_source_time():
    st = datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
    out = parsers.parse("<13>1 - - - - - -", source_time=st)
    assert out["@timestamp"] == st
    assert out["logship.timestamp_ns"] == int(st.timestamp()) * 10**9 + 10_000
    for k in ("log.syslog.hostname", "log.syslog.appname", "log.syslog.procid", "log.syslog.msgid",
              "log.syslog.structured_data"):
        assert k not in out
    assert out["message"] == ""
    assert "@timestamp" not in parsers.parse("<13>1 - - - - - -")


def test_rfc5424_lenient_logspout_and_missing_sd():
    out = parsers.parse("<14>1 2024-01-02T03:04:05Z box app 12 - [] hello there")
    assert out["message"] == "hello there" and "log.syslog.structured_data" not in out
    out = parsers.parse("<14>1 2024-01-02T03:04:05Z box app 12 - hello there")
    assert out["message"] == "hello there"
    out = parsers.parse("<14>1 2024-01-02T03:04:05 box app 12 - - local time", tz=timezone(timedelta(hours=-5)))
    assert out["logship.timestamp_ns"] == int(datetime(2024, 1, 2, 8, 4, 5, tzinfo=UTC).timestamp()) * 10**9


def test_rfc5424_broken_sd_keeps_header_and_reports():
    out = parsers.parse('<14>1 2024-01-02T03:04:05Z box app 12 - [x a="unterminated')
    assert out["event.dataset"] == "syslog.rfc5424"
    assert out["log.syslog.appname"] == "app"
    assert out["logship.parse_error"].startswith("STRUCTURED-DATA")


def test_rfc5424_broken_header_is_message_only():
    out = parsers.parse("<14>1 2024-01-02T03:04")
    assert out["event.dataset"] == "syslog.rfc5424"
    assert out["message"] == "<14>1 2024-01-02T03:04"
    assert out["logship.parse_error"].startswith("TIMESTAMP")
    assert out["log.syslog.priority"] == 14


@pytest.mark.parametrize("line, reason", [
    ("<409>1 2016-01-15T00:00:00Z h p - - - m", "PRI: value 409 > 191 at offset 1"),
    ("<13>1 2016-01-15T00:00:00 h p - - - m", "TIMESTAMP: missing time-offset at offset 25"),
    ("<13>1 2016-01-15T00:00:00.1234567Z h p - - - m", "TIMESTAMP: TIME-SECFRAC has 7 digits (max 6) at offset 26"),
    ("<13>1 2019-02-29T00:00:00Z h p - - - m", "TIMESTAMP: day 29 out of range for 2019-02 at offset 14"),
    ("<013>1 - - - - - -", "PRI: leading zero at offset 1"),
    ("<13>0 - - - - - -", "VERSION: expected NONZERO-DIGIT, got '0' at offset 4"),
    ('<13>1 - - - - - [a b="c"', "STRUCTURED-DATA: unterminated SD-ELEMENT at offset 16"),
    ('<13>1 - - - - - [a b="c"][a d="e"]', "STRUCTURED-DATA: duplicate SD-ID 'a' at offset 26"),
    ('<13>1 - - - - - [a b="x]y"]', "STRUCTURED-DATA: unescaped ']' in PARAM-VALUE at offset 23"),
    ("<13>1 - - - - - -x", "MSG: expected SP before MSG, got 'x' at offset 17"),
    (b"<13>1 - - - - - - \xef\xbb\xbf\xff", "MSG: starts with BOM but is not valid UTF-8 at offset 21"),
    ("<13>1 - " + "h" * 256 + " - - - -", "HOSTNAME: 256 characters, longer than 255 at offset 8"),
    ("", "PRI: empty input at offset 0"),
])
def test_strict_validator_reasons(line, reason):
    assert validate_rfc5424(line) == reason


@pytest.mark.parametrize("line", [
    "<0>1 - - - - - -",
    "<191>999 2003-10-11T22:14:15.003Z h a p m [id@1 k=\"v\\\\\"] msg",
    "<13>1 2003-10-11T22:14:15.123456-07:00 - - - - - \ufeffünïcödé",
])
def test_strict_validator_accepts(line):
    assert validate_rfc5424(line) is None


def test_priority_tables():
    assert len(FACILITY_NAMES) == 24 and len(PRI_FIELDS) == 192
    assert FACILITY_NAMES[13] == "security" and FACILITY_NAMES[14] == "console"
    assert FACILITY_NAMES[15] == "solaris-cron" and FACILITY_NAMES[23] == "local7"
    assert PRI_FIELDS[0]["log.level"] == "emergency"
    assert PRI_FIELDS[191]["log.syslog.severity.name"] == "debug"


REF = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def test_rfc3164_with_pri_host_tag_pid():
    out = parsers.parse("<38>Mar  9 08:15:02 gate sshd[991]: session opened", source_time=REF)
    assert out["event.dataset"] == "syslog.rfc3164"
    assert out["log.syslog.priority"] == 38 and out["log.syslog.facility.name"] == "auth"
    assert out["log.syslog.hostname"] == "gate"
    assert out["log.syslog.appname"] == "sshd" and out["process.pid"] == 991
    assert out["message"] == "session opened"
    assert out["@timestamp"] == datetime(2024, 3, 9, 8, 15, 2, tzinfo=UTC)


def test_rfc3164_without_pri_or_host():
    out = parsers.parse("Mar  9 08:15:02 gate cron[5]: job done", source_time=REF)
    assert "log.syslog.priority" not in out
    assert out["log.syslog.appname"] == "cron"
    out = parsers.parse("<13>Mar  9 08:15:02 cron[5]: job done", source_time=REF, hint="syslog")
    assert "log.syslog.hostname" not in out and out["log.syslog.appname"] == "cron"


def test_rfc3164_tz_parameter():
    tz = timezone(timedelta(hours=9))
    out = parsers.parse("<13>Mar  9 08:15:02 h t: m", source_time=REF, tz=tz)
    assert out["@timestamp"] == datetime(2024, 3, 8, 23, 15, 2, tzinfo=UTC)  # @timestamp is UTC, the instant kept
    assert out["logship.timestamp_ns"] == int(datetime(2024, 3, 8, 23, 15, 2, tzinfo=UTC).timestamp()) * 10**9


@pytest.mark.parametrize("stamp, ref, year", [
    ("Dec 31 23:59:59", datetime(2025, 1, 1, 0, 0, 5, tzinfo=UTC), 2024),   # just before New Year
    ("Jan  1 00:00:03", datetime(2024, 12, 31, 23, 59, 50, tzinfo=UTC), 2025),  # sender clock slightly ahead
    ("Jun 15 10:00:00", datetime(2024, 6, 15, 9, 0, tzinfo=UTC), 2024),
    ("Jun 17 10:00:00", datetime(2024, 6, 15, 9, 0, tzinfo=UTC), 2023),     # > 1 day in the future: last year
])
def test_year_inference(stamp, ref, year):
    out = parsers.parse(f"<13>{stamp} h t: m", source_time=ref)
    assert out["@timestamp"].year == year


def test_hint_syslog_prefers_rfc5424_then_3164():
    assert parsers.parse("<13>1 - - - - - - x", hint="syslog")["event.dataset"] == "syslog.rfc5424"
    assert parsers.parse("<13>Jan  1 00:00:00 h t: x", hint="syslog",
                         source_time=REF)["event.dataset"] == "syslog.rfc3164"
