"""AWS ALB access logs (aws.elb) and JSON lines that are arrays or scalars."""

from __future__ import annotations

from datetime import datetime, timezone

import parsers

UTC = timezone.utc
ARN = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/web/0123456789abcdef"
FULL = (
    'https 2024-05-06T07:08:09.123456Z app/front/abc123 203.0.113.7:51234 10.1.2.3:8080 0.001 0.020 0.000 '
    '201 201 120 4096 "POST https://shop.example.org:443/cart?id=7 HTTP/2.0" "Mozilla/5.0 (X11) Test" '
    'TLS_AES_128_GCM_SHA256 TLSv1.3 ' + ARN + ' "Root=1-6638a0b9-0123456789abcdef01234567" "shop.example.org" '
    '"arn:aws:acm:eu-west-1:111122223333:certificate/aaaa" 3 2024-05-06T07:08:09.100000Z "waf,forward" "-" "-" '
    '"10.1.2.3:8080 10.1.2.4:8080" "201 503" "-" "-" TID_0123abcd'
)


def test_alb_full_line_fields():
    out = parsers.parse(FULL)
    assert out["event.dataset"] == "aws.elb" and out["message"] == FULL and "event.original" not in out
    assert out["@timestamp"] == datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert out["logship.timestamp_ns"] == 1714979289123456000
    assert out["aws.elb.type"] == "https" and out["aws.elb.name"] == "app/front/abc123"
    assert (out["source.address"], out["source.port"]) == ("203.0.113.7", 51234)
    assert (out["aws.elb.backend.ip"], out["aws.elb.backend.port"]) == ("10.1.2.3", "8080")
    assert out["aws.elb.request_processing_time.sec"] == 0.001
    assert out["aws.elb.backend_processing_time.sec"] == 0.020
    assert out["aws.elb.response_processing_time.sec"] == 0.0
    assert out["http.response.status_code"] == 201 and out["aws.elb.backend.http.response.status_code"] == 201
    assert out["http.request.body.bytes"] == 120 and out["http.response.body.bytes"] == 4096
    assert out["http.request.method"] == "POST" and out["http.version"] == "2.0"
    assert out["url.original"] == "https://shop.example.org:443/cart?id=7"
    assert out["user_agent.original"] == "Mozilla/5.0 (X11) Test"
    assert out["aws.elb.ssl_cipher"] == "TLS_AES_128_GCM_SHA256" and out["aws.elb.ssl_protocol"] == "TLSv1.3"
    assert out["aws.elb.target_group.arn"] == ARN
    assert out["aws.elb.trace_id"] == out["trace.id"] == "Root=1-6638a0b9-0123456789abcdef01234567"
    assert out["url.domain"] == "shop.example.org"
    assert out["aws.elb.chosen_cert.arn"] == "arn:aws:acm:eu-west-1:111122223333:certificate/aaaa"
    assert out["aws.elb.matched_rule_priority"] == "3"
    assert out["event.start"] == "2024-05-06T07:08:09.100000Z"
    assert out["aws.elb.action_executed"] == ["waf", "forward"]
    assert out["aws.elb.target_port"] == ["10.1.2.3:8080", "10.1.2.4:8080"]
    assert out["aws.elb.target_status_code"] == ["201", "503"]
    assert out["aws.elb.conn_trace_id"] == "TID_0123abcd"
    for absent in ("aws.elb.redirect_url", "aws.elb.error.reason", "aws.elb.classification"):
        assert absent not in out


def test_alb_rejected_request_dashes_and_minus_one_times():
    line = ('http 2024-05-06T07:08:09.000001Z app/front/abc123 [2001:db8::5]:443 - -1 -1 -1 400 - 0 272 '
            '"- http://front.example.org:80- -" "-" - - - "-" "-" "-" - 2024-05-06T07:08:08.900000Z "-" "-" "-" '
            '"-" "-" "-" "-"')
    out = parsers.parse(line)
    assert out["event.dataset"] == "aws.elb"
    assert (out["source.address"], out["source.port"]) == ("[2001:db8::5]", 443)
    assert out["http.response.status_code"] == 400 and out["http.response.body.bytes"] == 272
    assert out["url.original"] == "http://front.example.org:80-"
    for absent in ("aws.elb.backend.ip", "aws.elb.request_processing_time.sec", "http.request.method",
                   "http.version", "user_agent.original", "aws.elb.backend.http.response.status_code",
                   "aws.elb.trace_id", "aws.elb.target_port", "aws.elb.action_executed", "aws.elb.conn_trace_id"):
        assert absent not in out, absent


def test_alb_short_old_line_and_trailing_new_fields():
    old = ('ws 2024-05-06T07:08:09Z app/front/abc123 198.51.100.9:40000 10.0.0.9:80 0.000 0.001 0.000 101 101 '
           '300 500 "GET http://10.0.0.30:80/socket HTTP/1.1" "-"')
    out = parsers.parse(old)
    assert out["event.dataset"] == "aws.elb" and out["http.response.status_code"] == 101
    assert "aws.elb.ssl_cipher" not in out and "user_agent.original" not in out
    out = parsers.parse(FULL + ' "extra" "-" 42')
    assert out["aws.elb.conn_trace_id"] == "TID_0123abcd" and out["event.dataset"] == "aws.elb"


def test_alb_lookalikes_are_not_alb():
    for line in ("http request failed: timeout", "https 2024-05-06T07:08:09Z only a few fields here",
                 "h2 not-a-time app/x 1.2.3.4:5 - 0 0 0 200 200 1 1 \"GET / HTTP/2.0\" \"-\""):
        assert parsers.parse(line)["event.dataset"] != "aws.elb"
    assert parsers.parse(FULL, hint="aws.elb")["event.dataset"] == "aws.elb"
    assert "aws.elb" in parsers.DATASETS


def test_json_arrays_and_scalars_kept_as_message():
    for line in ('[1, "two", {"three": 3}]', '"a quoted string"', "42", "-3.5e2", "true", "false", "null", "[]"):
        out = parsers.parse(line, source_time=datetime(2024, 1, 2, tzinfo=UTC))
        assert out["event.dataset"] == "json", line
        assert out["message"] == line and "logship.parse_error" not in out
        assert out["@timestamp"] == datetime(2024, 1, 2, tzinfo=UTC)
        assert out == parsers.parse(line, hint="json", source_time=datetime(2024, 1, 2, tzinfo=UTC))
    assert parsers.parse('["error", "disk full"]')["log.level"] == "error"


def test_json_lookalikes_stay_what_they_were():
    assert parsers.parse("[31-Jul-2014 02:46:33 UTC] PHP Warning:  x]")["event.dataset"] == "php.error"
    assert parsers.parse("123 apples")["event.dataset"] == "unknown"
    assert parsers.parse("true story")["event.dataset"] == "unknown"
    broken = parsers.parse("[1, 2", hint="json")
    assert broken["event.dataset"] == "json" and broken["logship.parse_error"].startswith("json:")
