"""The shipper's HTTP server (aiohttp.web, loopback by default):

- `GET /health`  JSON: per-stage status, Elasticsearch reachable (and `writes_blocked` while it refuses writes:
                 status `degraded`), last successful bulk; 200 or 503.
- `GET /metrics` Prometheus text exposition of shipper.core.metrics.METRICS.
- `GET /logs`    live stream of the shipped lines (logspout's endpoint): plain text, or NDJSON with
                 `Accept: application/x-ndjson` (or `?format=ndjson`); filters `container`, `level`, `text`.
- anything registered with `HttpServer.add_routes()` before start (e.g. /snapshots/{id}).

The /logs tap costs one attribute test per batch while nobody listens; with listeners each
gets a bounded queue, and a slow one loses lines (counted) instead of slowing the pipeline.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, cast

import orjson
from aiohttp import web

from shipper.core.aio import get_within
from shipper.config import ElasticsearchSettings, HttpSettings
from shipper.sinks.elasticsearch.client import es_session, es_version
from shipper.core.metrics import LAST_BULK_OK, METRICS

log = logging.getLogger("logship.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]
NDJSON = "application/x-ndjson"
LOGS_DROPPED = "logship_http_logs_dropped_total"
METRICS.describe(LOGS_DROPPED, "Lines a /logs subscriber lost because it read slower than the pipeline shipped.")


def parse_addr(addr: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"LOGSHIP_HTTP_ADDR={addr!r}: expected host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


# ---- /logs ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which lines a subscriber wants. Empty fields match everything.
    container: glob or substring of the name, or a prefix of the id; level: comma list
    (case-insensitive); text: case-insensitive substring of the message."""
    container: str = ""
    level: str = ""
    text: str = ""

    @classmethod
    def from_query(cls, q: Any) -> "LogFilter":
        return cls(q.get("container", ""), q.get("level", ""), q.get("text", ""))

    def matches(self, doc: dict[str, Any]) -> bool:
        if self.container:
            name = str(doc.get("container.name", ""))
            cid = str(doc.get("container.id", ""))
            pat = self.container
            if not (pat in name or fnmatch.fnmatchcase(name, pat) or (len(pat) >= 4 and cid.startswith(pat))):
                return False
        if self.level:
            wanted = {x.strip().lower() for x in self.level.split(",") if x.strip()}
            if str(doc.get("log.level", "")).lower() not in wanted:
                return False
        if self.text and self.text.lower() not in str(doc.get("message", "")).lower():
            return False
        return True


class Subscriber:
    __slots__ = ("filter", "queue")

    def __init__(self, flt: LogFilter, maxsize: int) -> None:
        self.filter = flt
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)


class LogHub:
    """Fan-out of enriched documents to /logs subscribers."""

    def __init__(self, queue_lines: int = 1000) -> None:
        self.queue_lines = queue_lines
        self.subscribers: set[Subscriber] = set()
        METRICS.gauge("logship_http_logs_subscribers", lambda: len(self.subscribers), "Readers of /logs right now.")

    @property
    def active(self) -> bool:
        return bool(self.subscribers)

    def subscribe(self, flt: LogFilter) -> Subscriber:
        sub = Subscriber(flt, self.queue_lines)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, docs: Iterable[dict[str, Any]]) -> None:
        dropped = 0
        subs = tuple(self.subscribers)
        for doc in docs:
            for sub in subs:
                if sub.filter.matches(doc):
                    try:
                        sub.queue.put_nowait(doc)
                    except asyncio.QueueFull:
                        dropped += 1
        if dropped:
            METRICS.count(LOGS_DROPPED, dropped, reason="slow_subscriber")

    def close(self) -> None:
        """Ends every stream: END tells the handler to finish the response."""
        for sub in tuple(self.subscribers):
            while True:
                try:
                    sub.queue.put_nowait(END)
                    break
                except asyncio.QueueFull:
                    sub.queue.get_nowait()


END: dict[str, Any] = {}  # the end-of-stream marker in a subscriber's queue (compared by identity)


def plain_line(doc: dict[str, Any]) -> bytes:
    where = doc.get("log.file.path") or doc.get("stream", "")
    return f"{doc.get('container.name', '-')} {where} {doc.get('message', '')}\n".encode()


def ndjson_line(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc) + b"\n"


# ---- /health ----------------------------------------------------------------------
class EsProbe:
    """Is Elasticsearch reachable? Asked at most every `ttl` seconds, so a health
    check polled every second does not become load on the cluster."""

    def __init__(self, settings: ElasticsearchSettings, ttl: float = 5.0) -> None:
        self.settings = settings
        self.ttl = ttl
        self._at = -1e9
        self._result: dict[str, Any] = {}

    async def status(self) -> dict[str, Any]:
        if time.monotonic() - self._at < self.ttl:
            return self._result
        result: dict[str, Any] = {"reachable": False}
        async with es_session(self.settings, timeout_s=3.0) as s:
            for url in self.settings.url:
                try:
                    result = {"reachable": True, "url": url, "version": await es_version(s, url)}
                    break
                except Exception as exc:  # noqa: BLE001 - any failure is "not reachable"
                    result = {"reachable": False, "url": url, "error": str(exc) or type(exc).__name__}
        self._at, self._result = time.monotonic(), result
        return result


# ---- the server -------------------------------------------------------------------
class HttpServer:
    def __init__(self, settings: HttpSettings, hub: LogHub, *,
                 stages: Callable[[], dict[str, str]] = dict, es: EsProbe | None = None,
                 sink: Callable[[], dict[str, Any]] = dict) -> None:
        self.settings = settings
        self.hub = hub
        self.stages = stages
        self.es = es
        self.sink = sink
        self._routes: list[Route] = [
            ("GET", "/health", self.health), ("GET", "/metrics", self.metrics), ("GET", "/logs", self.logs),
        ]
        self._runner: web.AppRunner | None = None
        self.bound: tuple[str, int] | None = None

    def add_routes(self, routes: Iterable[Route]) -> None:
        """Register extra handlers (method, path, handler); before start(): aiohttp freezes its router."""
        if self._runner is not None:
            raise RuntimeError("add_routes() after the HTTP server started")
        self._routes.extend(routes)

    async def start(self) -> None:
        if not self.settings.addr:
            return
        host, port = parse_addr(self.settings.addr)
        app = web.Application()
        for method, path, handler in self._routes:
            app.router.add_route(method, path, handler)
        # handler_cancellation: a /logs reader that hangs up ends its handler (and its subscription) at once.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0,
                                     handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            # The HTTP side is an aid, not the job: a taken port must not stop the shipping.
            METRICS.count("logship_http_start_errors_total", reason=type(exc).__name__)
            log.error("http: cannot listen on %s (%s); running without /health, /metrics, /logs",
                      self.settings.addr, exc)
            await self._runner.cleanup()
            self._runner = None
            return
        server = cast("asyncio.Server | None", site._server)  # aiohttp types it as the abstract base
        sock = server.sockets[0] if server and server.sockets else None
        self.bound = sock.getsockname()[:2] if sock else (host, port)
        log.info("http: listening on %s:%d", *self.bound)

    async def stop(self) -> None:
        self.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- handlers ----
    async def health(self, request: web.Request) -> web.Response:
        stages = self.stages()
        es = await self.es.status() if self.es else {"reachable": None}
        last = METRICS.value(LAST_BULK_OK)
        ok = all(v == "running" for v in stages.values()) and es.get("reachable") is not False
        sink = self.sink()
        # Blocked writes: the shipper holds and spools, a restart would not help: 200, but not "ok".
        status = "unhealthy" if not ok else "degraded" if sink.get("writes_blocked") else "ok"
        body = {
            "status": status,
            "stages": stages,
            "elasticsearch": {**es, **sink},
            "last_successful_bulk": None if last is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last)),
        }
        return web.Response(body=orjson.dumps(body), status=200 if ok else 503, content_type="application/json")

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=METRICS.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def logs(self, request: web.Request) -> web.StreamResponse:
        as_json = NDJSON in request.headers.get("Accept", "") or request.query.get("format") == "ndjson"
        render = ndjson_line if as_json else plain_line
        resp = web.StreamResponse(headers={"Content-Type": NDJSON if as_json else "text/plain; charset=utf-8",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        sub = self.hub.subscribe(LogFilter.from_query(request.query))
        try:
            while True:
                doc = await get_within(sub.queue, 15.0)
                if doc is None:  # nothing for 15 s
                    if request.transport is None or request.transport.is_closing():
                        break  # the reader left while no line matched its filter
                    continue
                if doc is END:
                    break
                chunk = [render(doc)]
                while not sub.queue.empty():  # drain what piled up: one write per wake-up
                    more = sub.queue.get_nowait()
                    if more is END:
                        await resp.write(b"".join(chunk))
                        return resp
                    chunk.append(render(more))
                await resp.write(b"".join(chunk))
        except ConnectionResetError:
            pass  # the reader went away
        finally:
            self.hub.unsubscribe(sub)
        return resp
