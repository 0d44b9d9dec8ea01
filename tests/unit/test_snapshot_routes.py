"""The /snapshots handlers: arming is off unless LOGSHIP_SNAPSHOT_ARMING, takes JSON only,
and a stored snapshot is rendered inert whatever its stored `text` says."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes import serving
from shipper.config import SnapshotSettings
from shipper.snapshots.http_routes import routes
from shipper.transforms.trigger_rules import RuleError


class FakeTriggers:
    def __init__(self) -> None:
        self.armed: dict[int, Any] = {}

    def arm(self, text: str) -> tuple[int, Any]:
        if "=" not in text:
            raise RuleError("no key=value")
        rid = len(self.armed) + 1
        self.armed[rid] = SimpleNamespace(text=text)
        return rid, self.armed[rid]

    def disarm(self, rid: int) -> bool:
        return self.armed.pop(rid, None) is not None


def _manager(arming: bool) -> Any:
    doc = {"logship.snapshot.id": "s1", "text": "\x1b]52;c;cHduZWQ=\x07 forged", "message": "\x1b[2J", "events": []}

    async def get(sid: str) -> Any:
        return doc if sid == "s1" else None
    return SimpleNamespace(settings=SnapshotSettings(arming=arming), triggers=FakeTriggers(),
                           in_progress=lambda sid: False, get=get)


def _run(manager: Any, fn: Any) -> None:
    async def go() -> None:
        app = web.Application()
        for method, path, handler in routes(manager):
            app.router.add_route(method, path, handler)
        async with serving(app) as url, aiohttp.ClientSession() as s:
            await fn(s, url)
    asyncio.run(go())


def test_arming_off_by_default_refuses_arm_and_disarm() -> None:
    m = _manager(arming=False)

    async def check(s: aiohttp.ClientSession, base: str) -> None:
        async with s.post(base + "/snapshots/arm", json={"rule": "level=error"}) as r:
            assert r.status == 403 and "LOGSHIP_SNAPSHOT_ARMING" in (await r.json())["error"]
        async with s.delete(base + "/snapshots/rules/1", json={}) as r:
            assert r.status == 403
    _run(m, check)
    assert m.triggers.armed == {}


def test_arming_on_takes_json_rules() -> None:
    m = _manager(arming=True)

    async def check(s: aiohttp.ClientSession, base: str) -> None:
        async with s.post(base + "/snapshots/arm", data=b"level=error") as r:
            assert r.status == 400
        async with s.post(base + "/snapshots/arm", json={"rule": "bad"}) as r:
            assert r.status == 400
        async with s.post(base + "/snapshots/arm", json={"rule": "level=error"}) as r:
            assert r.status == 200 and (await r.json()) == {"id": 1, "rule": "level=error"}
        async with s.delete(base + "/snapshots/rules/1", json={}) as r:
            assert r.status == 200
    _run(m, check)
    assert m.triggers.armed == {}


def test_snapshot_text_is_rendered_inert() -> None:
    async def check(s: aiohttp.ClientSession, base: str) -> None:
        async with s.get(base + "/snapshots/s1") as r:
            text = await r.text()
        assert r.status == 200 and "\x1b" not in text and "forged" not in text and "\\x1b[2J" in text
    _run(_manager(arming=False), check)
