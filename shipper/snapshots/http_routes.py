"""HTTP handlers of the snapshots, registered on the shipper's server (shipper/runtime/http.py):

- `GET /snapshots/{id}`        the snapshot as sysdig-style text (Kibana links here); `?format=json` the document
- `POST /snapshots/arm`        body: a rule (`container=web and message~Database`); 200 {"id", "rule"}, 400 + why
- `GET /snapshots/rules`       the run-time rules
- `DELETE /snapshots/rules/{id}`"""

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
        return web.Response(text=doc.get("text") or render(doc))

    async def arm(request: web.Request) -> web.Response:
        text = (await request.text()).strip()
        try:
            rid, rule = manager.triggers.arm(text)
        except RuleError as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"id": rid, "rule": rule.text})

    async def rules(request: web.Request) -> web.Response:
        return _json([{"id": rid, "rule": r.text} for rid, r in manager.triggers.armed.items()])

    async def disarm(request: web.Request) -> web.Response:
        try:
            rid = int(request.match_info["id"])
        except ValueError:
            return _json({"error": "rule id must be an integer"}, 400)
        if not manager.triggers.disarm(rid):
            return _json({"error": f"no rule {rid}"}, 404)
        return _json({"id": rid, "removed": True})

    return [("POST", "/snapshots/arm", arm), ("GET", "/snapshots/rules", rules),
            ("DELETE", "/snapshots/rules/{id}", disarm), ("GET", "/snapshots/{id}", show)]
