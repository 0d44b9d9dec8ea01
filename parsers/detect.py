"""Format auto-detection.  Dispatch looks at the first character(s) and a few
fixed positions before any regex runs, so each line normally meets one or two
compiled patterns."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from . import rfc3164, syslog
from .formats import (
    access,
    android,
    apache_error,
    aws_alb,
    generic,
    golog,
    json_lines,
    klog,
    log4j,
    logfmt,
    nginx_error,
    php,
    python_logging,
    redis,
    unknown,
)
from .stamp_cache import iso_head
from .timestamps import ISO_PATTERN, MONTHS, set_iso_groups

# Every parser: (line, source_time, tz) -> fields, or None when the line is not its format.
Parser = Callable[[str, datetime | None, tzinfo], dict[str, Any] | None]

_ISO = re.compile(ISO_PATTERN)
_LOGFMT_START = re.compile(r"@?[A-Za-z_][\w.\-/@#]*=")
# Bound once: free_text runs on every unclaimed line, which must cost no more than before the generic reader.
_stampish = generic.stampish
_HEAD = generic.HEAD
_prose_start = generic.prose_start
_unknown = unknown.parse
_PY_LEVELS = ("CRITICAL:", "ERROR:", "WARNING:", "INFO:", "DEBUG:", "NOTSET:", "FATAL:", "WARN:")


def _iso_prefixed(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any]:
    head = iso_head(line, tz)
    if head is None:
        return _iso_prefixed_general(line, st, tz)
    return _after_iso(line, st, tz, {"logship.timestamp_ns": head[0], "@timestamp": head[2]}, head[1])


def _iso_prefixed_general(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any]:
    m = _ISO.match(line)
    if m is None:
        return free_text(line, st, tz)
    out: dict[str, Any] = {}
    if not set_iso_groups(out, m.groups(), tz):
        return free_text(line, st, tz)
    return _after_iso(line, st, tz, out, m.end())


def _after_iso(line: str, st: datetime | None, tz: tzinfo, out: dict[str, Any], pos: int) -> dict[str, Any]:
    r = python_logging.parse_after_iso(line, out, pos) if line.startswith(" - ", pos) else None
    if r is None:
        r = log4j.parse_after_iso(line, out, pos)
    return r if r is not None else generic.after_stamp(line, out, pos)


def free_text(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any]:
    """A line no specific format claims: the generic header reader, else plain text."""
    # Most free text is turned down first, cheaply: no time of day / long number in its head, or a prose first word.
    if not _stampish(line, _HEAD) or _prose_start(line):
        return _unknown(line, st, tz)
    r = _generic(line, st, tz)
    return r if r is not None else _unknown(line, st, tz)


def _digit(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    n = len(line)
    if n > 19:
        c4 = line[4]
        if c4 == "-" and line[7] == "-":
            return _iso_prefixed(line, st, tz)
        if c4 == "/" and line[7] == "/":
            if line.startswith(" [", 19):
                return nginx_error.parse(line, st, tz) or golog.parse(line, st, tz)
            return golog.parse(line, st, tz)
        c2 = line[2]
        if c2 == "/" and line[5] == "/":
            return log4j.parse(line, st, tz)
        if c2 == "-" and line[5] == " ":
            return android.parse(line, st, tz)
        if line[6] == " " and line[13] == " ":
            r = log4j.parse(line, st, tz)
            if r is not None:
                return r
    if '] "' in line:
        r = access.parse(line, st, tz)
        if r is not None:
            return r
    return redis.parse(line, st, tz)


def _bracket(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    if len(line) < 4:
        return None
    if line[1].isalpha() or line[3] == "/" or line[5:6] == "-":
        return apache_error.parse(line, st, tz)
    if line[3] == "-":
        return php.parse(line, st, tz)
    return redis.parse(line, st, tz)


def _word(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    c = line[0]
    if c in "hgw" and line.startswith(aws_alb.TYPES):
        r = aws_alb.parse(line, st, tz)
        if r is not None:
            return r
    if len(line) > 15 and line[3] == " " and line[:3] in MONTHS:
        r = rfc3164.parse(line, st, tz)
        if r is not None:
            return r
    if c in "IWEF" and line[1:5].isdigit():
        r = klog.parse(line, st, tz)
        if r is not None:
            return r
    if c in "CEWIDNF" and line.startswith(_PY_LEVELS):
        r = python_logging.parse(line, st, tz)
        if r is not None:
            return r
    if "=" in line and _LOGFMT_START.match(line) is not None:  # the `in` spares plain text the regex
        r = logfmt.parse(line, st, tz)
        if r is not None:
            return r
    if '] "' in line:
        return access.parse(line, st, tz)
    return None


def _json(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    # '{"' or '{}' (after optional blanks) is JSON, even if broken; '{word ...' is not.
    c = line[1:2]
    if c == '"' or c == "}" or line[1:].lstrip()[:1] in ('"', "}"):
        return json_lines.parse(line, st, tz)
    return None


def _access(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    return access.parse(line, st, tz) if '] "' in line else None


# '"' starts a quoted X-Forwarded-For list, ':' an IPv6 address like "::1".
BY_FIRST: dict[str, Parser] = {"<": syslog.parse, "{": _json, "[": _bracket, '"': _access, ":": _access}
for _c in "0123456789":
    BY_FIRST[_c] = _digit
for _c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_@":
    BY_FIRST[_c] = _word


def _word_or_text(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any]:
    """_word for a whole line: when no format matched, it is free text, decided here
    rather than by auto() running its checks again (true/false/null still go to auto)."""
    r = _word(line, st, tz)
    if r is None and line[0] not in "tfn":
        return free_text(line, st, tz)
    return r  # type: ignore[return-value]


# For parse(): the first character of the line as it came (auto() also dispatches stripped lines).
LINE_BY_FIRST: dict[str, Parser] = {**BY_FIRST, **{c: _word_or_text for c, fn in BY_FIRST.items() if fn is _word}}


def auto(line: str, st: datetime | None, tz: tzinfo, first_tried: bool = False) -> dict[str, Any]:
    """Detect the format of ``line`` and parse it (never None). `first_tried`: the caller
    already ran BY_FIRST's parser for the line's first character, and it said None."""
    if not line:
        return unknown.parse(line, st, tz)
    fn = BY_FIRST.get(line[0])
    if fn is not None:
        r = None if first_tried else fn(line, st, tz)
        if r is not None:
            return r
    elif line[0] in " \t\r\n\f\v":
        stripped = line.strip()
        if stripped and stripped[0] not in " \t":
            fn = BY_FIRST.get(stripped[0])
            if fn is not None:
                r = fn(stripped, st, tz)
                if r is not None:
                    return r
    if line[0] in json_lines.VALUE_FIRST and line[-1] in json_lines.VALUE_LAST:  # "[1, 2]", "42", "true"
        r = json_lines.parse_value(line, st, tz)
        if r is not None:
            return r
    return free_text(line, st, tz)


def _access_as(dataset: str) -> Parser:
    def parse(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
        return access.parse(line, st, tz, dataset)
    return parse


def _rfc3164(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    return rfc3164.parse(line, st, tz)


def _rfc5424(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    from . import rfc5424
    return rfc5424.parse(line, st, tz)


def _generic(line: str, st: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    if line[2:3] == ":" or (line[3:4] == ":" and line[:1] == "["):
        r = generic.time_only(line, st, tz)
        if r is not None:
            return r
    return generic.parse(line, st, tz)


# hint -> parser; a parser that returns None falls back to auto-detection.
HINTS: dict[str, Parser] = {
    "syslog": syslog.parse,
    "syslog.rfc5424": _rfc5424,
    "syslog.rfc3164": _rfc3164,
    "json": json_lines.parse,
    "logfmt": logfmt.parse,
    "apache.access": _access_as("apache.access"),
    "nginx.access": _access_as("nginx.access"),
    "apache.error": apache_error.parse,
    "aws.elb": aws_alb.parse,
    "nginx.error": nginx_error.parse,
    "php.error": php.parse,
    "redis.log": redis.parse,
    "python.logging": python_logging.parse,
    "go.log": golog.parse,
    "log4j": log4j.parse,
    "klog": klog.parse,
    "android.logcat": android.parse,
    "generic": _generic,
    "unknown": unknown.parse,
}
