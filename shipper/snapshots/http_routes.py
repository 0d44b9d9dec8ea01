"""HTTP handlers of the snapshots, registered on the shipper's server (shipper/runtime/http.py):

- `GET /snapshots/{id}`        the snapshot as sysdig-style text (Kibana links here); `?format=json` the document
- `POST /snapshots/arm`        body `{"rule": "container=web and message~Database"}` (application/json);
                               200 {"id", "rule"}, 400 + why
- `GET /snapshots/rules`       the run-time rules
- `DELETE /snapshots/rules/{id}`

Arming and disarming answer 403 unless LOGSHIP_SNAPSHOT_ARMING is on: a rule makes the probe copy
a thread's syscall data into Elasticsearch, so changing the rules at run time is opt-in. Who may
call at all is decided by shipper/runtime/http.py (the control socket, or TCP with the token)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from shipper.snapshots.render import render
from shipper.transforms.trigger_rules import RuleError


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


def routes(manager: Any) -> list[tuple[str, str, Any]]:
    async def show(request: web.Request) -> web.Response:
        sid = request.match_info["id"]
        if manager.in_progress(sid):
            return web.Response(status=202, text=f"snapshot {sid} is being taken (its after-window is still open)\n")
        try:
            doc = await manager.get(sid)
        except Exception as exc:  # noqa: BLE001 - ES unreachable: say so, do not 500 with a trace
            return web.Response(status=503, text=f"cannot read snapshot {sid}: {exc}\n")
        if doc is None:
            return web.Response(status=404, text=f"no snapshot {sid}\n")
        if request.query.get("format") == "json":
            return _json(doc)
        # Rendered again rather than the stored `text`: documents stored before the sanitizer was applied
        # (or written by anyone with write access to the index) must not reach a terminal raw.
        return web.Response(text=render(doc))

    def arming_off() -> web.Response | None:
        if manager.settings.arming:
            return None
        return _json({"error": "run-time rules are off (set LOGSHIP_SNAPSHOT_ARMING=true to allow them)"}, 403)

    async def arm(request: web.Request) -> web.Response:
        if (off := arming_off()) is not None:
            return off
        try:
            body = orjson.loads(await request.read())
            text = body["rule"].strip()
        except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
            return _json({"error": 'expected a JSON body {"rule": "..."}'}, 400)
        try:
            rid, rule = manager.triggers.arm(text)
        except RuleError as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"id": rid, "rule": rule.text})

    async def rules(request: web.Request) -> web.Response:
        return _json([{"id": rid, "rule": r.text} for rid, r in manager.triggers.armed.items()])

    async def disarm(request: web.Request) -> web.Response:
        if (off := arming_off()) is not None:
            return off
        try:
            rid = int(request.match_info["id"])
        except ValueError:
            return _json({"error": "rule id must be an integer"}, 400)
        if not manager.triggers.disarm(rid):
            return _json({"error": f"no rule {rid}"}, 404)
        return _json({"id": rid, "removed": True})

    return [("POST", "/snapshots/arm", arm), ("GET", "/snapshots/rules", rules),
            ("DELETE", "/snapshots/rules/{id}", disarm), ("GET", "/snapshots/{id}", show)]
