"""`logship setup`'s Kibana import against a fake that enforces the recorded contract of
Kibana's saved-objects API (tests/contracts/kibana_import.json, from Kibana's docs)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.fakes import serving
from shipper import config
from shipper.cli import kibana
from shipper.cli.setup import import_kibana

CONTRACT = json.loads((Path(__file__).resolve().parents[1] / "contracts" / "kibana_import.json").read_text())


class FakeKibana:
    """Answers /api/status (unavailable for the first `starting` calls) and _import, refusing
    any request that breaks the contract the way Kibana does."""

    def __init__(self, starting: int = 0) -> None:
        self.starting = starting
        self.stored: dict[tuple[str, str], dict[str, Any]] = {}
        self.imports: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.refuse: set[str] = set()  # ids answered with an error, as Kibana does for a conflict

    async def status(self, request: web.Request) -> web.Response:
        c = CONTRACT["status"]
        if self.starting > 0:
            self.starting -= 1
            return web.json_response(c["response_starting"]["body"], status=c["response_starting"]["status"])
        return web.json_response(c["response_available"]["body"])

    async def import_(self, request: web.Request) -> web.Response:
        c = CONTRACT["import"]
        self.auth.append(request.headers.get("Authorization"))
        if "kbn-xsrf" not in request.headers:
            return web.json_response(c["response_missing_xsrf"]["body"], status=400)
        if not request.content_type.startswith(c["request"]["content_type"]):
            return web.json_response({"statusCode": 415, "message": "expected multipart"}, status=415)
        form = await request.post()
        part = form.get(c["request"]["multipart_field"])
        if not isinstance(part, web.FileField) or not part.filename.endswith(c["request"]["filename_suffix"]):
            return web.json_response(c["response_bad_file"]["body"], status=415)
        objects = [json.loads(line) for line in part.file.read().decode().splitlines() if line.strip()]
        overwrite = request.query.get("overwrite") == "true"
        self.imports.append({"overwrite": overwrite, "count": len(objects)})
        conflicts = [o for o in objects if (o["type"],
                                            o["id"]) in self.stored and not overwrite or o["id"] in self.refuse]
        if conflicts:
            return web.json_response({"success": False, "successCount": 0, "errors": [
                {"id": o["id"], "type": o["type"], "error": {"type": "conflict"}} for o in conflicts]})
        for o in objects:
            assert {"type", "id", "attributes"} <= set(o)
            self.stored[(o["type"], o["id"])] = o
        return web.json_response({"success": True, "successCount": len(objects),
                                  "successResults": [{"type": o["type"], "id": o["id"], "meta": {}} for o in objects]})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/status", self.status)
        app.router.add_post("/api/saved_objects/_import", self.import_)
        return app


def _cfg(url: str, **extra: str) -> config.Config:
    return config.load(env={"LOGSHIP_KIBANA_URL": url, "LOGSHIP_KIBANA_SETUP_TIMEOUT_S": "20", **extra})


def _run(fake: FakeKibana, **extra: str) -> list[int]:
    async def go() -> list[int]:
        async with serving(fake.app()) as url:
            cfg = _cfg(url, **extra)
            return [await import_kibana(cfg), await import_kibana(cfg)]
    return asyncio.run(go())


def test_import_follows_the_contract_and_is_idempotent() -> None:
    fake = FakeKibana()
    counts = _run(fake, LOGSHIP_KIBANA_SHIPPER_URL="http://shipper.lan:8080", LOGSHIP_ES_INDEX_PREFIX="acme")
    n = len(kibana.load_objects())
    assert counts == [n, n]  # the second run overwrites the same ids
    assert fake.imports == [{"overwrite": True, "count": n}] * 2
    assert len(fake.stored) == n
    dv = fake.stored[("index-pattern", kibana.DATA_VIEW_ID)]["attributes"]
    assert dv["title"] == "acme-*,-acme-deadletter-*,-acme-snapshots-*"
    assert "http://shipper.lan:8080/snapshots/{{value}}" in dv["fieldFormatMap"]


def test_import_waits_until_kibana_is_available_and_sends_credentials() -> None:
    fake = FakeKibana(starting=2)
    _run(fake, LOGSHIP_ES_USERNAME="elastic", LOGSHIP_ES_PASSWORD="s3cret")
    assert fake.starting == 0 and fake.imports
    assert fake.auth[0] is not None and fake.auth[0].startswith("Basic ")


def test_contract_fake_rejects_what_kibana_rejects() -> None:
    async def go() -> tuple[int, int]:
        import aiohttp
        fake = FakeKibana()
        async with serving(fake.app()) as url:
            async with aiohttp.ClientSession() as s:
                form = aiohttp.FormData()
                form.add_field("file", b"{}\n", filename="x.ndjson")
                async with s.post(url + "/api/saved_objects/_import", data=form) as r:
                    no_xsrf = r.status
                form = aiohttp.FormData()
                form.add_field("file", b"{}\n", filename="x.json")
                async with s.post(url + "/api/saved_objects/_import", data=form, headers={"kbn-xsrf": "1"}) as r:
                    bad_name = r.status
            return no_xsrf, bad_name
    assert asyncio.run(go()) == (400, 415)


def test_kibana_refusal_is_reported_with_the_objects() -> None:
    fake = FakeKibana()
    fake.refuse = {"logship-lens-rate"}
    with pytest.raises(kibana.KibanaError, match="lens/logship-lens-rate"):
        _run(fake)


def test_wait_ready_gives_up_with_the_last_answer() -> None:
    async def go() -> None:
        import aiohttp
        fake = FakeKibana(starting=1000)
        async with serving(fake.app()) as url:
            async with aiohttp.ClientSession() as s:
                with pytest.raises(kibana.KibanaError, match="HTTP 503"):
                    await kibana.wait_ready(s, url, timeout_s=1.5)
    asyncio.run(go())
