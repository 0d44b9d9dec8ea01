"""nginx error log: ``2024/01/01 12:00:00 [error] 123#0: *1 msg, client: ..., server: ...``.

The ``, key: value`` context nginx appends is moved out of ``message`` into
fields (client -> source.address, request -> http.*, referrer, host -> url.domain,
server/upstream -> nginx.error.*)."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from .. import levels
from ..numbers import put_int
from ..timestamps import build

_RX = re.compile(
    r"([0-9]{4})/([0-9]{2})/([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) \[([a-z]+)\] ([0-9]+)#([0-9]+): "
    r"(?:\*([0-9]+) )?(.*)",
    re.DOTALL,
)
_CTX = re.compile(r', (client|server|request|upstream|host|referrer): ("[^"\\]*(?:\\.[^"\\]*)*"|[^,]*)')


def _context(out: dict[str, Any], msg: str) -> str:
    cut = msg.find(", client: ")
    if cut < 0:
        return msg
    for key, value in _CTX.findall(msg, cut):
        if value[:1] == '"':
            value = value[1:-1]
        if key == "client":
            out["source.address"] = value
        elif key == "request":
            parts = value.split(" ")
            if len(parts) == 3:
                out["http.request.method"], out["url.original"], proto = parts
                if proto.startswith("HTTP/"):
                    out["http.version"] = proto[5:]
        elif key == "referrer":
            out["http.request.referrer"] = value
        elif key == "host":
            out["url.domain"] = value
        else:
            out["nginx.error." + key] = value
    return msg[:cut]


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    m = _RX.match(line)
    if m is None:
        return None
    y, mo, d, hh, mm, ss, level, pid, tid, cid, msg = m.groups()
    r = build(int(y), int(mo), int(d), int(hh), int(mm), int(ss), 0, tz)
    if r is None:
        return None
    out: dict[str, Any] = {"event.dataset": "nginx.error", "event.original": line}
    out["logship.timestamp_ns"] = r
    levels.set_token(out, level)
    put_int(out, "process.pid", pid)
    put_int(out, "process.thread.id", tid)
    put_int(out, "nginx.error.connection_id", cid)
    out["message"] = _context(out, msg)
    return out
