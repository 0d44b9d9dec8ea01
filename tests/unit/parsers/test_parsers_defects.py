"""Issue 18's defects, one test each (inputs written here, no corpus data)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

import parsers


def test_logcat_runs_of_blanks_are_linear():
    line = b"01-01 00:00:00.000 1 1 I " + b" " * 80000 + b"x"
    t0 = time.perf_counter()
    parsers.parse(line)
    assert time.perf_counter() - t0 < 0.5  # was 15 s (regex "(.*?) *: ")
    out = parsers.parse("03-17 16:13:38.811  1702  2395 D WindowManager  : a: b")
    assert out["log.logger"] == "WindowManager" and out["message"] == "a: b"


@pytest.mark.parametrize("line, dataset", [
    ("2024-01-01T00:00:00+2400 hello\n", None),
    ("2024-01-01 00:00:00,123+23:60 INFO [main] a.b.C - m\n", None),
    ("2024-01-01 00:00:00,123+9999 - app - INFO - m\n", None),
    ("<13>2024-01-01T00:00:00+9999 host app: m\n", "syslog.rfc3164"),
    ('{"time": "2024-01-01T00:00:00+2400", "msg": "m", "a": 1}\n', "json"),
    ("time=2024-01-01T00:00:00+23:60 msg=m a=1\n", "logfmt"),
])
def test_out_of_range_offsets_are_no_stamp_not_an_error(line, dataset):
    out = parsers.parse(line)
    assert "logship.parse_error" not in out, out
    assert "@timestamp" not in out and "logship.timestamp_ns" not in out
    assert not out["message"].endswith("\n")
    if dataset is not None:
        assert out["event.dataset"] == dataset
    if dataset in ("json", "logfmt"):
        assert out["message"] == "m" and out.get(f"{dataset}.a") in (1, "1")


@pytest.mark.parametrize("text", ["2024-01-01T00:00:00+01390212", "2024-01-01T00:00:00+01:39:02.12"])
def test_offsets_with_seconds_never_disagree(text):
    for line in (f'{{"time": "{text}", "msg": "m"}}', f"time={text} msg=m", f"{text} INFO x.y: m"):
        out = parsers.parse(line)
        if "@timestamp" in out:  # @timestamp is built from logship.timestamp_ns: the same instant
            us = (out["@timestamp"] - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            assert us == out["logship.timestamp_ns"] // 1000


@pytest.mark.parametrize("line", [
    "03-17 16:13:38.811  {n}  2395 D WindowManager: m",
    "081109 203615 {n} INFO dfs.DataNode: m",
    '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 {n}',
    "2024/01/01 12:00:00 [error] {n}#0: *{n} open() failed",
    "27066:M 30 Jul 2019 20:22:18.877 * Ready {n}", "{n}:M 30 Jul 2019 20:22:18.877 * Ready",
    "{n}:signal-handler (1564514538) Received SIGTERM",
    "<13>Oct 11 22:14:15 host app[{n}]: m", "<165>1 2003-08-24T05:14:15Z host app {n} - - m",
    "[Wed Jul 30 20:07:49.180019 2014] [mod:notice] [pid {n}:tid {n}] [client 1.2.3.4:{n}] m",
    "2009/11/10 23:00:00 main.go:{n}: hello", '{{"ts": {n}, "msg": "m"}}', "ts={n} msg=m",
    "http 2018-07-02T22:23:00.186641Z app/my-lb 192.168.1.1:{n} 10.0.0.1:80 0.0 0.001 0.0 200 200 0 57",
])
def test_huge_numbers_never_reach_int(line):
    for n in ("9" * 5000, "1" + "0" * 4400):
        out = parsers.parse(line.format(n=n))
        assert not out.get("logship.parse_error", "").startswith("internal"), out.get("logship.parse_error")
        assert all(not isinstance(v, int) or v.bit_length() < 64 for v in out.values())


def test_logfmt_reports_dropped_keys():
    out = parsers.parse(" ".join(f"k{i}=v{i}" for i in range(70)))
    assert out["logship.dropped_keys"] == 6 and "logfmt.k63" in out and "logfmt.k64" not in out


def test_syslog_handler_trailing_nul_dropped():
    out = parsers.parse(b"<14>hello from python\x00", hint="syslog")
    assert out["message"] == "hello from python"
    assert parsers.parse("plain\x00")["message"] == "plain"


@pytest.mark.parametrize("client, ip", [("203.0.113.5", "203.0.113.5"), ("::1", "::1"), ("2001:db8::2", "2001:db8::2"),
                                        ("www.example.com", None), ("1.2.3.999", None), ('"10.0.0.1, 10.0.0.2"',
                                                                                         "10.0.0.1")])
def test_access_logs_set_source_ip(client, ip):
    out = parsers.parse(f'{client} - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326')
    assert out["event.dataset"] in ("apache.access", "nginx.access")
    assert out.get("source.ip") == ip and out["source.address"] == client.strip('"').split(",")[0]
