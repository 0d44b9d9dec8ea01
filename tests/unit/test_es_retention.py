"""Retention: the ILM policies and templates that name them, ILM detection and policy put on
canned answers (no ILM in the integration-test distribution), and which indices expire."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.fakes import serving
from shipper.config import ElasticsearchSettings
from shipper.sinks.elasticsearch import retention as r
from shipper.sinks.elasticsearch.templates import index_templates

S = ElasticsearchSettings(index_prefix="p")
TODAY = dt.date(2026, 12, 1)
# What the integration-test distribution (8.19.9, no x-pack-ilm) answers to GET _ilm/status.
NO_ILM = (405, {"error": "Incorrect HTTP method for uri [/_ilm/status] and method [GET], allowed: [POST]",
                "status": 405})


def test_policies_default_ages_and_kept_kinds():
    pols = r.ilm_policies(S)
    assert {n: p["policy"]["phases"]["delete"]["min_age"] for n, p in pols.items()} == \
        {"p-logs": "30d", "p-deadletter": "30d", "p-snapshots": "7d"}
    assert all(p["policy"]["phases"]["delete"]["actions"] == {"delete": {}} for p in pols.values())
    assert r.ilm_policies(ElasticsearchSettings(index_prefix="p", snapshot_retention_days=0)).keys() == \
        {"p-logs", "p-deadletter"}
    assert r.ilm_policies(S) == pols  # stable hash: a second setup changes nothing
    assert r.ilm_policies(ElasticsearchSettings(index_prefix="p", retention_days=9))["p-logs"] != pols["p-logs"]


def test_templates_name_their_policy_only_with_ilm():
    with_ilm, without = index_templates(S, ilm=True), index_templates(S)
    for name in ("p-logs", "p-deadletter", "p-snapshots"):
        assert with_ilm[name]["template"]["settings"]["index.lifecycle.name"] == name
        assert "index.lifecycle.name" not in without[name]["template"]["settings"]
        assert with_ilm[name]["_meta"]["logship_hash"] != without[name]["_meta"]["logship_hash"]


def test_expired_by_name_date_and_kind():
    names = ["p-2026.10.31", "p-2026.11.01", "p-2026.11.30", "p-deadletter-2026.10.30", "p-deadletter-2026.11.02",
             "p-snapshots-2026.11.23", "p-snapshots-2026.11.24", "p-other-2020.01.01", "q-2020.01.01",
             "p-2020.13.01", "p-2020.01.01-x", "p-logs"]
    assert r.expired(S, names, TODAY) == ["p-2026.10.31", "p-deadletter-2026.10.30", "p-snapshots-2026.11.23"]
    keep_all = ElasticsearchSettings(index_prefix="p", retention_days=0, deadletter_retention_days=0,
                                     snapshot_retention_days=0)
    assert r.expired(keep_all, names, TODAY) == []


def test_oldest_per_kind():
    names = ["p-2026.11.30", "p-2026.11.02", "p-deadletter-2026.11.20", "x-2000.01.01"]
    assert r.oldest(S, names) == {"logs": ("p-2026.11.02", dt.date(2026, 11, 2)),
                                  "deadletter": ("p-deadletter-2026.11.20", dt.date(2026, 11, 20))}


class FakeES:
    def __init__(self, ilm: bool) -> None:
        self.ilm = ilm
        self.policies: dict[str, Any] = {}
        self.puts = 0

    async def status(self, request: web.Request) -> web.Response:
        if self.ilm:
            return web.json_response({"operation_mode": "RUNNING"})
        return web.json_response(NO_ILM[1], status=NO_ILM[0])

    async def get_policy(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.policies:
            return web.json_response({"error": {"type": "resource_not_found_exception"}}, status=404)
        return web.json_response({name: {"version": 1, "policy": self.policies[name]}})

    async def put_policy(self, request: web.Request) -> web.Response:
        self.puts += 1
        self.policies[request.match_info["name"]] = (await request.json())["policy"]
        return web.json_response({"acknowledged": True})


@contextlib.asynccontextmanager
async def fake_es(ilm: bool) -> AsyncIterator[tuple[FakeES, str]]:
    f = FakeES(ilm)
    app = web.Application()
    app.router.add_get("/_ilm/status", f.status)
    app.router.add_get("/_ilm/policy/{name}", f.get_policy)
    app.router.add_put("/_ilm/policy/{name}", f.put_policy)
    async with serving(app) as url:
        yield f, url


def prepare(ilm: bool, mode: str = "auto", runs: int = 1) -> tuple[list[r.RetentionPlan], FakeES]:
    async def go() -> tuple[list[r.RetentionPlan], FakeES]:
        async with fake_es(ilm) as (f, url), aiohttp.ClientSession() as session:
            s = ElasticsearchSettings(url=(url,), index_prefix="p", retention=mode)
            return [await r.prepare(session, s) for _ in range(runs)], f
    return asyncio.run(go())


def test_ilm_cluster_gets_the_policies_once():
    (first, second), f = prepare(True, runs=2)
    assert first.ilm and not first.shipper_deletes and first.changed == ["p-logs", "p-deadletter", "p-snapshots"]
    assert second.changed == [] and f.puts == 3
    assert f.policies["p-snapshots"]["phases"]["delete"]["min_age"] == "7d"


def test_no_ilm_means_the_shipper_deletes():
    (plan,), f = prepare(False)
    assert not plan.ilm and plan.shipper_deletes and f.puts == 0 and "405" in plan.ilm_status


def test_ilm_asked_of_a_cluster_without_fails_clearly():
    with pytest.raises(RuntimeError, match="LOGSHIP_ES_RETENTION=ilm but the cluster has no ILM"):
        prepare(False, mode="ilm")


def test_shipper_mode_skips_ilm_and_off_does_nothing():
    (plan,), f = prepare(True, mode="shipper")
    assert not plan.ilm and plan.shipper_deletes and f.puts == 0
    (plan,), f = prepare(True, mode="off")
    assert not plan.ilm and not plan.shipper_deletes and f.puts == 0
