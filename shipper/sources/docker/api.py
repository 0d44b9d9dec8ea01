"""A lean asyncio client for the few Docker Engine API calls the source needs.

aiohttp over the unix socket rather than docker-py: docker-py is blocking, and the
log streams are the hot path (one coroutine per container, backpressure through
the socket buffer when the pipeline is slow)."""

from __future__ import annotations

import json
from typing import Any, AsyncGenerator
from urllib.parse import urlparse

import aiohttp


READ_BUFSIZE = 256 * 1024


class DockerError(RuntimeError):
    pass


class DockerAPI:
    def __init__(self, host: str = "unix:///var/run/docker.sock") -> None:
        u = urlparse(host)
        if u.scheme != "unix":
            raise DockerError(f"LOGSHIP_DOCKER_HOST={host}: only unix:// sockets are supported")
        self.socket_path = u.path
        self._session: aiohttp.ClientSession | None = None
        self._logs_session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "DockerAPI":
        self._session = self._new_session(aiohttp.HttpVersion11)
        # Log streams are asked for as HTTP/1.0: dockerd then cannot chunk the body, which
        # it otherwise does per log entry (aiohttp's per-chunk work cost ~1-2 us of CPU per
        # line, measured in pairs with bench/docker_source.py). The body is the raw frame
        # stream, ended by the connection closing: a torn stream reads as an end, and the
        # source inspects the container and re-reads from its newest line if it still runs.
        self._logs_session = self._new_session(aiohttp.HttpVersion10)
        return self

    def _new_session(self, version: aiohttp.HttpVersion) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=self.socket_path, limit=0),
            base_url="http://docker",
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            # Fewer, larger reads off the socket on the hot path; bounded: at most twice this is
            # buffered per stream before the transport pauses (backpressure reaches dockerd).
            read_bufsize=READ_BUFSIZE,
            version=version,
        )

    async def __aexit__(self, *exc: object) -> None:
        if self._session:
            await self._session.close()
        if self._logs_session:
            await self._logs_session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use DockerAPI as an async context manager"
        return self._session

    async def _json(self, path: str, **params: Any) -> Any:
        async with self.session.get(path, params=params, timeout=aiohttp.ClientTimeout(total=30)) as r:
            if r.status == 404:
                raise LookupError(path)
            if r.status >= 400:
                raise DockerError(f"GET {path}: {r.status} {await r.text()}")
            return await r.json(content_type=None)

    async def version(self) -> dict[str, Any]:
        return await self._json("/version")

    async def info(self) -> dict[str, Any]:
        return await self._json("/info")

    async def containers(self, *, all: bool = False) -> list[dict[str, Any]]:
        return await self._json("/containers/json", all="1" if all else "0")

    async def inspect(self, cid: str) -> dict[str, Any]:
        return await self._json(f"/containers/{cid}/json")

    async def events(self, *, since: float | None = None) -> AsyncGenerator[dict[str, Any], None]:
        params = {"filters": json.dumps({"type": ["container"]})}
        if since is not None:
            params["since"] = f"{since:.9f}"
        async with self.session.get("/events", params=params) as r:
            if r.status >= 400:
                raise DockerError(f"GET /events: {r.status} {await r.text()}")
            async for line in r.content:
                if line.strip():
                    yield json.loads(line)

    def attach(self, cid: str) -> Any:
        """The container's stdout/stderr as the process writes them, from the moment the
        response headers arrive (dockerd joins the container's output before it answers):
        frames unless it has a TTY, no timestamps, no replay. Ends when the container's
        streams close (it exited). Use as `async with`."""
        assert self._logs_session is not None
        params = {"stream": "1", "stdout": "1", "stderr": "1"}
        return self._logs_session.post(f"/containers/{cid}/attach", params=params)

    def logs(self, cid: str, *, since_ns: int = 0, follow: bool = True) -> Any:
        """The raw log stream (multiplexed frames unless the container has a TTY), with
        Docker's RFC3339Nano timestamp in front of every entry. Use as `async with`."""
        # tail=all said explicitly: without it dockerd 20.10 was measured reading the json-file slower.
        params = {"stdout": "1", "stderr": "1", "timestamps": "1", "follow": "1" if follow else "0", "tail": "all"}
        if since_ns:
            params["since"] = f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"
        assert self._logs_session is not None
        return self._logs_session.get(f"/containers/{cid}/logs", params=params)
