"""Fast paths for fixed-width stamps: the civil minute is parsed once per
distinct minute text and cached, so a line pays one slice, one dict hit and
one ``int()`` for its seconds.

Every helper here returns None when the text is not the exact shape it knows
(or is out of range): the caller then runs the general path, which decides.
So the fast paths can only be faster, never different (property-tested
against the general paths in tests/unit/parsers/test_parsers_fast_paths.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timezone, tzinfo

from .timestamps import (
    _MISSING,
    _TZ_OFFSET,
    _constant_offset,
    _days,
    _year_month_of,
    build,
    build_yearless,
    read_fraction,
    offset_tz,
    reference_epoch,
)

# Entries per cache (~3 days of distinct minutes).  When full, a cache starts
# over: junk input cannot grow memory, nor lock the live minutes out for good.
_LIMIT = 4096

# (y, mo, d, h, mi, epoch seconds of that minute in UTC, before the zone offset)
Minute = tuple[int, int, int, int, int, int]
# (mo, d, h, mi, {year: Minute | None}) of a year-less minute
Yearless = tuple[int, int, int, int, dict[int, Minute | None]]


def _digits(s: str) -> bool:
    return s.isdigit() and s.isascii()


def _two(s: str) -> bool:
    return len(s) == 2 and s.isdigit() and s.isascii()


class MinuteCache(dict[str, Minute | None]):
    """``key text -> Minute | None``, computed by ``fields(key)`` on first sight."""

    def __init__(self, fields: Callable[[str], tuple[int, int, int, int, int] | None]) -> None:
        super().__init__()
        self._fields = fields

    def __missing__(self, key: str) -> Minute | None:
        f = self._fields(key)
        value = None if f is None else minute(*f)
        if len(self) >= _LIMIT:
            self.clear()
        self[key] = value
        return value


def minute(y: int, mo: int, d: int, h: int, mi: int) -> Minute | None:
    days = _days(y, mo, d)
    if days is None or not (0 <= h < 24 and 0 <= mi < 60):
        return None
    return (y, mo, d, h, mi, days * 86400 + h * 3600 + mi * 60)


def at(e: Minute, s: int, ns: int, tz: tzinfo) -> int | None:
    """``build()`` for a cached minute: same result, no re-validation of the date."""
    off = _TZ_OFFSET.get(tz, _MISSING) if type(tz) is timezone else None
    if off is _MISSING:
        off = _constant_offset(tz)
    if off is None or not (0 <= s < 60):  # DST zone or leap second: the general builder
        return build(e[0], e[1], e[2], e[3], e[4], s, ns, tz)
    return (e[5] + s - off) * 1_000_000_000 + ns


def _iso_fields(k: str) -> tuple[int, int, int, int, int] | None:
    # "YYYY-MM-DD[Tt ]hh:mm"
    if (k[4] == "-" and k[7] == "-" and k[10] in "Tt " and k[13] == ":" and _digits(k[:4]) and _digits(k[5:7])
            and _digits(k[8:10]) and _digits(k[11:13]) and _digits(k[14:16])):
        return int(k[:4]), int(k[5:7]), int(k[8:10]), int(k[11:13]), int(k[14:16])
    return None


ISO_MINUTES = MinuteCache(_iso_fields)


class _Zones(dict[str, tzinfo | None]):
    """ISO offset text (``Z``, ``+hh:mm``, ``-hhmm``) -> tzinfo, None when offset_tz rejects it."""

    def __missing__(self, key: str) -> tzinfo | None:
        try:
            zone = offset_tz(key, UTC)
        except ValueError:
            zone = None
        if len(self) >= _LIMIT:
            self.clear()
        self[key] = zone
        return zone


_ZONES = _Zones()


def iso_head(line: str, tz: tzinfo) -> tuple[int, int, tzinfo] | None:
    """A line starting with an :data:`~parsers.timestamps.ISO_PATTERN` stamp:
    ``(epoch ns, end of the stamp, its zone)``, exactly as the regex plus
    ``set_iso_groups`` would give; None: take the general path."""
    e = ISO_MINUTES[line[:16]] if len(line) >= 19 else None
    if e is None or line[16] != ":":
        return None
    ss = line[17:19]
    if not _two(ss):
        return None
    n = len(line)
    i = 19
    ns = 0
    if i < n and line[i] in ".,":
        frac, j = read_fraction(line, i)
        if j > i + 1:
            ns, i = frac, j
    zone = tz
    if i < n:
        c = line[i]
        if c == "Z" or c == "z":
            zone = UTC
            i += 1
        elif (c == "+" or c == "-") and _two(line[i + 1 : i + 3]):
            k = i + 4 if line[i + 3 : i + 4] == ":" else i + 3
            if _two(line[k : k + 2]):
                found = _ZONES[line[i : k + 2]]
                if found is None:
                    return None
                zone = found
                i = k + 2
    r = at(e, int(ss), ns, zone)
    return None if r is None else (r, i, zone)


class YearlessCache(dict[str, Yearless | None]):
    """``key text -> (mo, d, h, mi, {year: Minute | None})``, or None when
    ``fields(key)`` rejects the text."""

    def __init__(self, fields: Callable[[str], tuple[int, int, int, int] | None]) -> None:
        super().__init__()
        self._fields = fields

    def __missing__(self, key: str) -> Yearless | None:
        f = self._fields(key)
        value: Yearless | None = None if f is None else (*f, {})
        if len(self) >= _LIMIT:
            self.clear()
        self[key] = value
        return value


def yearless_at(
    e: Yearless, s: int, ns: int, tz: tzinfo, source_time: datetime | None
) -> int | None:
    """``build_yearless()`` for a cached month/day/hour/minute: the same candidate
    years in the same order, each minute validated once; what none of them
    settles (e.g. Feb 29 far from a leap year) goes to ``build_yearless``."""
    ref = reference_epoch(source_time)
    ry, ref_mo = _year_month_of(ref)
    limit = (ref + 86400) * 1_000_000_000
    years = e[4]
    for y in ((ry + 1, ry, ry - 1) if (e[0] == 1 and ref_mo == 12) else (ry, ry - 1)):
        if y in years:
            m = years[y]
        else:
            m = minute(y, e[0], e[1], e[2], e[3])
            if len(years) < 16:
                years[y] = m
        if m is not None:
            r = at(m, s, ns, tz)
            if r is not None and r <= limit:
                return r
    return build_yearless(e[0], e[1], e[2], e[3], s, ns, tz, ref)
