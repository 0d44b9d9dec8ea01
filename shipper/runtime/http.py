"""The shipper's HTTP server (aiohttp.web), on two listeners:

- the control socket, a unix socket in the state dir (mode 0600, or 0660 for LOGSHIP_HTTP_SOCKET_GROUP):
  every route; `logship tail` and `logship snapshot` use it. File permissions are its authentication.
- TCP (LOGSHIP_HTTP_ADDR, loopback by default): /health and /metrics; the other routes only for
  requests carrying LOGSHIP_HTTP_TOKEN (401 otherwise, 403 when no token is configured).
  Every TCP request must name an allowed Host (421 otherwise: DNS rebinding).
- On both, a state-changing request (not GET/HEAD) carrying any Origin is refused (403: CSRF from a
  browser) and must be `application/json` (415: a text/plain POST is a CORS "simple request").

Routes:

- `GET /health`  JSON: per-stage status, Elasticsearch reachable (and `writes_blocked` while it refuses writes:
                 status `degraded`), last successful bulk; 200 or 503.
- `GET /metrics` Prometheus text exposition of shipper.core.metrics.METRICS.
- `GET /logs`    live stream of the shipped lines (logspout's endpoint): plain text, or NDJSON with
                 `Accept: application/x-ndjson` (or `?format=ndjson`); filters `container`, `level`, `text`.
- anything registered with `HttpServer.add_routes()` before start (e.g. /snapshots/{id}).

The /logs tap costs one attribute test per batch while nobody listens; with listeners the
pipeline hands each a reference to the runs of the batch it wants (its container filter is
matched once per container, not per line), bounded in lines: a slow one loses lines
(counted) instead of slowing the pipeline; the readers are bounded in number.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import grp
import hmac
import logging
import os
import socket
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, cast

import orjson
from aiohttp import web

from shipper.core.aio import wait_event
from shipper.core.masking import error_text, mask_credentials
from shipper.core.terminal import inert
from shipper.config import ElasticsearchSettings, HttpSettings
from shipper.sinks.elasticsearch.client import es_session, es_version
from shipper.core.metrics import LAST_BULK_OK, METRICS
from shipper.core.record import Record

log = logging.getLogger("logship.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]
NDJSON = "application/x-ndjson"
LOGS_DROPPED = "logship_http_logs_dropped_total"
METRICS.describe(LOGS_DROPPED, "Lines a /logs subscriber lost because it read slower than the pipeline shipped.")
LOGS_REFUSED = "logship_http_logs_refused_total"
METRICS.describe(LOGS_REFUSED, "/logs readers turned away (503): LOGSHIP_HTTP_LOGS_MAX_SUBSCRIBERS were reading.")


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

    def matches_container(self, name: str, cid: str) -> bool:
        pat = self.container
        return not pat or pat in name or fnmatch.fnmatchcase(name, pat) or (len(pat) >= 4 and cid.startswith(pat))

    @property
    def per_line(self) -> bool:
        """Whether the filter needs each line's fields (level, text), not just its container."""
        return bool(self.level or self.text)

    def matches(self, doc: dict[str, Any]) -> bool:
        if not self.matches_container(str(doc.get("container.name", "")), str(doc.get("container.id", ""))):
            return False
        if self.level:
            wanted = {x.strip().lower() for x in self.level.split(",") if x.strip()}
            if str(doc.get("log.level", "")).lower() not in wanted:
                return False
        if self.text and self.text.lower() not in str(doc.get("message", "")).lower():
            return False
        return True


class Subscriber:
    """One /logs reader: the runs of documents (JSON) offered to it, bounded in lines. The
    pipeline only appends references to runs of the batch it already encoded; the reader's
    own task decodes, filters by level/text and renders them."""

    __slots__ = ("closed", "filter", "lines", "max_lines", "runs", "wake")

    def __init__(self, flt: LogFilter, max_lines: int) -> None:
        self.filter = flt
        self.max_lines = max_lines
        self.runs: list[tuple[list[bytes], int, int]] = []
        self.lines = 0
        self.wake = asyncio.Event()
        self.closed = False

    def offer(self, docs: list[bytes], i: int, j: int) -> int:
        """Queues docs[i:j]; returns how many lines it had to drop (the reader is too slow)."""
        n = j - i
        if self.lines + n > self.max_lines:
            return n
        self.runs.append((docs, i, j))
        self.lines += n
        self.wake.set()
        return 0

    def take(self) -> list[bytes]:
        out = [d for docs, i, j in self.runs for d in docs[i:j]]
        self.runs, self.lines = [], 0
        self.wake.clear()
        return out

    def close(self) -> None:
        self.closed = True
        self.wake.set()


class LogHub:
    """Fan-out of the shipped documents to /logs subscribers, at most `max_subscribers`.
    Per batch: one offer per subscriber that reads everything; subscribers with a container
    filter get the runs of their containers (which subscribers a container's run goes to
    is worked out once per container, not per line). Nobody subscribed: not even that."""

    def __init__(self, queue_lines: int = 1000, max_subscribers: int = 16) -> None:
        self.queue_lines = queue_lines
        self.max_subscribers = max_subscribers
        self.subscribers: set[Subscriber] = set()
        self._everything: tuple[Subscriber, ...] = ()
        self._by_container: tuple[Subscriber, ...] = ()
        self._targets: dict[tuple[str, str], tuple[Subscriber, ...]] = {}
        METRICS.gauge("logship_http_logs_subscribers", lambda: len(self.subscribers), "Readers of /logs right now.")

    @property
    def active(self) -> bool:
        return bool(self.subscribers)

    def subscribe(self, flt: LogFilter) -> Subscriber | None:
        """None when `max_subscribers` are reading already."""
        if len(self.subscribers) >= self.max_subscribers:
            METRICS.count(LOGS_REFUSED)
            return None
        sub = Subscriber(flt, self.queue_lines)
        self.subscribers.add(sub)
        self._regroup()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        self._regroup()

    def _regroup(self) -> None:
        self._everything = tuple(s for s in self.subscribers if not s.filter.container)
        self._by_container = tuple(s for s in self.subscribers if s.filter.container)
        self._targets.clear()

    def publish(self, records: list[Record], docs: list[bytes]) -> None:
        """The documents (JSON, as sent to Elasticsearch) of a batch of records."""
        dropped = 0
        for sub in self._everything:
            dropped += sub.offer(docs, 0, len(docs))
        if self._by_container:
            targets, n, i = self._targets, len(records), 0
            while i < n:
                c = records[i].container
                j = i + 1
                while j < n and records[j].container is c:
                    j += 1
                key = (c.id, c.name)
                subs = targets.get(key)
                if subs is None:
                    if len(targets) >= 4096:
                        targets.clear()
                    subs = targets[key] = tuple(s for s in self._by_container
                                                if s.filter.matches_container(c.name, c.id))
                for sub in subs:
                    dropped += sub.offer(docs, i, j)
                i = j
        if dropped:
            METRICS.count(LOGS_DROPPED, dropped, reason="slow_subscriber")

    def close(self) -> None:
        """Ends every stream."""
        for sub in tuple(self.subscribers):
            sub.close()


def plain_line(doc: dict[str, Any]) -> bytes:
    """One line for `curl .../logs` in a terminal: the container's text made inert (shipper.core.terminal)."""
    where = doc.get("log.file.path") or doc.get("stream", "")
    name, msg = inert(str(doc.get("container.name", "-"))), inert(str(doc.get("message", "")))
    return f"{name} {inert(str(where))} {msg}\n".encode()


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
                shown = mask_credentials(url)  # /health is unauthenticated: never a password in it
                try:
                    result = {"reachable": True, "url": shown, "version": await es_version(s, url)}
                    break
                except Exception as exc:  # noqa: BLE001 - any failure is "not reachable"
                    result = {"reachable": False, "url": shown,
                              "error": error_text(exc)}
        self._at, self._result = time.monotonic(), result
        return result


# ---- access control ---------------------------------------------------------------
PUBLIC_PATHS = frozenset({"/health", "/metrics"})  # served on TCP without a token
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ACCESS_REFUSED = "logship_http_refused_total"
METRICS.describe(ACCESS_REFUSED, "HTTP requests refused by the access checks, by reason.")


def host_name(header: str) -> str:
    """The name part of a Host header: `a.b:80` -> `a.b`, `[::1]:80` -> `::1`; lower case."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def token_matches(authorization: str, token: str) -> bool:
    """`Bearer TOKEN`, or `Basic base64(any-user:TOKEN)` (so a browser following a Kibana link
    can be asked for it); constant-time comparison."""
    scheme, _, cred = authorization.partition(" ")
    offered = b""
    if scheme.lower() == "bearer":
        offered = cred.strip().encode()
    elif scheme.lower() == "basic":
        try:
            offered = base64.b64decode(cred.strip(), validate=True).partition(b":")[2]
        except ValueError:
            return False
    return bool(offered) and hmac.compare_digest(offered, token.encode())


def access_check(request: web.Request, settings: HttpSettings, tcp: bool) -> web.Response | None:
    """None when the request may proceed; else the refusal (and nothing has been done)."""
    def refuse(status: int, reason: str, why: str, **headers: str) -> web.Response:
        METRICS.count(ACCESS_REFUSED, reason=reason)
        return web.Response(status=status, text=why + "\n", headers=headers)

    if tcp:
        allowed = {h.lower().strip("[]") for h in settings.allowed_hosts}
        if host_name(request.headers.get("Host", "")) not in allowed:
            return refuse(421, "host", "this Host is not in LOGSHIP_HTTP_ALLOWED_HOSTS")
        if request.path not in PUBLIC_PATHS:
            if not settings.token:
                return refuse(403, "no_token", "the control routes are on the unix socket only "
                                               "(set LOGSHIP_HTTP_TOKEN to serve them over TCP)")
            if not token_matches(request.headers.get("Authorization", ""), settings.token):
                return refuse(401, "token", "a valid LOGSHIP_HTTP_TOKEN is required",
                              **{"WWW-Authenticate": 'Basic realm="logship", charset="UTF-8"'})
    if request.method not in SAFE_METHODS:
        if "Origin" in request.headers:
            return refuse(403, "origin", "cross-origin (or any browser-origin) state changes are refused")
        if request.content_type != "application/json":
            return refuse(415, "content_type", "state-changing requests must be application/json")
    return None


def guard(settings: HttpSettings, tcp: bool) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        return access_check(request, settings, tcp) or await handler(request)
    return middleware


def bind_control_socket(path: Path, group: str) -> socket.socket:
    """A listening-ready unix socket at `path`, mode 0600 from birth (0660 with `group`). An old
    socket there is removed: the state lock makes this process the only shipper of the state dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        path.unlink()
    elif path.exists():
        raise OSError(f"{path} exists and is not a socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.fchmod(sock.fileno(), 0o600)  # before bind: the file is created with this mode, no window
        sock.bind(str(path))
        if group:
            os.chown(path, -1, grp.getgrnam(group).gr_gid)
        os.chmod(path, 0o660 if group else 0o600)
    except BaseException:
        sock.close()
        raise
    return sock


# ---- the server -------------------------------------------------------------------
class HttpServer:
    def __init__(self, settings: HttpSettings, hub: LogHub, *,
                 stages: Callable[[], dict[str, str]] = dict, es: EsProbe | None = None,
                 control_socket: Path | None = None, sink: Callable[[], dict[str, Any]] = dict) -> None:
        self.settings = settings
        self.hub = hub
        self.stages = stages
        self.es = es
        self.control_socket = control_socket
        self.sink = sink
        self._routes: list[Route] = [
            ("GET", "/health", self.health), ("GET", "/metrics", self.metrics), ("GET", "/logs", self.logs),
        ]
        self._runners: list[web.AppRunner] = []
        self._started = False
        self.bound: tuple[str, int] | None = None
        self.socket_path: Path | None = None

    def add_routes(self, routes: Iterable[Route]) -> None:
        """Register extra handlers (method, path, handler); before start(): aiohttp freezes its router."""
        if self._started:
            raise RuntimeError("add_routes() after the HTTP server started")
        self._routes.extend(routes)

    async def _runner(self, tcp: bool) -> web.AppRunner:
        app = web.Application(middlewares=[guard(self.settings, tcp)])
        for method, path, handler in self._routes:
            app.router.add_route(method, path, handler)
        # handler_cancellation: a /logs reader that hangs up ends its handler (and its subscription) at once.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0,
                               handler_cancellation=True)
        await runner.setup()
        self._runners.append(runner)
        return runner

    async def start(self) -> None:
        self._started = True
        # The HTTP side is an aid, not the job: a listener that cannot start must not stop the shipping.
        if self.control_socket is not None:
            try:
                unix = bind_control_socket(self.control_socket, self.settings.socket_group)
                await web.SockSite(await self._runner(tcp=False), unix).start()
                self.socket_path = self.control_socket
                log.info("http: control socket %s", self.control_socket)
            except (OSError, KeyError) as exc:  # KeyError: no such group
                METRICS.count("logship_http_start_errors_total", reason=type(exc).__name__)
                log.error("http: no control socket at %s (%s); `logship tail` needs --url and a token",
                          self.control_socket, exc)
        if not self.settings.addr:
            return
        host, port = parse_addr(self.settings.addr)
        runner = await self._runner(tcp=True)
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            METRICS.count("logship_http_start_errors_total", reason=type(exc).__name__)
            log.error("http: cannot listen on %s (%s); running without /health, /metrics on TCP",
                      self.settings.addr, exc)
            return
        server = cast("asyncio.Server | None", site._server)  # aiohttp types it as the abstract base
        sock = server.sockets[0] if server and server.sockets else None
        self.bound = sock.getsockname()[:2] if sock else (host, port)
        log.info("http: listening on %s:%d (control routes %s)", *self.bound,
                 "with the token" if self.settings.token else "on the unix socket only")

    async def stop(self) -> None:
        self.hub.close()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)
            self.socket_path = None

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
        flt = LogFilter.from_query(request.query)
        sub = self.hub.subscribe(flt)
        if sub is None:
            return web.Response(status=503, text=f"/logs has {self.hub.max_subscribers} readers already "
                                                 "(LOGSHIP_HTTP_LOGS_MAX_SUBSCRIBERS)\n")
        resp = web.StreamResponse(headers={"Content-Type": NDJSON if as_json else "text/plain; charset=utf-8",
                                           "Cache-Control": "no-cache"})
        try:
            await resp.prepare(request)
            while not sub.closed:
                if not await wait_event(sub.wake, 15.0):  # nothing for 15 s
                    if request.transport is None or request.transport.is_closing():
                        break  # the reader left while no line matched its filter
                    continue
                docs = sub.take()
                if as_json and not flt.per_line:
                    chunk = b"".join(d + b"\n" for d in docs)  # the documents as they are
                else:
                    loads, render = orjson.loads, ndjson_line if as_json else plain_line
                    chunk = b"".join(render(doc) for doc in map(loads, docs) if not flt.per_line or flt.matches(doc))
                if chunk:
                    await resp.write(chunk)
        except ConnectionResetError:
            pass  # the reader went away
        finally:
            self.hub.unsubscribe(sub)
        return resp
