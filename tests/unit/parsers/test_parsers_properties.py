"""Property tests: parse() never raises, output invariants, RFC 5424 round-trip."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import parsers
from parsers.priority import FACILITY_NAMES
from tests.sizing import cases, examples

UTC = timezone.utc
LEVELS = {"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug", "trace"}
TYPES = {
    "message": str, "event.dataset": str, "logship.timestamp_ns": int, "log.level": str,
    "log.syslog.priority": int, "log.syslog.facility.code": int, "log.syslog.severity.code": int,
    "process.pid": int, "http.response.status_code": int, "log.origin.file.line": int,
    "logship.parse_error": str, "event.original": str,
}


def check_invariants(out: dict) -> None:
    assert isinstance(out, dict)
    assert isinstance(out["message"], str) and isinstance(out["event.dataset"], str)
    out["message"].encode("utf-8")
    for k, v in out.items():
        assert isinstance(k, str)
        if k in TYPES:
            assert isinstance(v, TYPES[k]), (k, v)
    assert ("@timestamp" in out) == ("logship.timestamp_ns" in out)
    if "@timestamp" in out:
        ts = out["@timestamp"]
        assert isinstance(ts, datetime) and ts.utcoffset() is not None
        assert abs(out["logship.timestamp_ns"] // 1000 - round(ts.timestamp() * 1e6)) <= 1
    if "log.level" in out:
        assert out["log.level"] in LEVELS


prefixes = st.sampled_from(["", "<13>", "<13>1 ", "<165>1 2003-10-11T22:14:15.003Z ", "{", "[", '{"msg": ',
                            "2024-01-01 00:00:00,000 ", "Jan  1 00:00:00 ", "I0101 00:00:00.000000 1 f.go:1] ",
                            "1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"", "level=", "[01-Jan-2024 00:00:00] ",
                            "1:M 01 Jan 00:00:00.000 * ", "2024/01/01 00:00:00 [error] 1#1: "])


@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefixes, st.binary(max_size=200))
def test_parse_never_raises_bytes(prefix, tail):
    check_invariants(parsers.parse(prefix.encode() + tail))


@settings(max_examples=examples(1500), deadline=None)
@given(prefixes, st.text(max_size=200))
def test_parse_never_raises_text(prefix, tail):
    check_invariants(parsers.parse(prefix + tail, source_time=datetime(2024, 1, 1, tzinfo=UTC)))


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=300), st.sampled_from([None, "syslog", "json", "logfmt", "nginx.access", "klog", "bogus"]))
def test_hints_never_raise(raw, hint):
    check_invariants(parsers.parse(raw, hint=hint))
    parsers.validate_rfc5424(raw)


# ---- RFC 5424 round-trip: build valid messages, parse them back field-exact

PRINT = "".join(chr(c) for c in range(33, 127))
NAME = "".join(c for c in PRINT if c not in '= ]"')
name = st.text(NAME, min_size=1, max_size=32)
field = lambda n: st.one_of(st.none(), st.text(PRINT, min_size=1, max_size=n).filter(lambda s: s != "-"))  # noqa: E731
param_value = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)


def esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


@st.composite
def rfc5424_message(draw):
    pri = draw(st.integers(0, 191))
    version = draw(st.integers(1, 999))
    ts = draw(st.one_of(st.none(), st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1))))
    frac_digits = draw(st.integers(0, 6))
    off = draw(st.integers(-23 * 60 - 59, 23 * 60 + 59))
    host, app, procid, msgid = draw(field(255)), draw(field(48)), draw(field(128)), draw(field(32))
    sd = draw(st.dictionaries(name, st.dictionaries(name, param_value, max_size=3), max_size=3))
    # parse() drops one trailing line terminator (or NUL), so messages do not end with one
    msg = draw(st.one_of(st.none(), st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
                         .filter(lambda m: not m.endswith(("\r", "\n", "\x00")))))
    bom = draw(st.booleans())
    if ts is None:
        ts_text = "-"
    else:
        frac = f".{ts.microsecond:06d}"[: frac_digits + 1] if frac_digits else ""
        sign = "+" if off >= 0 else "-"
        ts_text = ts.strftime("%Y-%m-%dT%H:%M:%S") + frac + (
            "Z" if off == 0 else f"{sign}{abs(off) // 60:02d}:{abs(off) % 60:02d}")
    sd_text = "".join("[" + sid + "".join(f' {k}="{esc(v)}"' for k, v in params.items()) + "]"
                      for sid, params in sd.items()) or "-"
    parts = [f"<{pri}>{version}", ts_text, host or "-", app or "-", procid or "-", msgid or "-", sd_text]
    line = " ".join(parts)
    if msg is not None:
        line += " " + ("\ufeff" if bom else "") + msg
    return line, dict(pri=pri, version=version, ts=ts, frac_digits=frac_digits, off=off, host=host, app=app,
                      procid=procid, msgid=msgid, sd=sd, msg=msg or "")


@settings(max_examples=examples(1500), deadline=None)
@given(rfc5424_message())
def test_rfc5424_round_trip(case):
    line, f = case
    assert parsers.validate_rfc5424(line) is None, line
    out = parsers.parse(line.encode("utf-8"))
    check_invariants(out)
    assert out["event.dataset"] == "syslog.rfc5424"
    assert "logship.parse_error" not in out
    assert out["log.syslog.priority"] == f["pri"]
    assert out["log.syslog.facility.name"] == FACILITY_NAMES[f["pri"] // 8]
    assert out["log.syslog.severity.code"] == f["pri"] % 8
    assert out["log.syslog.version"] == f["version"]
    assert out.get("log.syslog.hostname") == f["host"]
    assert out.get("log.syslog.appname") == f["app"]
    assert out.get("log.syslog.procid") == f["procid"]
    assert out.get("log.syslog.msgid") == f["msgid"]
    assert (out.get("log.syslog.structured_data") or {}) == f["sd"]
    assert out["message"] == f["msg"]
    if f["ts"] is None:
        assert "@timestamp" not in out
    else:
        d = f["frac_digits"]
        us = f["ts"].microsecond // 10 ** (6 - d) * 10 ** (6 - d) if d else 0
        want = f["ts"].replace(microsecond=us, tzinfo=timezone(timedelta(minutes=f["off"])))
        assert out["@timestamp"] == want
        epoch_us = int((want - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
        assert out["logship.timestamp_ns"] == epoch_us * 1000


@pytest.mark.slow
def test_one_million_random_cases_never_raise():
    rng = random.Random(20240601)
    seeds = [b"<34>1 2003-10-11T22:14:15.003Z host app 1 ID [a b=\"c\"] msg", b"<13>Jan  1 00:00:00 h t[1]: m",
             b'{"level":"info","msg":"x","ts":1}', b"level=info msg=x", b"I0101 00:00:00.000000 1 f.go:1] m",
             b'1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
             b"2024-01-01 00:00:00,000 ERROR [t] a.B - m", b"[01-Jan-2024 00:00:00] PHP Warning:  x",
             b"1:M 01 Jan 00:00:00.000 * m", b"2024/01/01 00:00:00 [error] 1#1: *1 m, client: x"]
    alphabet = bytes(range(256))
    parse = parsers.parse
    for i in range(cases(1_000_000)):
        s = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(0, 4)):
            op = rng.random()
            pos = rng.randint(0, len(s))
            if op < 0.4:
                s[pos:pos] = bytes(rng.choices(alphabet, k=rng.randint(1, 3)))
            elif op < 0.8 and s:
                del s[pos:pos + rng.randint(1, 4)]
            else:
                s = s[:pos]
        out = parse(bytes(s))
        assert "message" in out
        if i % 100_000 == 0:
            check_invariants(out)
