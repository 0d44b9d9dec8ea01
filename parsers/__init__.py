"""logship parsers: one raw log line in, flat ECS fields out.  Pure: no I/O.

Public API
==========

``parse(raw, *, source_time=None, hint=None, tz=None, want_datetime=True) -> dict``
    ``raw`` is ``bytes`` (decoded as UTF-8, invalid bytes replaced by U+FFFD) or
    ``str`` (lone surrogates are replaced too, so the output is always valid
    text).  One trailing ``\\n``, ``\\r\\n`` or ``\\r`` is dropped.  ``hint`` skips
    detection: ``"syslog"`` (RFC 5424, then RFC 3164) or any ``event.dataset``
    name below; if the hinted parser does not match, auto-detection runs.
    ``tz`` (default UTC) applies to stamps without an offset.  ``source_time``
    is the record's own time: used when the line has no stamp, and as the
    reference for year-less stamps (RFC 3164, redis, klog, logcat: the year
    that puts the stamp closest to, and at most one day after, it; without
    ``source_time`` the wall clock is the reference).  ``want_datetime=False``
    leaves out ``@timestamp`` (no ``datetime`` is built: cheaper) and keeps
    ``logship.timestamp_ns`` with the very same value.  Never raises.

``validate_rfc5424(raw) -> str | None``
    Strict RFC 5424 check: None if valid, else the reason with the byte offset,
    e.g. ``"PRI: value 409 > 191 at offset 1"``.

``parsers.multiline.MultilineJoiner``
    Joins stack traces / tracebacks / panics into single events (see there).

Output keys (flat, dotted ECS names; absent when unknown)
=========================================================

Always: ``message`` (str), ``event.dataset`` (str).

Time: ``@timestamp`` (timezone-aware ``datetime`` in the stamp's zone, microseconds,
derived from the latter) and
``logship.timestamp_ns`` (int epoch ns, full precision) -- both or neither
(only the latter with ``want_datetime=False``); from the line, else from
``source_time``.

Common: ``log.level`` (emergency/alert/critical/error/warning/notice/info/debug/trace),
``log.logger``, ``log.origin.file.name``, ``log.origin.file.line`` (int),
``process.pid`` (int), ``process.thread.name``, ``process.thread.id`` (int),
``event.original`` (the decoded raw line; only when ``message`` was replaced by a
shorter part of it), ``logship.parse_error`` (str; a format was recognised but
the line is broken -- then ``message`` is the whole line), ``logship.dropped_keys``
(int; JSON/logfmt keys beyond the bound).  ``logship.truncated`` is reserved for
the shipper (multiline cut; see :mod:`parsers.multiline`).

Syslog: ``log.syslog.priority``, ``log.syslog.facility.code``,
``log.syslog.facility.name``, ``log.syslog.severity.code``,
``log.syslog.severity.name``, ``log.syslog.version`` (int), ``log.syslog.hostname``
and ``host.hostname``, ``log.syslog.appname``, ``log.syslog.procid`` (str),
``log.syslog.msgid``, ``log.syslog.structured_data`` (``{sd_id: {param: value}}``).

HTTP (access logs, nginx error context): ``source.address``, ``source.ip`` (when the
address is an IP; access logs), ``source.port`` (int),
``user.name``, ``http.request.method``, ``url.original``, ``url.domain``,
``http.version``, ``http.response.status_code`` (int),
``http.response.body.bytes`` (int), ``http.request.referrer``,
``user_agent.original``.

AWS ALB (``aws.elb``, Filebeat's names): ``aws.elb.type``, ``aws.elb.name``,
``aws.elb.backend.ip``/``.port``, ``aws.elb.{request,backend,response}_processing_time.sec``
(float), ``aws.elb.backend.http.response.status_code``, ``http.request.body.bytes``,
``aws.elb.ssl_cipher``, ``aws.elb.ssl_protocol``, ``aws.elb.target_group.arn``,
``aws.elb.trace_id`` and ``trace.id``, ``aws.elb.chosen_cert.arn``,
``aws.elb.matched_rule_priority``, ``event.start`` (request creation, ISO text),
``aws.elb.action_executed``/``target_port``/``target_status_code`` (lists),
``aws.elb.redirect_url``, ``aws.elb.error.reason``, ``aws.elb.classification``,
``aws.elb.classification_reason``, ``aws.elb.conn_trace_id``.

Format-specific (no ECS equivalent): ``apache.error.module``,
``nginx.error.connection_id`` (int), ``nginx.error.server``,
``nginx.error.upstream``, ``redis.log.role``.

JSON / logfmt: well-known keys map to the fields above (see
:mod:`parsers.formats._structured`); all other keys go under ``json.<key>`` /
``logfmt.<key>`` (nested objects flattened with dots, depth <= 3, at most 64
keys).  JSON values keep their JSON types; logfmt values are strings (bare
words ``True``).

``event.dataset`` values: ``syslog.rfc5424``, ``syslog.rfc3164``,
``apache.access``, ``nginx.access``, ``aws.elb``, ``apache.error``, ``nginx.error``,
``php.error``, ``redis.log``, ``json``, ``logfmt``, ``python.logging``,
``go.log``, ``log4j`` (also Spark/HDFS/ZooKeeper/Hadoop layouts), ``klog``
(klog and glog), ``android.logcat``, ``generic`` (any other "stamp [level]
[component] message" header: :mod:`parsers.formats.generic`; ``event.original`` kept),
``unknown`` (no header stamp: message kept, keyword level).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from . import detect
from .rfc5424 import validate as validate_rfc5424
from .timestamps import MAX_NS as _MAX_NS
from .timestamps import MIN_NS as _MIN_NS
from .timestamps import NS as _NS
from .timestamps import to_datetime as _to_datetime

__all__ = ["DATASETS", "parse", "validate_rfc5424"]

DATASETS: tuple[str, ...] = tuple(k for k in detect.HINTS if k != "syslog")

_auto = detect.auto
_HINTS = detect.HINTS
_BY_FIRST = detect.LINE_BY_FIRST


def _decode(raw: object) -> str:
    if type(raw) is str:
        line = raw
        if not line.isascii():
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: make it valid text
                line = line.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        return line
    if isinstance(raw, (bytes, bytearray, memoryview)):
        b = bytes(raw)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return b.decode("utf-8", "replace")
    if isinstance(raw, str):
        return _decode(str.__str__(raw))
    return _decode(str(raw))


def parse(
    raw: bytes | str,
    *,
    source_time: datetime | None = None,
    hint: str | None = None,
    tz: tzinfo | None = None,
    want_datetime: bool = True,
) -> dict[str, Any]:
    """Parse one log line into flat ECS fields (see the module docstring)."""
    try:
        # Hot path: decode inline (no helper call) for the two common input types.
        if type(raw) is bytes:
            try:
                line = raw.decode()
            except UnicodeDecodeError:
                line = raw.decode("utf-8", "replace")
        elif type(raw) is str and raw.isascii():
            line = raw
        else:
            line = _decode(raw)
        if line and line[-1] in "\r\n\x00":
            if line[-1] == "\x00":  # Python's SysLogHandler ends each datagram with a NUL
                line = line[:-1]
            if line.endswith("\r\n"):
                line = line[:-2]
            elif line and line[-1] in "\r\n":
                line = line[:-1]
        if tz is None:
            tz = UTC
        fn = _BY_FIRST.get(line[:1]) if hint is None else _HINTS.get(hint)
        out = None if fn is None else fn(line, source_time, tz)
        if out is None:
            out = _auto(line, source_time, tz, hint is None and fn is not None)
        if want_datetime:
            ns = out.get(_NS)
            if ns is not None:
                if _MIN_NS <= ns <= _MAX_NS:
                    out["@timestamp"] = _to_datetime(ns, out.get("@timestamp") or tz)
                else:  # an offset pushed the instant out of datetime's range: no stamp at all
                    del out[_NS]
                    out.pop("@timestamp", None)
        else:
            out.pop("@timestamp", None)  # the stamp's zone, if a parser left one
        return out
    except Exception as exc:  # noqa: BLE001 -- the last-resort guard: parse() must never raise on input
        return _failsafe(raw, exc)


def _failsafe(raw: object, exc: Exception) -> dict[str, Any]:
    try:
        msg = _decode(raw)
    except Exception:  # noqa: BLE001 -- an input whose str() raises: report it without text
        msg = ""
    return {"message": msg, "event.dataset": "unknown",
            "logship.parse_error": f"internal: {type(exc).__name__}: {exc}"[:300]}
