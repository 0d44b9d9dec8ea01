"""Stand-ins the pure-logic tests share: what Elasticsearch, the Docker engine or the sink would do."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
import struct
import time
from typing import Any, cast

from aiohttp import web

from shipper.core.record import Record


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """`app` served on a free loopback port for the block; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = cast(asyncio.Server, site._server)  # aiohttp types it as the abstract base
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


async def drain_spool(sink: Any, poll: float = 0.01, timeout: float = 10) -> None:
    """Runs the sink's replay loop until its spool is empty (or `timeout`), then stops it."""
    replayer = asyncio.create_task(sink._replay_loop())
    deadline = time.monotonic() + timeout
    while sink.spool is not None and not sink.spool.empty and time.monotonic() < deadline:
        await asyncio.sleep(poll)
    replayer.cancel()
    await asyncio.gather(replayer, return_exceptions=True)


def ack(r: Record) -> None:
    """What the sink does once Elasticsearch holds `r`: call its `on_delivered`."""
    assert r.on_delivered is not None, "the record has no ack window"
    r.on_delivered(r)


class BulkAnswer:
    """One canned answer to a POST /_bulk: (status, body), or an exception raised on send."""

    def __init__(self, status: int = 200, body: bytes = b"", exc: BaseException | None = None) -> None:
        self.status, self.body, self.exc = status, body, exc

    async def __aenter__(self) -> BulkAnswer:
        if self.exc is not None:
            raise self.exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self) -> bytes:
        return self.body


class FakeBulkSession:
    """Stands in for the sink's aiohttp session: answers each bulk with the next canned answer
    and keeps the bodies it was sent."""

    def __init__(self, *answers: BulkAnswer) -> None:
        self.answers = list(answers)
        self.sent: list[bytes] = []
        self.urls: list[str] = []

    def post(self, url: str, data: bytes) -> BulkAnswer:
        self.sent.append(data)
        self.urls.append(url)
        return self.answers.pop(0)


class _LogsContent:
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, n: int) -> bytes:
        chunk, self._data = self._data[:n], self._data[n:]
        return chunk


class _LogsResponse:
    def __init__(self, status: int, data: bytes) -> None:
        self.status = status
        self.content = _LogsContent(data)

    async def __aenter__(self) -> _LogsResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def text(self) -> str:
        return self.content._data.decode(errors="replace")


def docker_frames(*entries: tuple[str, str, bytes]) -> bytes:
    """A non-TTY log stream as dockerd sends it: (stream, RFC3339Nano stamp, line) per frame."""
    out = b""
    for stream, stamp, line in entries:
        body = stamp.encode() + b" " + line
        out += bytes([{"stdout": 1, "stderr": 2}[stream], 0, 0, 0]) + len(body).to_bytes(4, "big") + body
    return out


class FakeDockerAPI:
    """Answers what DockerSource asks the engine, from canned containers (inspect bodies) and
    log streams; records every logs request as (cid, since_ns, follow)."""

    def __init__(self, inspect: dict[str, dict[str, Any]], logs: dict[str, bytes] | None = None) -> None:
        self.inspected = inspect
        self.streams = logs or {}
        self.logs_calls: list[tuple[str, int, bool]] = []

    async def inspect(self, cid: str) -> dict[str, Any]:
        if cid not in self.inspected:
            raise LookupError(cid)
        return self.inspected[cid]

    def logs(self, cid: str, *, since_ns: int = 0, follow: bool = True) -> _LogsResponse:
        self.logs_calls.append((cid, since_ns, follow))
        if cid not in self.inspected:
            return _LogsResponse(404, b"")
        return _LogsResponse(200, self.streams.get(cid, b""))


def inspect_body(cid: str, name: str, *, running: bool = False, finished: str = "0001-01-01T00:00:00Z",
                 labels: dict[str, str] | None = None, env: list[str] | None = None) -> dict[str, Any]:
    """The parts of GET /containers/{id}/json that logship reads."""
    return {"Id": cid, "Name": "/" + name, "Image": "sha256:1",
            "Config": {"Image": "local/busybox", "Labels": labels or {}, "Env": env or [], "Tty": False},
            "State": {"Running": running, "Pid": 4242 if running else 0, "FinishedAt": finished}}


# ---- a scripted engine: state changes, attach, logs answers per call ----
def raw_frame(stream: int, payload: bytes) -> bytes:
    """One multiplexed frame around payload (stream 1 stdout, 2 stderr): attach streams, or logs with a stamp in it."""
    return struct.pack(">BxxxI", stream, len(payload)) + payload


class _HeldContent:
    def __init__(self, chunks: list[bytes], hold: asyncio.Event | None = None) -> None:
        self.chunks = list(chunks)
        self.hold = hold  # the stream stays open (a live container) until this is set

    async def read(self, n: int = -1) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.hold is not None:
            await self.hold.wait()
        return b""


class _ScriptedResponse:
    def __init__(self, status: int, chunks: Sequence[bytes] = (), hold: asyncio.Event | None = None,
                 text: str = "") -> None:
        self.status = status
        self.content = _HeldContent(list(chunks), hold)
        self._text = text
        self.closed = False

    def close(self) -> None:
        self.closed = True

    async def text(self) -> str:
        return self._text

    async def __aenter__(self) -> "_ScriptedResponse":
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


class ScriptedDockerAPI:
    """A canned engine whose containers change state during a test: attach streams that stay
    open until told, logs answers (200 or a refusal) popped per call, inspect per state."""

    def __init__(self) -> None:
        self.inspects: dict[str, dict[str, Any]] = {}
        self.attach_chunks: dict[str, list[bytes]] = {}
        self.attach_end: dict[str, asyncio.Event] = {}
        self.attached: dict[str, _ScriptedResponse] = {}  # the last attach response per container
        self.logs_answers: dict[str, list[tuple[int, list[bytes]]]] = {}  # popped per logs call
        self.calls: list[tuple[str, str]] = []

    def container(self, cid: str, *, status: str = "created", auto_remove: bool = True, log_path: str = "",
                  tty: bool = False) -> None:
        self.inspects[cid] = {"Id": cid, "Name": "/" + cid[:6], "Config": {"Image": "img", "Tty": tty},
                              "State": {"Status": status, "Running": status == "running"},
                              "HostConfig": {"AutoRemove": auto_remove, "LogConfig": {"Type": "json-file"}},
                              "LogPath": log_path}

    def set_status(self, cid: str, status: str) -> None:
        if status == "removed":
            self.inspects.pop(cid, None)
        else:
            st = self.inspects[cid]["State"]
            st["Status"], st["Running"] = status, status == "running"

    async def inspect(self, cid: str) -> dict[str, Any]:
        self.calls.append(("inspect", cid))
        if cid not in self.inspects:
            raise LookupError(cid)
        return self.inspects[cid]

    def attach(self, cid: str) -> _ScriptedResponse:
        self.calls.append(("attach", cid))
        hold = self.attach_end.setdefault(cid, asyncio.Event())
        r = self.attached[cid] = _ScriptedResponse(200, self.attach_chunks.get(cid, []), hold)
        return r

    def logs(self, cid: str, *, since_ns: int = 0, follow: bool = True) -> _ScriptedResponse:
        self.calls.append(("logs", cid))
        answers = self.logs_answers.get(cid) or [(404, [])]
        status, chunks = answers.pop(0) if len(answers) > 1 else answers[0]
        return _ScriptedResponse(status, chunks, text="refused")
