"""The index names, in one place: daily indices `<prefix>-YYYY.MM.DD` for the log lines,
`<prefix>-deadletter-YYYY.MM.DD` and `<prefix>-snapshots-YYYY.MM.DD` beside them. The day is
the UTC day of the line's write time (daily indices, not data streams: see ARCHITECTURE.md)."""

from __future__ import annotations

import time

DAY_NS = 86_400 * 1_000_000_000
DEADLETTER, SNAPSHOTS = "deadletter", "snapshots"  # the kinds beside the log lines (which have none)


def day_of(time_ns: int) -> str:
    """The UTC day of an epoch-ns time, as the index names spell it: YYYY.MM.DD."""
    return time.strftime("%Y.%m.%d", time.gmtime(time_ns // 1_000_000_000))


def index_for_day(prefix: str, day: str, kind: str = "") -> str:
    return f"{prefix}-{kind}-{day}" if kind else f"{prefix}-{day}"


def daily_index(prefix: str, time_ns: int, kind: str = "") -> str:
    return index_for_day(prefix, day_of(time_ns), kind)


def index_pattern(prefix: str, kind: str = "") -> str:
    """Every daily index of a kind (for the log lines: every index under the prefix)."""
    return f"{prefix}-{kind}-*" if kind else f"{prefix}-*"
