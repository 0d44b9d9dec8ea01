"""The Docker source: follows the engine's events and streams every shipped
container's stdout/stderr, from its first line, into the pipeline."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

import aiohttp

from shipper.config import DockerSettings
from shipper.containers import Container, ContainerRegistry, opt_out_reason
from shipper.metrics import METRICS
from shipper.record import Record
from shipper.sources.docker_api import DockerAPI, DockerError
from shipper.sources.docker_stream import FrameDecoder, LineAssembler

log = logging.getLogger("logship.docker")

Emit = Callable[[list[Record]], Awaitable[None]]
# Lines of one read are sent downstream together: queue hops are per batch, not per line.
READ_CHUNK = 256 * 1024


class DockerSource:
    def __init__(self, settings: DockerSettings, emit: Emit, registry: ContainerRegistry, *,
                 self_container_id: str = "") -> None:
        self.settings = settings
        self.emit = emit
        self.self_container_id = self_container_id
        self._streams: dict[str, asyncio.Task[None]] = {}
        self.containers = registry
        self.ready = asyncio.Event()  # set once the running containers are attached

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with DockerAPI(self.settings.host) as api:
                    await self._follow(api)
            except asyncio.CancelledError:
                await self._stop_streams()
                raise
            except (aiohttp.ClientError, DockerError, OSError) as exc:
                log.warning("docker: %s; reconnecting in %.1fs", exc or type(exc).__name__, backoff)
            await self._stop_streams()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.settings.reconnect_max_s)

    async def _follow(self, api: DockerAPI) -> None:
        since = time.time()
        # Events first, listing second: a container that starts in between is seen twice
        # (attach is idempotent), never missed.
        events = api.events(since=since)
        first = asyncio.ensure_future(anext(events))
        for c in await api.containers():
            self._attach(api, c["Id"])
        self.ready.set()
        log.info("docker: following events (%d containers running)", len(self._streams))
        ev = await first
        while True:
            self._on_event(api, ev)
            ev = await anext(events)

    def _on_event(self, api: DockerAPI, ev: dict) -> None:
        action = (ev.get("Action") or ev.get("status") or "").split(":")[0]
        cid = ev.get("id") or (ev.get("Actor") or {}).get("ID", "")
        if action in ("start", "restart"):
            self._attach(api, cid)
        elif action == "rename":
            c = self.containers.get(cid)
            if c:
                c.name = ((ev.get("Actor") or {}).get("Attributes") or {}).get("name", c.name).lstrip("/")
        elif action == "destroy":
            self.containers.remove(cid)

    def _attach(self, api: DockerAPI, cid: str) -> None:
        task = self._streams.get(cid)
        if task is not None and not task.done():
            return
        self._streams[cid] = asyncio.create_task(self._stream(api, cid), name=f"docker-logs-{cid[:12]}")

    async def _stop_streams(self) -> None:
        tasks = list(self._streams.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._streams.clear()

    async def _stream(self, api: DockerAPI, cid: str) -> None:
        try:
            c = Container.from_inspect(await api.inspect(cid))
        except LookupError:
            return
        reason = "the shipper's own container" if cid == self.self_container_id else opt_out_reason(
            c, include=self.settings.include, exclude=self.settings.exclude, exclude_label=self.settings.exclude_label)
        if reason:
            log.info("docker: not shipping %s (%s): %s", c.name, cid[:12], reason)
            return
        self.containers.add(c)
        log.info("docker: attached to %s (%s, image %s)", c.name, cid[:12], c.image)
        asm = LineAssembler(self.settings.max_line_bytes)
        decoder = None if c.tty else FrameDecoder()
        seq_state: dict[str, tuple[int, int]] = {}
        try:
            async with api.logs(cid) as r:
                if r.status >= 400:
                    log.warning("docker: logs of %s: %s %s", c.name, r.status, await r.text())
                    return
                tty_rest = b""
                while True:
                    chunk = await r.content.read(READ_CHUNK)
                    if not chunk:
                        break
                    if decoder is not None:
                        entries = decoder.feed(chunk)
                    else:
                        # A TTY stream is raw: entries are the newline-separated pieces.
                        data = tty_rest + chunk
                        parts = data.split(b"\n")
                        tty_rest = parts.pop()
                        entries = [("stdout", p + b"\n") for p in parts]
                    batch = [self._record(c, ln, seq_state) for stream, e in entries
                             if (ln := asm.feed(stream, e)) is not None]
                    if batch:
                        await self.emit(batch)
                tail = [self._record(c, ln, seq_state) for ln in asm.flush()]
                if tail:
                    await self.emit(tail)
        finally:
            if asm.truncated_bytes:
                METRICS.count("logship_truncated_bytes_total", asm.truncated_bytes, source="docker")
            log.info("docker: stream of %s (%s) ended", c.name, cid[:12])

    @staticmethod
    def _record(c: Container, ln, seq_state: dict[str, tuple[int, int]]) -> Record:
        last_ts, last_seq = seq_state.get(ln.stream, (-1, 0))
        seq = last_seq + 1 if ln.time_ns == last_ts else 0
        seq_state[ln.stream] = (ln.time_ns, seq)
        return Record(message=ln.data, time_ns=ln.time_ns, stream=ln.stream, container=c, seq=seq,
                      truncated=ln.truncated, partial_merged=ln.merged)
