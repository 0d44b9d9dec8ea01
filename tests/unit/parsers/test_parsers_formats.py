"""Hand-written lines for every application format."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import parsers

UTC = timezone.utc
REF = datetime(2024, 8, 1, tzinfo=UTC)


def p(line, **kw):
    kw.setdefault("source_time", REF)
    return parsers.parse(line, **kw)


def test_access_common_and_combined():
    out = p('10.1.2.3 - alice [05/Feb/2023:10:11:12 +0100] "POST /api/v1/items?x=1 HTTP/1.1" 201 57')
    assert out["event.dataset"] == "apache.access"
    assert out["source.address"] == "10.1.2.3" and out["user.name"] == "alice"
    assert out["http.request.method"] == "POST" and out["url.original"] == "/api/v1/items?x=1"
    assert out["http.version"] == "1.1" and out["http.response.status_code"] == 201
    assert out["http.response.body.bytes"] == 57
    assert out["@timestamp"] == datetime(2023, 2, 5, 9, 11, 12, tzinfo=UTC)
    out = p('::1 - - [05/Feb/2023:10:11:12 +0000] "GET / HTTP/2.0" 304 - "https://ref.example/" "curl/8.1"')
    assert out["source.address"] == "::1" and "http.response.body.bytes" not in out
    assert out["http.request.referrer"] == "https://ref.example/" and out["user_agent.original"] == "curl/8.1"


def test_access_nginx_main_and_hint():
    line = '192.0.2.9 - - [05/Feb/2023:10:11:12 +0000] "GET /x HTTP/1.1" 200 5 "-" "ua" "203.0.113.1"'
    assert p(line)["event.dataset"] == "nginx.access"
    line2 = '192.0.2.9 - - [05/Feb/2023:10:11:12 +0000] "GET /x HTTP/1.1" 200 5 "-" "ua"'
    assert p(line2, hint="nginx.access")["event.dataset"] == "nginx.access"
    assert "http.request.referrer" not in p(line2)


def test_apache_error_24_and_22():
    out = p("[Tue Mar 05 14:01:02.345678 2024] [proxy:error] [pid 812:tid 140001] [client 198.51.100.4:5123] "
            "AH00957: connect to backend failed")
    assert out["event.dataset"] == "apache.error"
    assert out["log.level"] == "error" and out["apache.error.module"] == "proxy"
    assert out["process.pid"] == 812 and out["process.thread.id"] == 140001
    assert out["source.address"] == "198.51.100.4" and out["source.port"] == 5123
    assert out["message"] == "AH00957: connect to backend failed"
    assert out["@timestamp"] == datetime(2024, 3, 5, 14, 1, 2, 345678, tzinfo=UTC)
    out = p("[Fri Jan 12 01:02:03 2007] [warn] child process 7 still did not exit")
    assert out["log.level"] == "warning" and out["message"] == "child process 7 still did not exit"


def test_nginx_error_context():
    out = p('2024/02/03 04:05:06 [crit] 77#78: *9 connect() failed (111), client: 203.0.113.5, '
            'server: shop, request: "GET /cart HTTP/1.1", upstream: "http://10.0.0.2:80/cart", host: "shop.example"')
    assert out["event.dataset"] == "nginx.error"
    assert out["log.level"] == "critical"
    assert out["process.pid"] == 77 and out["process.thread.id"] == 78 and out["nginx.error.connection_id"] == 9
    assert out["message"] == "connect() failed (111)"
    assert out["source.address"] == "203.0.113.5" and out["url.original"] == "/cart"
    assert out["nginx.error.upstream"] == "http://10.0.0.2:80/cart" and out["url.domain"] == "shop.example"


@pytest.mark.parametrize("line, level, msg, tzoff", [
    ("[02-Mar-2024 10:00:00] Database error", "error", "Database error", 0),
    ("[02-Mar-2024 10:00:00 UTC] PHP Warning:  Undefined variable $x", "warning", "Undefined variable $x", 0),
    ("[02-Mar-2024 10:00:00 Europe/Berlin] PHP Fatal error:  Out of memory", "critical", "Out of memory", 1),
    ("[02-Mar-2024 10:00:00 UTC] PHP Notice:  Something", "notice", "Something", 0),
])
def test_php(line, level, msg, tzoff):
    out = p(line)
    assert out["event.dataset"] == "php.error"
    assert out["log.level"] == level and out["message"] == msg
    assert out["@timestamp"] == datetime(2024, 3, 2, 10, tzinfo=UTC) - timedelta(hours=tzoff)


@pytest.mark.parametrize("line, level, pid, role", [
    ("4242:M 12 Jun 2023 01:02:03.456 * DB loaded from disk", "notice", 4242, "master"),
    ("4242:S 12 Jun 01:02:03.456 # Connection lost", "warning", 4242, "slave"),
    ("[99] 12 Jun 01:02:03.456 - Accepted client", "debug", 99, None),
    ("12 Jun 01:02:03 . keys in db", "debug", None, None),
])
def test_redis(line, level, pid, role):
    out = p(line)
    assert out["event.dataset"] == "redis.log"
    assert out["log.level"] == level
    assert out.get("process.pid") == pid and out.get("redis.log.role") == role
    assert out["@timestamp"].month == 6 and out["@timestamp"].day == 12


def test_json_lines():
    out = p('{"ts": 1700000000123, "lvl": "WARN", "msg": "slow query", "db": {"ms": 812, "q": {"a": {"b": 1}}}}')
    assert out["event.dataset"] == "json"
    assert out["message"] == "slow query" and out["log.level"] == "warning"
    assert out["logship.timestamp_ns"] == 1700000000123 * 10**6
    assert out["json.db.ms"] == 812
    assert out["json.db.q.a"] == '{"b": 1}'  # depth bound: deeper objects kept as JSON text
    assert out["event.original"].startswith('{"ts"')
    out = p('{"@timestamp": "2024-01-01T00:00:00.5+01:00", "log.level": "error", "message": "x", '
            '"caller": "svc/h.go:42"}')
    assert out["@timestamp"] == datetime(2023, 12, 31, 23, 0, 0, 500000, tzinfo=UTC)
    assert out["log.origin.file.name"] == "svc/h.go" and out["log.origin.file.line"] == 42
    out = p('{"level": 50, "time": "2024-01-01T00:00:00Z", "a": 1}')
    assert out["log.level"] == "error" and out["message"].startswith("{") and "event.original" not in out


def test_json_bounds_and_errors():
    many = "{" + ", ".join(f'"k{i}": {i}' for i in range(100)) + "}"
    out = p(many)
    assert sum(k.startswith("json.") for k in out) == 64 and out["logship.dropped_keys"] == 36
    out = p('{"msg": "trunc')
    assert out["event.dataset"] == "json" and out["logship.parse_error"].startswith("json:")
    assert out["message"] == '{"msg": "trunc'


def test_logfmt():
    out = p('time=2024-04-01T10:00:00Z level=error msg="disk \\"sda\\" full" component=storage retry')
    assert out["event.dataset"] == "logfmt"
    assert out["message"] == 'disk "sda" full' and out["log.level"] == "error"
    assert out["logfmt.component"] == "storage" and out["logfmt.retry"] is True
    assert out["@timestamp"] == datetime(2024, 4, 1, 10, tzinfo=UTC)
    assert p("note=this is plain prose with one equals")["event.dataset"] == "unknown"


def test_python_logging():
    out = p("WARNING:urllib3.connectionpool:Retrying (Retry(total=2))")
    assert out["event.dataset"] == "python.logging"
    assert out["log.level"] == "warning" and out["log.logger"] == "urllib3.connectionpool"
    assert out["message"] == "Retrying (Retry(total=2))" and out["@timestamp"] == REF
    out = p("2024-05-06 07:08:09,010 - worker.jobs - ERROR - job 7 crashed")
    assert out["log.level"] == "error" and out["log.logger"] == "worker.jobs" and out["message"] == "job 7 crashed"
    assert out["@timestamp"] == datetime(2024, 5, 6, 7, 8, 9, 10000, tzinfo=UTC)


def test_go_log():
    out = p("2023/11/10 23:00:00.123456 server.go:88: listen failed: address in use")
    assert out["event.dataset"] == "go.log"
    assert out["log.origin.file.name"] == "server.go" and out["log.origin.file.line"] == 88
    assert out["message"] == "listen failed: address in use"
    assert out["logship.timestamp_ns"] % 10**9 == 123456000
    out = p("2023/11/10 23:00:00 starting")
    assert out["message"] == "starting" and "log.level" not in out


@pytest.mark.parametrize("line, level, thread, logger, msg", [
    ("2024-01-01 12:00:00,123 ERROR [main] com.acme.Billing - charge failed", "error", "main", "com.acme.Billing",
     "charge failed"),
    ("2024-01-01T12:00:00.123+01:00  WARN 4242 --- [nio-8080-exec-1] o.s.w.s.PageNotFound : no mapping", "warning",
     "nio-8080-exec-1", "o.s.w.s.PageNotFound", "no mapping"),
    ("2024-01-01 12:00:00.123 [pool-2] INFO  c.a.Worker - started", "info", "pool-2", "c.a.Worker", "started"),
    ("2024-01-01 12:00:00,123 DEBUG something plain", "debug", None, None, "something plain"),
])
def test_log4j(line, level, thread, logger, msg):
    out = p(line)
    assert out["event.dataset"] == "log4j"
    assert out["log.level"] == level and out.get("process.thread.name") == thread
    assert out.get("log.logger") == logger and out["message"] == msg


def test_klog_and_glog():
    out = p("W0731 08:09:10.111222    4321 reflector.go:324] watch closed", source_time=REF)
    assert out["event.dataset"] == "klog" and out["log.level"] == "warning"
    assert out["process.thread.id"] == 4321
    assert out["log.origin.file.name"] == "reflector.go" and out["log.origin.file.line"] == 324
    assert out["@timestamp"] == datetime(2024, 7, 31, 8, 9, 10, 111222, tzinfo=UTC)
    out = p("F20200101 00:00:00.000001 1 main.cc:5] boom")
    assert out["log.level"] == "critical" and out["@timestamp"].year == 2020


def test_unknown_keyword_levels():
    cases = {"Something ERROR happened": "error", "an Error occurred": "error", "err: bad": "error",
             "FATAL: no disk": "critical", "panic: nil map": "emergency", "WARN low memory": "warning",
             "warning: deprecated": "warning", "all good": None, "stderr is fine": None,
             "errors_total is 3": None}
    for line, level in cases.items():
        out = p(line)
        assert out["event.dataset"] == "unknown", line
        assert out.get("log.level") == level, line
        assert out["message"] == line


def test_leading_iso_stamp_then_text_is_generic():
    out = p("2024-02-02T02:02:02.5Z just text")
    assert out["event.dataset"] == "generic" and out["@timestamp"] == datetime(2024, 2, 2, 2, 2, 2, 500000, tzinfo=UTC)
    assert out["message"] == "just text" and out["event.original"] == "2024-02-02T02:02:02.5Z just text"


def test_bad_input_never_raises():
    for raw in (b"\xff\xfe\x00\x01", b"<13>1 - - - - - - \xc3", "\x00\x01\x02", "lone \ud800 surrogate",
                b"<" * 10, b"{" * 5000, b"[" + b"a" * 100, b"x" * (1 << 20), b"<13>1 " + b"9" * 100000):
        out = parsers.parse(raw)
        assert isinstance(out["message"], str)
        out["message"].encode("utf-8")  # valid text


def test_trailing_newline_and_crlf_dropped():
    assert p("hello\r\n")["message"] == "hello"
    assert p(b"hello\n")["message"] == "hello"
