"""Time formats shared by every stage: Docker's RFC3339Nano stamps in, ISO 8601 with
nanoseconds out. Standard library only, so importing the core loads no parser."""

from __future__ import annotations

import time
from datetime import date

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_sec_cache: dict[bytes, int] = {}
_FRAC_SCALE = tuple(10 ** (9 - n) for n in range(10))
SECOND_PREFIX_CACHE: dict[int, tuple[str, bytes]] = {}  # epoch second -> "YYYY-MM-DDTHH:MM:SS." as str and bytes
_DAY_CACHE: dict[int, str] = {}  # epoch day -> "YYYY-MM-DDT"


def parse_docker_time(ts: bytes) -> int:
    """RFC3339Nano as Docker writes it (UTC, `Z`, trailing fraction zeros trimmed) -> epoch ns.
    Lines of the same second share the date arithmetic (a dict hit per line)."""
    head = ts[:19]
    secs = _sec_cache.get(head)
    if secs is None:
        if len(ts) < 19 or ts[4:5] != b"-" or ts[10:11] != b"T":
            raise ValueError(f"not a Docker timestamp: {ts[:40]!r}")
        days = date(int(head[0:4]), int(head[5:7]), int(head[8:10])).toordinal() - _EPOCH_ORDINAL
        secs = days * 86400 + int(head[11:13]) * 3600 + int(head[14:16]) * 60 + int(head[17:19])
        if len(_sec_cache) > 4096:
            _sec_cache.clear()
        _sec_cache[head] = secs
    if len(ts) > 21 and ts[19] == 46:  # "."
        digits = ts[20:-1] if ts[-1] == 90 else ts[20:]  # "Z"
        digits = digits[:9]
        return secs * 1_000_000_000 + int(digits) * _FRAC_SCALE[len(digits)]
    return secs * 1_000_000_000


def rfc3339_ns(text: str) -> int:
    """Docker's API times (`2026-11-20T23:34:59.049677385Z`) -> epoch ns; 0 for the zero time."""
    if not text or text.startswith("0001-"):
        return 0
    try:
        return parse_docker_time(text.encode())
    except ValueError:
        return 0


def second_prefix(secs: int) -> tuple[str, bytes]:
    """Lines of the same second share the formatted date and time (a dict hit per line).
    A miss is formatted from a per-day cache (strftime cost ~8 us a call on a loaded host;
    lines' own stamps, `logship.line_timestamp`, spread over many seconds)."""
    prefix = SECOND_PREFIX_CACHE.get(secs)
    if prefix is None:
        if len(SECOND_PREFIX_CACHE) > 4096:
            SECOND_PREFIX_CACHE.clear()
        days, rem = divmod(secs, 86400)
        day = _DAY_CACHE.get(days)
        if day is None:
            try:
                day = date.fromordinal(_EPOCH_ORDINAL + days).isoformat() + "T"
            except (ValueError, OverflowError):  # before year 1 or after 9999
                day = time.strftime("%Y-%m-%dT", time.gmtime(secs))
            if len(_DAY_CACHE) > 4096:
                _DAY_CACHE.clear()
            _DAY_CACHE[days] = day
        text = "%s%02d:%02d:%02d." % (day, rem // 3600, rem // 60 % 60, rem % 60)
        prefix = SECOND_PREFIX_CACHE[secs] = (text, text.encode())
    return prefix


def iso_ns(time_ns: int) -> str:
    """Epoch ns -> `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (date_nanos keeps all nine digits)."""
    secs, frac = divmod(time_ns, 1_000_000_000)
    return f"{second_prefix(secs)[0]}{frac:09d}Z"
