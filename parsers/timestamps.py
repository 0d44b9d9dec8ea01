"""Timestamp helpers for the hot path.

Fixed formats are parsed by the format modules with slicing and ``int()``; this
module turns the resulting civil fields into one value, the instant as integer
epoch nanoseconds (``logship.timestamp_ns``, full precision, e.g. 9-digit
RFC 5424 fractions), computed arithmetically (days-from-civil, cached).  The
``@timestamp`` datetime is derived from it once, in :func:`parsers.parse`
(:func:`to_datetime`), so the two can never disagree.  python-dateutil is only
imported for the odd formats that reach :func:`parse_fallback`.
"""

from __future__ import annotations

import math
import time as _time
import warnings
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SEC = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)
NS = "logship.timestamp_ns"
# Inside the package, "@timestamp" holds the stamp's zone (a tzinfo) when it is not the
# caller's ``tz``; parse() replaces it with the datetime, in that zone, or drops it.
ZONE = "@timestamp"
_MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _US
_MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _US
MIN_NS, MAX_NS = _MIN_US * 1000, _MAX_US * 1000 + 999  # what to_datetime() can represent

MONTHS: dict[str, int] = {}
for _i, _name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
):
    # Cache every case variant seen in the wild so lookup is a single dict hit.
    for _v in (_name, _name.title(), _name.upper()):
        MONTHS[_v] = _i

_ORDINAL_EPOCH = 719163  # date(1970, 1, 1).toordinal()
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# Fraction digit-count -> multiplier to nanoseconds.
FRAC_SCALE = tuple(10 ** (9 - n) if n <= 9 else 0 for n in range(10))


@lru_cache(maxsize=8192)
def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_DAYS: dict[tuple[int, int, int], int | None] = {}


def _days(y: int, m: int, d: int) -> int | None:
    """Cached days since the epoch of a valid date in years 1-9999, else None."""
    key = (y, m, d)
    try:
        return _DAYS[key]
    except KeyError:
        pass
    days = days_from_civil(y, m, d) if 1 <= y <= 9999 and valid_date(y, m, d) else None
    if len(_DAYS) >= 16384:  # bounded: arbitrary input must not grow it forever
        _DAYS.clear()
    _DAYS[key] = days
    return days


def valid_date(y: int, m: int, d: int) -> bool:
    if not (1 <= m <= 12 and 1 <= d <= _DAYS_IN_MONTH[m]):
        return False
    if m == 2 and d == 29:
        return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return True


_FIXED_TZ: dict[int, timezone] = {0: UTC}


def fixed_tz(offset_minutes: int) -> timezone:
    """Cached ``timezone`` object for a UTC offset in minutes."""
    tz = _FIXED_TZ.get(offset_minutes)
    if tz is None:
        tz = _FIXED_TZ[offset_minutes] = timezone(timedelta(minutes=offset_minutes))
    return tz


# tz object -> constant UTC offset in seconds, or None when it varies (DST zones).
_TZ_OFFSET: dict[tzinfo, int | None] = {UTC: 0}
_MISSING = -(1 << 40)  # no real offset: the sentinel of _TZ_OFFSET.get


def _constant_offset(tz: tzinfo) -> int | None:
    try:
        return _TZ_OFFSET[tz]
    except KeyError:
        pass
    except TypeError:  # unhashable tzinfo: treat as variable
        return None
    off: int | None = None
    if isinstance(tz, timezone):
        delta = tz.utcoffset(None)
        off = int(delta.total_seconds()) if delta is not None else None
    _TZ_OFFSET[tz] = off
    return off


def build(y: int, mo: int, d: int, h: int, mi: int, s: int, ns: int, tz: tzinfo) -> int | None:
    """Epoch nanoseconds of a civil time in ``tz``, or None for an impossible one.

    A leap second (``s == 60``) is folded onto the last nanosecond of second 59.
    Constant-offset zones are pure arithmetic; zones with DST ask a ``datetime``
    for the offset of that very instant."""
    if s >= 60:
        if s > 60:
            return None
        s = 59
        ns = 999_999_999
    days = _days(y, mo, d)
    if days is None or not (0 <= h < 24 and 0 <= mi < 60 and s >= 0 and 0 <= ns < 1_000_000_000):
        return None
    off = _TZ_OFFSET.get(tz, _MISSING) if type(tz) is timezone else None
    if off is _MISSING:
        off = _constant_offset(tz)
    if off is None:
        try:
            delta = datetime(y, mo, d, h, mi, s, tzinfo=tz).utcoffset()
        except (ValueError, OverflowError, TypeError):
            return None
        off = delta // _SEC if delta is not None else 0
    return (days * 86400 + h * 3600 + mi * 60 + s - off) * 1_000_000_000 + ns


def set_time(out: dict[str, Any], y: int, mo: int, d: int, h: int, mi: int, s: int, ns: int, tz: tzinfo) -> bool:
    """Store ``logship.timestamp_ns`` into ``out``; False if the time is invalid."""
    r = build(y, mo, d, h, mi, s, ns, tz)
    if r is None:
        return False
    out[NS] = r
    out[ZONE] = tz
    return True


def from_datetime(stamp: datetime, tz: tzinfo = UTC) -> int:
    """Epoch ns of a datetime (naive ones are taken in ``tz``)."""
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        stamp = stamp.replace(tzinfo=tz)
    return ((stamp - _EPOCH) // _US) * 1000


_EPOCH_IN: dict[tzinfo, datetime] = {UTC: _EPOCH}  # the epoch in each fixed-offset zone seen


def _to_datetime_py(ns: int, zone: tzinfo = UTC, /) -> datetime:
    """``@timestamp`` for epoch ns: an aware datetime in ``zone`` (microseconds, floored).
    Fixed offsets add to the epoch in that zone (aware arithmetic is exact there); zones
    with DST convert, as wall-clock arithmetic would cross their transitions wrongly."""
    if type(zone) is timezone:
        epoch = _EPOCH_IN.get(zone)
        if epoch is None:
            if len(_EPOCH_IN) >= 4096:  # bounded: offsets come from the input
                _EPOCH_IN.clear()
            epoch = _EPOCH_IN[zone] = _EPOCH.astimezone(zone)
        return epoch + timedelta(microseconds=ns // 1000)
    return (_EPOCH + timedelta(microseconds=ns // 1000)).astimezone(zone)


# The C version (parsers/_stamps.c, built by setup.py) does fixed-offset zones in one call and
# hands everything else to the Python one; without a compiler the Python one does all.
try:
    from parsers import _stamps
except ImportError:  # pragma: no cover - built on every supported install; the fallback still works
    to_datetime = _to_datetime_py
else:
    _stamps.set_fallback(_to_datetime_py)
    to_datetime = _stamps.to_datetime


def from_epoch(value: float) -> int | None:
    """Epoch number whose unit is guessed from magnitude (s, ms, us or ns); None
    outside years 1-9999 (what a ``datetime`` can hold)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    a = abs(value)
    if a < 1e11:  # seconds (until year 5138)
        ns = round(value * 1_000_000_000) if isinstance(value, float) else value * 1_000_000_000
    elif a < 1e14:
        ns = round(value * 1_000_000) if isinstance(value, float) else value * 1_000_000
    elif a < 1e17:
        ns = round(value * 1000) if isinstance(value, float) else value * 1000
    else:
        ns = int(value)
    return ns if _MIN_US <= ns // 1000 <= _MAX_US else None


def frac_to_ns(frac: str) -> int:
    """Digits after the decimal point -> nanoseconds (extra digits truncated)."""
    n = len(frac)
    if n <= 9:
        return int(frac) * FRAC_SCALE[n] if n else 0
    return int(frac[:9])


def read_fraction(text: str, i: int) -> tuple[int, int]:
    """The digits after the separator at `text[i]` ('.' or ','): (nanoseconds, index past them)."""
    j = i + 1
    n = len(text)
    while j < n and "0" <= text[j] <= "9":
        j += 1
    return frac_to_ns(text[i + 1 : j]), j


_fromiso = datetime.fromisoformat


def parse_iso(text: str, tz: tzinfo = UTC) -> tuple[int, tzinfo] | None:
    """ISO-8601 / RFC 3339 ``YYYY-MM-DD[T ]hh:mm[:ss[.frac]][Z|±hh[:]mm]`` -> (epoch ns, its zone).

    Fast path: the C ``datetime.fromisoformat`` (fraction digits 7-9 added back).
    Odd cases (lowercase ``t``/``z``, leap second, ``,`` fractions) take the
    slicing path.  None if not a stamp (also for offsets with seconds, which
    RFC 3339 does not have, and out-of-range offsets)."""
    n = len(text)
    if n < 19 or n > 64 or text[4] != "-" or text[10] not in "T ":
        return _parse_iso_slow(text, tz)
    try:
        stamp = _fromiso(text)
    except ValueError:
        return _parse_iso_slow(text, tz)
    zone = stamp.tzinfo
    if zone is None:
        r = build(stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second,
                  stamp.microsecond * 1000 + _extra_ns(text, n), tz)
        return None if r is None else (r, tz)
    delta = stamp.utcoffset()
    if delta is None or delta % _MINUTE:
        return None
    off = delta // _SEC
    return ((stamp.toordinal() - _ORDINAL_EPOCH) * 86400 + stamp.hour * 3600 + stamp.minute * 60 + stamp.second - off
            ) * 1_000_000_000 + stamp.microsecond * 1000 + _extra_ns(text, n), zone


def _extra_ns(text: str, n: int) -> int:
    """Fraction digits 7-9 (RFC 5424 allows them), which ``fromisoformat`` drops."""
    if n > 26 and text[19] == "." and text[20:26].isdigit():
        j = 26
        while j < n and j < 29 and "0" <= text[j] <= "9":
            j += 1
        if j > 26:
            return int(text[26:j]) * FRAC_SCALE[j - 20]
    return 0


def _parse_iso_slow(text: str, tz: tzinfo) -> tuple[int, tzinfo] | None:
    n = len(text)
    if n < 16 or n > 64 or text[4] != "-" or text[7] != "-" or text[13] != ":":
        return None
    c = text[10]
    if c not in "Tt ":
        return None
    if not (_digits(text[0:4]) and _digits(text[5:7]) and _digits(text[8:10]) and _digits(text[11:13])
            and _digits(text[14:16])):
        return None
    y, mo, d, h, mi = int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16])
    s = 0
    i = 16
    if n > 16 and text[16] == ":":
        if not _digits(text[17:19]):
            return None
        s = int(text[17:19])
        i = 19
    ns = 0
    if i < n and text[i] in ".,":
        ns, i = read_fraction(text, i)
    zone: tzinfo | None = tz
    if i < n:
        c = text[i]
        if c in "Zz":
            zone = UTC
            i += 1
        elif c in "+-":
            k = i + 1
            while k < n and k < i + 7 and text[k] in "0123456789:":
                k += 1
            zone = offset_tz(text[i:k], tz)
            i = k
        elif c != " ":
            return None
    if zone is None or (i < n and text[i:].strip()):
        return None
    r = build(y, mo, d, h, mi, s, ns, zone)
    return None if r is None else (r, zone)


def _digits(s: str) -> bool:
    return s.isdigit() and s.isascii()


# Common zone abbreviations (dateutil does not resolve them on its own).
_TZ_NAMES: dict[str, int] = {
    "UTC": 0, "GMT": 0, "Z": 0, "EST": -5 * 3600, "EDT": -4 * 3600, "CST": -6 * 3600, "CDT": -5 * 3600,
    "MST": -7 * 3600, "MDT": -6 * 3600, "PST": -8 * 3600, "PDT": -7 * 3600, "CET": 3600, "CEST": 7200,
    "EET": 7200, "EEST": 3 * 3600, "BST": 3600, "IST": 19800, "JST": 9 * 3600,
}


_FALLBACK: dict[tuple[str, tzinfo, float], tuple[int, tzinfo] | None] = {}


def parse_fallback(text: str, tz: tzinfo = UTC) -> tuple[int, tzinfo] | None:
    """Slow path for odd formats: python-dateutil (imported lazily). A service writes the same
    odd stamp on many lines of a second, and a dateutil parse costs more than the rest of the
    line (37% of the logfmt lines' time in bench/mix.py's mix, for 4% of them): answers are
    kept per minute (dateutil fills a missing date with today's, so none outlives it long)."""
    if not text or len(text) > 64:
        return None
    r = parse_iso(text, tz)
    if r is not None:
        return r
    key = (text, tz, _time.time() // 60)
    try:
        return _FALLBACK[key]
    except KeyError:
        pass
    r = _parse_dateutil(text, tz)
    if len(_FALLBACK) >= 1024:  # bounded: the texts come from the input
        _FALLBACK.clear()
    _FALLBACK[key] = r
    return r


def _parse_dateutil(text: str, tz: tzinfo) -> tuple[int, tzinfo] | None:
    try:
        from dateutil import parser as _dp  # lazy: only odd formats pay for it

        with warnings.catch_warnings():  # unknown zone names: taken as tz, no warning spam
            warnings.simplefilter("ignore")
            stamp = _dp.parse(text, tzinfos=_TZ_NAMES)
        delta = stamp.utcoffset()
        if delta is not None and delta % _MINUTE:
            return None  # an offset with seconds: not a zone we can trust (see parse_iso)
        return from_datetime(stamp, tz), stamp.tzinfo or tz
    except (ValueError, OverflowError, TypeError, ImportError, LookupError):
        return None


def reference_epoch(source_time: datetime | None) -> float:
    """Reference instant (epoch seconds) for year inference.

    Uses ``source_time``; without one, the wall clock (the only clock read in
    this package, and only for year-less stamps with no source_time)."""
    if source_time is None:
        return _time.time()
    if source_time.tzinfo is None:
        source_time = source_time.replace(tzinfo=UTC)
    return (source_time - _EPOCH) // _US / 1e6


def build_yearless(mo: int, d: int, h: int, mi: int, s: int, ns: int, tz: tzinfo, ref: float) -> int | None:
    """Resolve a year-less stamp: the year that puts it closest to ``ref`` but
    not more than one day after it (handles New Year in both directions)."""
    ry, ref_mo = _year_month_of(ref)
    limit = (ref + 86400) * 1_000_000_000
    # Next year is only possible for a January stamp seen in late December.
    years = (ry + 1, ry, ry - 1) if (mo == 1 and ref_mo == 12) else (ry, ry - 1)
    for y in years:
        r = build(y, mo, d, h, mi, s, ns, tz)
        if r is not None and r <= limit:
            return r
    # e.g. Feb 29 outside a leap year window: search back to the last leap year
    for y in range(ry - 2, ry - 9, -1):
        r = build(y, mo, d, h, mi, s, ns, tz)
        if r is not None:
            return r
    return None


@lru_cache(maxsize=64)
def _year_month_of_day(day: int) -> tuple[int, int]:
    d = _EPOCH + timedelta(days=day)
    return d.year, d.month


def _year_month_of(epoch_s: float) -> tuple[int, int]:
    try:
        return _year_month_of_day(int(epoch_s // 86400))
    except (OverflowError, ValueError):
        return 1970, 1


# Regex text for an ISO-8601 stamp with 8 positional groups:
# year, month, day, hour, minute, second, fraction, offset (Z / ±hh[:]mm).
ISO_PATTERN = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?"
    r"(Z|z|[+-][0-9]{2}:?[0-9]{2})?"
)


_OFFSET_TZ: dict[str, tzinfo | None] = {}  # offset text -> offset_tz's answer; a line's zone repeats


def offset_tz(off: str | None, default: tzinfo) -> tzinfo | None:
    """``Z``/``+hh:mm``/``-hhmm``/``+hh``/None -> tzinfo (cached); None when it is
    not an offset or out of range (hours > 23 or minutes > 59)."""
    if not off:
        return default
    try:
        return _OFFSET_TZ[off]
    except KeyError:
        pass
    zone = _parse_offset(off)
    if len(_OFFSET_TZ) >= 1024:  # bounded: arbitrary input must not grow it forever
        _OFFSET_TZ.clear()
    _OFFSET_TZ[off] = zone
    return zone


def _parse_offset(off: str) -> tzinfo | None:
    if off in ("Z", "z"):
        return UTC
    o = off.replace(":", "", 1) if off[3:4] == ":" else off
    if len(o) == 3:
        o += "00"
    if len(o) != 5 or o[0] not in "+-" or not _digits(o[1:]):
        return None
    oh, om = int(o[1:3]), int(o[3:5])
    if oh > 23 or om > 59:
        return None
    minutes = oh * 60 + om
    return fixed_tz(-minutes if o[0] == "-" else minutes)


def set_iso_groups(out: dict[str, Any], g: tuple[str | None, ...], tz: tzinfo) -> bool:
    """Store a stamp from the 8 groups of :data:`ISO_PATTERN`."""
    y, mo, d, hh, mm, ss, frac, off = g
    zone = offset_tz(off, tz)
    if zone is None:
        return False
    return set_time(out, int(y or 0), int(mo or 0), int(d or 0), int(hh or 0), int(mm or 0), int(ss or 0),
                    frac_to_ns(frac) if frac else 0, zone)


# An access log repeats each minute's stamp: (day, mon, year, hh, mm, off) -> (ns of its second 0, zone)
_CLF: dict[tuple[str, ...], tuple[int, tzinfo] | None] = {}


def set_clf(out: dict[str, Any], day: str, mon: str, year: str, hh: str, mm: str, ss: str, off: str) -> bool:
    """Common Log Format ``10/Oct/2000:13:55:36 -0700`` pieces (numbers as the CLF regexes match
    them: ASCII digits). The offset is fixed, so a
    second 0-59 adds to its minute's epoch; a leap second takes the full builder."""
    key = (day, mon, year, hh, mm, off)
    try:
        r = _CLF[key]
    except KeyError:
        r = _clf(day, mon, year, hh, mm, "0", off)
        if len(_CLF) >= 4096:  # bounded: arbitrary input must not grow it forever
            _CLF.clear()
        _CLF[key] = r
    if r is None:
        return False
    s = int(ss)
    if not 0 <= s < 60:
        r = _clf(day, mon, year, hh, mm, ss, off)
        if r is None:
            return False
        out[NS], out[ZONE] = r
        return True
    out[NS] = r[0] + s * 1_000_000_000
    out[ZONE] = r[1]
    return True


def _clf(day: str, mon: str, year: str, hh: str, mm: str, ss: str, off: str) -> tuple[int, tzinfo] | None:
    mo = MONTHS.get(mon)
    zone = offset_tz(off, UTC)
    if mo is None or zone is None:
        return None
    ns = build(int(year), mo, int(day), int(hh), int(mm), int(ss), 0, zone)
    return None if ns is None else (ns, zone)


def set_yearless(out: dict[str, Any], mo: int, d: int, hh: int, mm: int, ss: int, ns: int, tz: tzinfo,
                 source_time: datetime | None) -> bool:
    r = build_yearless(mo, d, hh, mm, ss, ns, tz, reference_epoch(source_time))
    if r is None:
        return False
    out[NS] = r
    return True


def apply_source_time(out: dict[str, Any], source_time: datetime | None, tz: tzinfo) -> None:
    """Line without its own stamp: use the record's time (if any)."""
    if source_time is not None:
        out[NS] = from_datetime(source_time, tz)
        out[ZONE] = source_time.tzinfo or tz
