"""Access control of the shipper's HTTP server on real sockets: the control socket (0600,
every route), TCP (/health and /metrics only, the rest with the token), the Host allow-list,
Origin and content-type checks on state changes. Each refusal changes nothing."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from shipper.config import HttpSettings
from shipper.runtime.http import HttpServer, LogHub, host_name, token_matches

TOKEN = "s3cret-token"


def test_host_name_and_token_parsing() -> None:
    assert host_name("LocalHost:8080") == "localhost" and host_name("[::1]:80") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1" and host_name("::1") == "::1"
    assert token_matches(f"Bearer {TOKEN}", TOKEN)
    assert token_matches("Basic " + base64.b64encode(f"anyone:{TOKEN}".encode()).decode(), TOKEN)
    no_colon = "Basic " + base64.b64encode(TOKEN.encode()).decode()
    for bad in ("", "Bearer", "Bearer x", f"Token {TOKEN}", "Basic !!!", no_colon):
        assert not token_matches(bad, TOKEN), bad


class Calls:
    def __init__(self) -> None:
        self.changed = 0

    async def change(self, request: web.Request) -> web.Response:
        self.changed += 1
        return web.json_response({"ok": True})


async def _with_server(tmp: Path, settings: HttpSettings, fn: Any) -> Calls:
    calls = Calls()
    server = HttpServer(settings, LogHub(), control_socket=tmp / "state" / "control.sock")
    server.add_routes([("POST", "/snapshots/arm", calls.change), ("DELETE", "/snapshots/rules/{id}", calls.change)])
    await server.start()
    try:
        await fn(server, calls)
    finally:
        await server.stop()
    assert not (tmp / "state" / "control.sock").exists()  # removed at stop
    return calls


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_tcp_without_token_serves_health_and_metrics_only(tmp_path: Path) -> None:
    async def check(server: HttpServer, calls: Calls) -> None:
        base = f"http://127.0.0.1:{server.bound[1]}"  # type: ignore[index]
        async with aiohttp.ClientSession() as s:
            for path in ("/health", "/metrics"):
                async with s.get(base + path) as r:
                    assert r.status in (200, 503) and r.status != 403, path
            for method, path in (("GET", "/logs"), ("GET", "/snapshots/x"), ("POST", "/snapshots/arm"),
                                 ("DELETE", "/snapshots/rules/1")):
                async with s.request(method, base + path, json={"rule": "level=error"},
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                    assert r.status == 403, (method, path, r.status)
        assert calls.changed == 0
    _run(_with_server(tmp_path, HttpSettings(addr="127.0.0.1:0"), check))


def test_tcp_with_token_host_origin_and_content_type(tmp_path: Path) -> None:
    async def check(server: HttpServer, calls: Calls) -> None:
        base = f"http://127.0.0.1:{server.bound[1]}"  # type: ignore[index]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as s:
            for method, path in (("GET", "/logs"), ("GET", "/snapshots/x"), ("POST", "/snapshots/arm"),
                                 ("DELETE", "/snapshots/rules/1")):
                basic_wrong = {"Authorization": "Basic " + base64.b64encode(b"u:wrong").decode()}
                for headers in ({}, {"Authorization": "Bearer wrong"}, basic_wrong):
                    async with s.request(method, base + path, json={}, headers=headers) as r:
                        assert r.status == 401, (method, path, headers)
                        assert r.headers["WWW-Authenticate"].startswith("Basic")
            # DNS rebinding: a page at evil.example resolved to 127.0.0.1; every route, token or not.
            for path in ("/health", "/metrics", "/logs"):
                async with s.get(base + path, headers={"Host": "evil.example:8080", **auth}) as r:
                    assert r.status == 421, path
            # A browser form / fetch: any Origin on a state change is refused, even with the token.
            async with s.post(base + "/snapshots/arm", json={"rule": "x"},
                              headers={"Origin": "http://127.0.0.1:5601", **auth}) as r:
                assert r.status == 403
            # A CORS "simple request": text/plain POST.
            async with s.post(base + "/snapshots/arm", data=b'{"rule": "x"}',
                              headers={"Content-Type": "text/plain", **auth}) as r:
                assert r.status == 415
            assert calls.changed == 0
            async with s.post(base + "/snapshots/arm", json={"rule": "x"}, headers=auth) as r:
                assert r.status == 200
            assert calls.changed == 1
    _run(_with_server(tmp_path, HttpSettings(addr="127.0.0.1:0", token=TOKEN), check))


def test_control_socket_is_private_and_serves_every_route(tmp_path: Path) -> None:
    async def check(server: HttpServer, calls: Calls) -> None:
        path = server.socket_path
        assert path is not None
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as s:
            async with s.get("http://localhost/metrics") as r:
                assert r.status == 200
            async with s.post("http://localhost/snapshots/arm", data=b"x", headers={"Content-Type": "text/plain"}) as r:
                assert r.status == 415
            async with s.post("http://localhost/snapshots/arm", json={}, headers={"Origin": "null"}) as r:
                assert r.status == 403
            assert calls.changed == 0
            async with s.post("http://localhost/snapshots/arm", json={"rule": "x"}) as r:
                assert r.status == 200
        assert calls.changed == 1
    _run(_with_server(tmp_path, HttpSettings(addr=""), check))


def test_stale_socket_replaced_and_non_socket_left_alone(tmp_path: Path) -> None:
    import socket
    state = tmp_path / "state"
    state.mkdir()
    old = socket.socket(socket.AF_UNIX)
    old.bind(str(state / "control.sock"))
    old.close()

    async def check(server: HttpServer, calls: Calls) -> None:
        assert server.socket_path is not None
    _run(_with_server(tmp_path, HttpSettings(addr=""), check))

    (state / "control.sock").write_text("not a socket")

    async def check2(server: HttpServer, calls: Calls) -> None:
        assert server.socket_path is None  # refused, logged, and the shipper goes on
    server = HttpServer(HttpSettings(addr=""), LogHub(), control_socket=state / "control.sock")

    async def go() -> None:
        await server.start()
        await check2(server, Calls())
        await server.stop()
    _run(go())
    assert (state / "control.sock").read_text() == "not a socket"
