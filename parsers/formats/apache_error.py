"""Apache httpd error log, 2.2 and 2.4 styles::

    [Wed Jul 30 20:07:49.180019 2014] [suexec:notice] [pid 28262] AH01232: msg
    [Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] msg
    [01/Mar/2021:12:00:19 +0000] [mod:alert] [pid 4803:tid 3814] [client 1.2.3.4:24259] msg

Stamps without offset are taken in ``tz``.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from .. import levels
from ..numbers import put_int, small_int
from ..timestamps import MONTHS, build, frac_to_ns, parse_iso, set_clf

_RX = re.compile(
    r"\[([^\]]{19,40})\] \[(?:([^:\]\s]+):)?([a-z]+[0-9]?)\]"
    r"(?: \[pid ([0-9]+)(?::tid ([0-9]+))?\])?(?: \[client ([^\]]+)\])? ?(.*)",
    re.DOTALL,
)
_CTIME = re.compile(
    r"[A-Za-z]{3} ([A-Za-z]{3}) +([0-9]{1,2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))? ([0-9]{4})$")
_CLF = re.compile(r"([0-9]{2})/([A-Za-z]{3})/([0-9]{4}):([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-][0-9]{4})$")


def _set_time(out: dict[str, Any], text: str, tz: tzinfo) -> bool:
    m = _CTIME.match(text)
    if m is not None:
        mon, d, hh, mm, ss, frac, y = m.groups()
        mo = MONTHS.get(mon)
        ns = None if mo is None else build(int(y), mo, int(d), int(hh), int(mm), int(ss),
                                           frac_to_ns(frac) if frac else 0, tz)
        if ns is None:
            return False
        out["logship.timestamp_ns"] = ns
        return True
    m = _CLF.match(text)
    if m is not None:
        return set_clf(out, *m.groups())
    stamp = parse_iso(text, tz)  # "[2021-06-04 15:40:27.138633]" (custom ErrorLogFormat)
    if stamp is None:
        return False
    out["logship.timestamp_ns"], out["@timestamp"] = stamp
    return True


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    m = _RX.match(line)
    if m is None:
        return None
    stamp, module, level, pid, tid, client, msg = m.groups()
    out: dict[str, Any] = {"message": msg, "event.dataset": "apache.error", "event.original": line}
    if not _set_time(out, stamp, tz):
        return None
    lvl = levels.normalize(level) or ("trace" if level.startswith("trace") else None)
    if lvl is not None:
        out["log.level"] = lvl
    if module:
        out["apache.error.module"] = module
    put_int(out, "process.pid", pid)
    put_int(out, "process.thread.id", tid)
    if client:
        host, sep, port = client.rpartition(":")
        if sep and small_int(port) is not None and (host.count(":") != 1):  # "ip:port" or "v6:...:port"
            out["source.address"] = host
            out["source.port"] = int(port)
        else:
            out["source.address"] = client
    return out
