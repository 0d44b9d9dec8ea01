"""Apache / nginx access logs: Common Log Format and Combined (plus nginx's
trailing ``"$http_x_forwarded_for"`` and other extra fields, which are ignored).

Apache and nginx write the same line shapes, so auto-detection cannot tell them
apart: lines with extra fields after the user agent (nginx "main" and ingress
formats) are reported as ``nginx.access``, others as ``apache.access``;
pass ``hint`` to force the dataset.  ``message`` is the whole line (no field
of an access line is a "message"), so no ``event.original`` is added.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from ..numbers import is_ip, put_int
from ..timestamps import set_clf

_Q = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_RX = re.compile(
    r"(.{1,512}?) (\S+) (\S+) \["
    r"([0-9]{2})/([A-Za-z]{3})/([0-9]{4}):([0-9]{2}):([0-9]{2}):([0-9]{2}) "
    r"([+-][0-9]{4})\] " + _Q + r" ([0-9]{3}) ([0-9]+|-)(?: " + _Q + " " + _Q + r")?(.*)",
    re.DOTALL,
)


def parse(
    line: str, source_time: datetime | None, tz: tzinfo, dataset: str | None = None
) -> dict[str, Any] | None:
    m = _RX.match(line)
    if m is None:
        return None
    (client, _ident, user, day, mon, year, hh, mm, ss, off, request, status, size, referrer, agent,
     rest) = m.groups()
    if dataset is None:
        dataset = "nginx.access" if rest else "apache.access"
    out: dict[str, Any] = {"message": line, "event.dataset": dataset}
    if not set_clf(out, day, mon, year, hh, mm, ss, off):
        return None
    # The first field may be an X-Forwarded-For list (quoted or not, possibly followed
    # by the peer address): its first entry is the original client.
    address = client.lstrip('"').split(",", 1)[0].split(" ", 1)[0].rstrip('"')
    out["source.address"] = address
    if is_ip(address):  # ECS (and Filebeat) set both when the client is an address, not a name
        out["source.ip"] = address
    if user != "-":
        out["user.name"] = user
    parts = request.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/"):
        out["http.request.method"] = parts[0]
        out["url.original"] = parts[1]
        out["http.version"] = parts[2][5:]
    elif len(parts) == 2 and parts[0].isupper():
        out["http.request.method"], out["url.original"] = parts
    out["http.response.status_code"] = int(status)
    if size != "-":
        put_int(out, "http.response.body.bytes", size)
    if referrer is not None:
        if referrer != "-":
            out["http.request.referrer"] = referrer
        if agent != "-":
            out["user_agent.original"] = agent
    return out
