"""The shipper's HTTP server on a real socket: /metrics parses, /health tells stage and
ES status, /logs streams filtered lines and never blocks the publisher, routes plug in."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

import aiohttp
import orjson
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from shipper.config import ElasticsearchSettings, HttpSettings
from shipper.runtime.http import LOGS_DROPPED, EsProbe, HttpServer, LogFilter, LogHub, parse_addr
from shipper.core.container import Container
from shipper.core.metrics import METRICS
from shipper.core.record import Record

DOC = {"@timestamp": "t", "message": "ERROR boom", "stream": "stdout", "container.name": "web-1",
       "container.id": "abcdef0123456789", "log.level": "error"}
WEB = Container(id="abcdef0123456789", name="web-1", image="i")


def batch(docs: list[dict[str, Any]], container: Container = WEB) -> tuple[list[Record], list[bytes]]:
    """What the pipeline hands the tap: the records and their documents' JSON."""
    return [Record(b"", 0, "stdout", container) for _ in docs], [orjson.dumps(d) for d in docs]


def test_filters() -> None:
    assert LogFilter().matches(DOC)
    assert LogFilter(container="web").matches(DOC)
    assert LogFilter(container="web-*").matches(DOC)
    assert LogFilter(container="abcdef01").matches(DOC)
    assert not LogFilter(container="db").matches(DOC)
    assert LogFilter(level="warning,ERROR").matches(DOC)
    assert not LogFilter(level="info").matches(DOC)
    assert LogFilter(text="boom").matches(DOC) and LogFilter(text="BOOM").matches(DOC)
    assert not LogFilter(text="bang").matches(DOC)


def test_parse_addr() -> None:
    assert parse_addr("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_addr("[::1]:9") == ("::1", 9)
    with pytest.raises(ValueError):
        parse_addr("localhost")


def test_slow_subscriber_loses_lines_counted_and_never_blocks() -> None:
    async def go() -> None:
        hub = LogHub(queue_lines=3)
        assert not hub.active
        sub = hub.subscribe(LogFilter())
        before = METRICS.total(LOGS_DROPPED)
        for _ in range(4):
            hub.publish(*batch([DOC] * 3))  # synchronous: returns at once whatever the reader does
        assert sub is not None and sub.lines == 3 and len(sub.take()) == 3
        assert METRICS.total(LOGS_DROPPED) - before == 9
        hub.unsubscribe(sub)
        assert not hub.active
    asyncio.run(go())


TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _serve(hub: LogHub, **kw: Any) -> HttpServer:
    server = HttpServer(HttpSettings(addr="127.0.0.1:0", token=TOKEN), hub, **kw)
    await server.start()
    assert server.bound
    return server


def port(server: HttpServer) -> int:
    assert server.bound is not None, "the server is not listening"
    return server.bound[1]


def _run(fn: Callable[[str, LogHub, HttpServer], Awaitable[None]], **kw: Any) -> None:
    async def go() -> None:
        hub = LogHub()
        server = await _serve(hub, **kw)
        try:
            await fn(f"http://127.0.0.1:{port(server)}", hub, server)
        finally:
            await server.stop()
    asyncio.run(go())


def test_metrics_endpoint_parses_with_prometheus_client() -> None:
    async def check(url: str, hub: LogHub, server: HttpServer) -> None:
        METRICS.count("logship_lines_in_total", 1, source="docker")
        METRICS.observe("logship_es_bulk_latency_seconds", 0.2)
        async with aiohttp.ClientSession() as s, s.get(url + "/metrics") as r:
            assert r.status == 200 and r.content_type == "text/plain"
            fams = {f.name: f for f in text_string_to_metric_families(await r.text())}
        assert "logship_lines_in" in fams and fams["logship_es_bulk_latency_seconds"].type == "histogram"
    _run(check)


def test_health_reports_stages_and_elasticsearch() -> None:
    stages = {"docker-source": "running", "es-sink": "running"}

    async def check(url: str, hub: LogHub, server: HttpServer) -> None:
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/health") as r:
                body = await r.json()
                assert r.status == 503  # nothing listens on port 9: ES unreachable
                assert body["stages"] == stages and body["elasticsearch"]["reachable"] is False
            server.es = None
            async with s.get(url + "/health") as r:
                assert r.status == 200 and (await r.json())["status"] == "ok"
            stages["es-sink"] = "failed"
            async with s.get(url + "/health") as r:
                assert r.status == 503
    _run(check, stages=lambda: dict(stages), es=EsProbe(ElasticsearchSettings(url=("http://127.0.0.1:9",))))


def test_health_says_degraded_while_writes_are_blocked() -> None:
    from shipper.sinks.elasticsearch.blocks import WriteBlock
    block = WriteBlock()

    async def check(url: str, hub: LogHub, server: HttpServer) -> None:
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/health") as r:
                body = await r.json()
                assert r.status == 200 and body["status"] == "ok" and body["elasticsearch"]["writes_blocked"] is False
            block.refused("cluster_block_exception: flood stage", 5)
            async with s.get(url + "/health") as r:
                body = await r.json()
                assert r.status == 200 and body["status"] == "degraded"  # a restart would not help
                assert body["elasticsearch"]["writes_blocked"] is True and "flood" in body["elasticsearch"]["reason"]
            block.accepted()
            async with s.get(url + "/health") as r:
                assert (await r.json())["status"] == "ok"
    _run(check, stages=lambda: {"es-sink": "running"}, sink=block.status)


def test_logs_streams_filtered_ndjson_and_plain_text() -> None:
    async def check(url: str, hub: LogHub, server: HttpServer) -> None:
        async with aiohttp.ClientSession(headers=AUTH) as s:
            async with s.get(url + "/logs", params={"level": "error"},
                             headers={"Accept": "application/x-ndjson"}) as rj, \
                       s.get(url + "/logs", params={"container": "web"}) as rt:
                for _ in range(100):  # both subscribed?
                    if len(hub.subscribers) == 2:
                        break
                    await asyncio.sleep(0.02)
                hub.publish(*batch([{**DOC, "log.level": "info", "message": "hello"}, DOC]))
                first = json.loads(await asyncio.wait_for(rj.content.readline(), 5))
                assert first["message"] == "ERROR boom"  # the info line was filtered out
                assert await asyncio.wait_for(rt.content.readline(), 5) == b"web-1 stdout hello\n"
        for _ in range(100):  # readers gone: the tap is free again
            if not hub.active:
                break
            await asyncio.sleep(0.02)
        assert not hub.active
    _run(check)


def test_added_routes_are_served_and_late_adds_refused() -> None:
    async def snapshot(request: web.Request) -> web.Response:
        return web.Response(text="snap " + request.match_info["id"])

    async def go() -> None:
        hub = LogHub()
        server = HttpServer(HttpSettings(addr="127.0.0.1:0", token=TOKEN), hub)
        server.add_routes([("GET", "/snapshots/{id}", snapshot)])
        await server.start()
        try:
            async with aiohttp.ClientSession(headers=AUTH) as s, \
                    s.get(f"http://127.0.0.1:{port(server)}/snapshots/x1") as r:
                assert await r.text() == "snap x1"
            with pytest.raises(RuntimeError):
                server.add_routes([("GET", "/late", snapshot)])
        finally:
            await server.stop()
    asyncio.run(go())


def test_empty_addr_means_no_server_and_taken_port_is_not_fatal() -> None:
    async def go() -> None:
        off = HttpServer(HttpSettings(addr=""), LogHub())
        await off.start()
        assert off.bound is None
        first = await _serve(LogHub())
        try:
            clash = HttpServer(HttpSettings(addr=f"127.0.0.1:{port(first)}"), LogHub())
            await clash.start()
            assert clash.bound is None
        finally:
            await first.stop()
    asyncio.run(go())


def test_subscribers_are_bounded_and_get_only_their_containers_runs() -> None:
    async def go() -> None:
        hub = LogHub(queue_lines=100, max_subscribers=2)
        web = hub.subscribe(LogFilter(container="web"))
        everything = hub.subscribe(LogFilter())
        assert web is not None and everything is not None and hub.subscribe(LogFilter()) is None
        db = Container(id="0123456789abcdef", name="db-1", image="i")
        r_web, d_web = batch([DOC, DOC])
        r_db, d_db = batch([{**DOC, "container.name": "db-1"}], db)
        hub.publish(r_web[:1] + r_db + r_web[1:], d_web[:1] + d_db + d_web[1:])
        assert [orjson.loads(d)["container.name"] for d in web.take()] == ["web-1", "web-1"]
        assert len(everything.take()) == 3
        hub.unsubscribe(web)
        assert hub.subscribe(LogFilter(container="db")) is not None
    asyncio.run(go())
