"""AWS Application Load Balancer access logs (``event.dataset`` ``aws.elb``)::

    type time elb client:port target:port request_processing_time
    target_processing_time response_processing_time elb_status_code
    target_status_code received_bytes sent_bytes "request" "user_agent"
    ssl_cipher ssl_protocol target_group_arn "trace_id" "domain_name"
    "chosen_cert_arn" matched_rule_priority request_creation_time
    "actions_executed" "redirect_url" "error_reason" "target:port_list"
    "target_status_code_list" "classification" "classification_reason"
    conn_trace_id [fields AWS may add later, ignored]

Field names follow Filebeat's aws ``elb`` fileset (``aws.elb.*`` plus ECS
``source.*``, ``http.*``, ``url.*``, ``user_agent.original``, ``trace.id``).
``-`` (and ``-1`` for the times) means absent.  ``message`` is the whole line.
Older lines that stop after any field from ``user_agent`` on are accepted.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from ..numbers import small_int
from ..timestamps import parse_iso

TYPES = ("http ", "https ", "h2 ", "grpcs ", "ws ", "wss ")
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)', re.DOTALL)
_MIN_FIELDS = 14  # through "user_agent"

# (index, key, kind) for the simple fields after "request"; kind: s = str, l = list
_TAIL = (
    (14, "aws.elb.ssl_cipher", "s"), (15, "aws.elb.ssl_protocol", "s"), (16, "aws.elb.target_group.arn", "s"),
    (18, "url.domain", "s"), (19, "aws.elb.chosen_cert.arn", "s"), (20, "aws.elb.matched_rule_priority", "s"),
    (21, "event.start", "s"), (22, "aws.elb.action_executed", ","), (23, "aws.elb.redirect_url", "s"),
    (24, "aws.elb.error.reason", "s"), (25, "aws.elb.target_port", " "), (26, "aws.elb.target_status_code", " "),
    (27, "aws.elb.classification", "s"), (28, "aws.elb.classification_reason", "s"),
    (29, "aws.elb.conn_trace_id", "s"),
)


def _host_port(value: str) -> tuple[str, int] | None:
    host, sep, port = value.rpartition(":")
    number = small_int(port)
    if not sep or not host or number is None:
        return None
    return host, number


def _seconds(value: str) -> float | None:
    if value in ("-", "-1"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


_int = small_int


def _request(out: dict[str, Any], request: str) -> None:
    """``METHOD URL HTTP/x.y``; ``-`` parts stay absent (malformed requests have them)."""
    parts = request.split(" ")
    if len(parts) != 3:
        if request != "-":
            out["url.original"] = request
        return
    method, url, proto = parts
    if method != "-":
        out["http.request.method"] = method
    if url != "-":
        out["url.original"] = url
    if proto.startswith("HTTP/"):
        out["http.version"] = proto[5:]


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    if not line.startswith(TYPES):  # before tokenizing: a hinted non-ALB line costs nothing
        return None
    f = [q or b for q, b in _TOKEN.findall(line)]
    if len(f) < _MIN_FIELDS or f[0] + " " not in TYPES:
        return None
    stamp = parse_iso(f[1], tz)
    client = _host_port(f[3])
    status = _int(f[8])
    if stamp is None or client is None or status is None:
        return None
    out: dict[str, Any] = {"message": line, "event.dataset": "aws.elb", "aws.elb.type": f[0], "aws.elb.name": f[2],
                 "source.address": client[0], "source.port": client[1], "http.response.status_code": status,
                 "logship.timestamp_ns": stamp[0], "@timestamp": stamp[1]}
    target = _host_port(f[4])
    if target is not None:
        out["aws.elb.backend.ip"], out["aws.elb.backend.port"] = target[0], str(target[1])
    for i, key in ((5, "aws.elb.request_processing_time.sec"), (6, "aws.elb.backend_processing_time.sec"),
                   (7, "aws.elb.response_processing_time.sec")):
        sec = _seconds(f[i])
        if sec is not None:
            out[key] = sec
    for i, key in ((9, "aws.elb.backend.http.response.status_code"), (10, "http.request.body.bytes"),
                   (11, "http.response.body.bytes")):
        n = _int(f[i])
        if n is not None:
            out[key] = n
    _request(out, f[12])
    if f[13] != "-":
        out["user_agent.original"] = f[13]
    if len(f) > 17 and f[17] != "-":
        out["aws.elb.trace_id"] = out["trace.id"] = f[17]
    for i, key, kind in _TAIL:
        if i >= len(f):
            break
        v = f[i]
        if v == "-" or not v:
            continue
        out[key] = v if kind == "s" else v.split(kind)
    return out
