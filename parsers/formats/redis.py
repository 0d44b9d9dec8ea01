"""Redis server log, all historic shapes::

    27066:M 30 Jul 2019 20:22:18.877 * msg      (3.x+: pid:role, optional year)
    [27066] 30 Jul 20:22:18.877 # msg           (2.x)
    30 Jul 20:22:18 . msg                        (1.x)

Level symbols as Filebeat reads them: ``.`` debug, ``-`` verbose (-> debug),
``*`` notice, ``#`` warning.  Role letter -> ``redis.log.role``.  Year-less
stamps get their year from ``source_time``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from ..numbers import put_int
from ..timestamps import MONTHS, build, frac_to_ns, from_epoch, set_yearless

_RX = re.compile(
    r"(?:([0-9]+):([A-Z]) |\[([0-9]+)\] )?([0-9]{1,2}) ([A-Za-z]{3}) (?:([0-9]{4}) )?"
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))? ([.*#-]) (.*)",
    re.DOTALL,
)
_SIGNAL = re.compile(r"([0-9]+):signal-handler \(([0-9]{9,11})\) (.*)", re.DOTALL)  # epoch-stamped
_LEVELS = {".": "debug", "-": "debug", "*": "notice", "#": "warning"}
_ROLES = {"M": "master", "S": "slave", "C": "child", "X": "sentinel"}


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    m = _RX.match(line)
    if m is None:
        return _signal_handler(line)
    pid, role, pid2, d, mon, y, hh, mm, ss, frac, sym, msg = m.groups()
    mo = MONTHS.get(mon)
    if mo is None:
        return None
    out: dict[str, Any] = {"message": msg, "event.dataset": "redis.log", "event.original": line,
                           "log.level": _LEVELS[sym]}
    ns = frac_to_ns(frac) if frac else 0
    if y:
        r = build(int(y), mo, int(d), int(hh), int(mm), int(ss), ns, tz)
        if r is None:
            return None
        out["logship.timestamp_ns"] = r
    elif not set_yearless(out, mo, int(d), int(hh), int(mm), int(ss), ns, tz, source_time):
        return None
    pid = pid or pid2
    put_int(out, "process.pid", pid)
    if role:
        out["redis.log.role"] = _ROLES.get(role, role)
    return out


def _signal_handler(line: str) -> dict[str, Any] | None:
    m = _SIGNAL.match(line)
    if m is None:
        return None
    pid, epoch, msg = m.groups()
    out: dict[str, Any] = {"message": msg, "event.dataset": "redis.log", "event.original": line}
    put_int(out, "process.pid", pid)
    r = from_epoch(int(epoch))
    if r is not None:
        out["logship.timestamp_ns"], out["@timestamp"] = r, UTC
    return out
