"""Syslog entry point for ``hint="syslog"`` (a /dev/log datagram or network
syslog): RFC 5424 first, then RFC 3164."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from . import rfc3164, rfc5424
from .priority import PRI_FIELDS
from .timestamps import apply_source_time


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    out = rfc5424.parse(line, source_time, tz)
    if out is not None:
        return out
    pri = _rfc5424_pri(line)
    if pri is not None:
        return broken_rfc5424(line, pri, source_time, tz)
    return rfc3164.parse(line, source_time, tz)


def broken_rfc5424(line: str, pri: int, source_time: datetime | None, tz: tzinfo) -> dict[str, Any]:
    """Message-only result for a line that looks like RFC 5424 but is not."""
    out: dict[str, Any] = {"message": line, "event.dataset": "syslog.rfc5424"}
    if pri < 192:
        out.update(PRI_FIELDS[pri])
    apply_source_time(out, source_time, tz)
    out["logship.parse_error"] = rfc5424.validate(line) or "RFC 5424 header malformed"
    return out


def _rfc5424_pri(line: str) -> int | None:
    """PRI of a line shaped ``<PRI>VERSION SP...`` (RFC 5424 framing), else None."""
    end = line.find(">", 1, 5)
    if end < 0 or not line[1:end].isdigit() or not line[1:end].isascii():
        return None
    i = j = end + 1
    n = len(line)
    while j < n and j < i + 3 and "0" <= line[j] <= "9":
        j += 1
    if j > i and (j == n or line[j] == " "):
        return int(line[1:end])
    return None
