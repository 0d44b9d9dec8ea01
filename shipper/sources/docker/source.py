"""The Docker source: follows the engine's events and streams every shipped
container's stdout/stderr into the pipeline, each line exactly once.

- From the first line: a new container is read from the start of its log (the logs
  endpoint replays what the json-file holds), so a container that printed and exited
  before we attached loses nothing.
- Across restarts: per container, the Docker timestamp up to which Elasticsearch holds
  every line is checkpointed (shipper.core.acks + shipper.core.checkpoints); a restarted shipper
  resumes with `since` and the deterministic `_id` turns the overlap into 409s.
- Across daemon restarts and torn streams: reconnect with backoff, re-list, resume
  from the newest timestamp read; a running container whose stream ended is re-attached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp

from shipper.sources.docker import self_container
from shipper.core.acks import AckTracker, AckWindow
from shipper.core.checkpoints import CheckpointStore
from shipper.config import DockerSettings
from shipper.core.container import Container, ContainerRegistry
from shipper.sources.docker.filters import Filters
from shipper.core.metrics import CHECKPOINT_LAG, METRICS
from shipper.core.record import Record
from shipper.sources.docker.api import DockerAPI, DockerError
from shipper.sources.docker.logs import StreamRefused, open_log
from shipper.sources.docker.stream import Line, StreamDecoder

log = logging.getLogger("logship.docker")

Emit = Callable[[list[Record]], Awaitable[None]]
# After a container stops, the final catch-up read waits this long for dockerd's log copier.
FINAL_READ_DELAY_S = 0.2
# Stopped containers read at start (catch-up) at once: bounded, a host may hold thousands.
CATCH_UP_CONCURRENCY = 8
# A stopped container without checkpoint is caught up when it finished this close to (or
# after) the last sign of life of the previous run.
ALIVE_MARGIN_NS = 30 * 1_000_000_000


_TRANSIENT = (aiohttp.ClientError, OSError, asyncio.TimeoutError, DockerError)


class DockerSource:
    def __init__(self, settings: DockerSettings, emit: Emit, registry: ContainerRegistry, *,
                 state_dir: Path | None = None, self_container_ids: set[str] | None = None,
                 hostname: str | None = None) -> None:
        self.settings = settings
        self.emit = emit
        self.containers = registry
        self.filters = Filters(
            include=settings.include, exclude=settings.exclude, include_image=settings.include_image,
            exclude_image=settings.exclude_image, include_labels=settings.include_labels,
            exclude_labels=settings.exclude_labels, exclude_label=settings.exclude_label,
        )
        self.checkpoints = CheckpointStore(state_dir, settings.checkpoint_interval_s) if state_dir else None
        self.acks = AckTracker(self._advanced)
        METRICS.gauge(CHECKPOINT_LAG, self.acks.lag_s, "Age of the oldest line read but not yet in Elasticsearch "
                      "(the checkpoints trail it); 0 when all is delivered.")
        self._overlap_ns = int(settings.resume_overlap_s * 1e9)
        self._streams: dict[str, asyncio.Task[None]] = {}
        self._started_again: set[str] = set()  # start events that came while a stream was ending
        self._last_seen: dict[str, int] = {}  # newest Docker time read per container, this process
        self._catch_up = asyncio.Semaphore(CATCH_UP_CONCURRENCY)
        if self_container_ids is None:
            own = self_container.own_container_ids(hostname=hostname or socket.gethostname())
            self._own_ids, self._own_prefix = own
        else:
            self._own_ids, self._own_prefix = set(self_container_ids), ""
        self.ready = asyncio.Event()  # set once the existing containers are attached

    # ---- lifecycle --------------------------------------------------------------
    async def run(self) -> None:
        saver = asyncio.create_task(self.checkpoints.run()) if self.checkpoints else None
        backoff = 0.5
        try:
            while True:
                started = time.monotonic()
                try:
                    async with DockerAPI(self.settings.host) as api:
                        await self._follow(api)
                except (aiohttp.ClientError, DockerError, OSError, asyncio.TimeoutError) as exc:
                    METRICS.count("logship_docker_reconnects_total")
                    log.warning("docker: %s; reconnecting in %.1fs", exc or type(exc).__name__, backoff)
                except StopAsyncIteration:
                    METRICS.count("logship_docker_reconnects_total")
                    log.warning("docker: the event stream ended (daemon restart?); reconnecting in %.1fs", backoff)
                await self._stop_streams()
                if time.monotonic() - started > 60:
                    backoff = 0.5  # it worked for a while: this is a new outage
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_s)
        finally:
            await self._stop_streams()
            if saver:
                saver.cancel()
                await asyncio.gather(saver, return_exceptions=True)

    def close(self) -> None:
        """Final checkpoint write: call once the sink has delivered what it will."""
        if self.checkpoints:
            self.checkpoints.save()

    async def _stop_streams(self) -> None:
        tasks = list(self._streams.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._streams.clear()

    # ---- events and listing -----------------------------------------------------
    async def _follow(self, api: DockerAPI) -> None:
        await api.version()
        # Events first, listing second: a container that starts in between is seen twice
        # (attaching is idempotent), never missed.
        events = api.events(since=time.time())
        first = asyncio.ensure_future(anext(events))
        try:
            listed = await api.containers(all=True)
            ids = [c["Id"] for c in listed]
            self._own_ids = self_container.resolve(self._own_ids, self._own_prefix, ids)
            if self.checkpoints:
                for cid in self.checkpoints.ids() - set(ids):
                    self.checkpoints.forget(cid)  # containers removed while we were away
            running = 0
            for c in listed:
                if c.get("State") == "running":
                    running += 1
                    self._attach(api, c["Id"], follow=True)
                elif self._may_hold_unshipped(c["Id"]):
                    self._attach(api, c["Id"], follow=False)
            self.ready.set()
            log.info("docker: following events (%d containers running)", running)
            ev = await first
            while True:
                self._on_event(api, ev)
                ev = await anext(events)
        finally:
            first.cancel()
            await events.aclose()

    def _may_hold_unshipped(self, cid: str) -> bool:
        """A stopped container is worth a read (follow=0) if it has a checkpoint or the
        previous run of the shipper was alive when it could still have been logging."""
        return self.checkpoints is not None and (cid in self.checkpoints or self.checkpoints.alive_ns > 0)

    def _on_event(self, api: DockerAPI, ev: dict[str, Any]) -> None:
        action = (ev.get("Action") or ev.get("status") or "").split(":")[0]
        actor = ev.get("Actor") or {}
        cid = ev.get("id") or actor.get("ID", "")
        if action in ("start", "restart"):
            self._attach(api, cid, follow=True)
        elif action == "rename":
            c = self.containers.get(cid)
            if c:
                c.name = (actor.get("Attributes") or {}).get("name", c.name).lstrip("/")
        elif action == "destroy":
            self.containers.remove(cid)
            self._last_seen.pop(cid, None)
            if self.checkpoints:
                self.checkpoints.forget(cid)
            self.acks.forget(cid)

    def _attach(self, api: DockerAPI, cid: str, *, follow: bool) -> None:
        task = self._streams.get(cid)
        if task is not None and not task.done():
            # Its loop may already have seen the container stopped: tell it to read on.
            self._started_again.add(cid)
            return
        self._streams[cid] = asyncio.create_task(self._ship(api, cid, follow), name=f"docker-logs-{cid[:12]}")

    # ---- one container ----------------------------------------------------------
    def _inspect_to_container(self, data: dict[str, Any]) -> Container:
        return Container.from_inspect(data, self.settings.labels)

    async def _ship(self, api: DockerAPI, cid: str, follow: bool) -> None:
        try:
            c = self._inspect_to_container(await api.inspect(cid))
        except LookupError:
            return
        reason = "the shipper's own container" if cid in self._own_ids else self.filters.reason(c)
        if reason:
            log.info("docker: not shipping %s (%s): %s", c.name, cid[:12], reason)
            return
        ckpt = self.checkpoints.get(cid) if self.checkpoints else 0
        if not follow and self.checkpoints is not None:
            # Listed in the checkpoints (even at 0): an earlier run read it, and it is done
            # only if that run read it to the end of this very stop and all of it is held.
            # Not listed: only what finished after the earlier run's last sign of life (with
            # a margin for dockerd still copying its output) can hold unshipped lines.
            # FinishedAt is 0 while a container is exiting: then it is read.
            if cid in self.checkpoints:
                done = self.checkpoints.fully_shipped(cid, c.finished_ns)
            else:
                done = 0 < c.finished_ns <= self.checkpoints.alive_ns - ALIVE_MARGIN_NS
            if done:
                log.debug("docker: %s (%s) stopped and fully shipped: nothing to catch up", c.name, cid[:12])
                return
        if self.checkpoints is not None and self.checkpoints.register(cid):
            # On disk before its first line can be delivered: a crash right after would
            # otherwise leave no trace of it, and a restart would not catch it up.
            await self.checkpoints.persist()
        window = self.acks.window(cid, ckpt)
        since = self._last_seen.get(cid) or (max(0, ckpt - self._overlap_ns) if ckpt else 0)
        self.containers.add(c)  # before the first line is read: the eBPF filter follows the registry
        log.info("docker: %s %s (%s, image %s) since %d", "attached to" if follow else "catching up on",
                 c.name, cid[:12], c.image, since)
        empty_ends = 0
        try:
            while True:
                try:
                    async with (self._catch_up if not follow else contextlib.nullcontext()):
                        decoder, read = await self._read(api, c, window, since, follow)
                    fresh = await self._inspect_or_none(api, cid)
                except _TRANSIENT as exc:
                    # A torn stream: read again from the newest line we have. If the daemon
                    # itself is gone, the event loop's reconnect cancels us and re-lists.
                    METRICS.count("logship_docker_stream_errors_total")
                    log.warning("docker: stream of %s broke (%s); re-reading", c.name, exc or type(exc).__name__)
                    since = self._last_seen.get(cid, since)
                    await asyncio.sleep(1.0)
                    continue
                # A start event while this stream was ending means: read on from the newest line.
                # Stopped is re-checked after every await: a start must never be lost.
                if self._stays_stopped(cid, fresh):
                    if follow and fresh is not None:
                        decoder = await self._final_read(api, c, window, since, decoder)
                    if self._stays_stopped(cid, fresh):
                        await self._emit_lines(c, window, decoder.flush(), {})  # a last line without newline
                        if self._stays_stopped(cid, fresh):  # no await from here to the task's end
                            if fresh is not None and fresh.finished_ns and self.checkpoints is not None:
                                self.checkpoints.ended(cid, fresh.finished_ns, self._last_seen.get(cid, 0))
                            break
                # Running, yet its stream ended: restarted meanwhile (also during a catch-up
                # read), or a stalled stream. Partial lines are dropped here: the re-read from
                # the newest whole line has them.
                if follow:
                    METRICS.count("logship_docker_reattach_total")
                follow = True
                self._started_again.discard(cid)
                assert fresh is not None  # a removed container stays stopped
                if fresh.pid != c.pid:
                    c.pid = fresh.pid
                    self.containers.add(c)
                since = self._last_seen.get(cid, since)
                empty_ends = 0 if read else empty_ends + 1
                await asyncio.sleep(min(0.05 * 2 ** empty_ends, 5.0) if empty_ends else 0)
        except StreamRefused:
            pass
        finally:
            self._started_again.discard(cid)
            self.containers.remove(cid)
            if self.checkpoints and not len(window):
                self.checkpoints.flush_soon()
            log.info("docker: stream of %s (%s) ended", c.name, cid[:12])

    def _stays_stopped(self, cid: str, fresh: Container | None) -> bool:
        """Removed, or stopped with no start event since its stream ended."""
        return fresh is None or not (fresh.running or cid in self._started_again)

    async def _final_read(self, api: DockerAPI, c: Container, window: AckWindow, since: int,
                          decoder: StreamDecoder) -> StreamDecoder:
        """Once more, without following, from the newest line we have: dockerd may still be
        copying the container's output into its log when the container is reported stopped
        (seen with TTY containers: a follow stream that ended empty). What is read twice
        has the same ids and comes back as 409s."""
        await asyncio.sleep(FINAL_READ_DELAY_S)
        try:
            final, _ = await self._read(api, c, window, self._last_seen.get(c.id, since), False)
        except (StreamRefused, *_TRANSIENT):
            return decoder  # removed meanwhile: keep what the follow stream had
        return final

    async def _inspect_or_none(self, api: DockerAPI, cid: str) -> Container | None:
        try:
            return self._inspect_to_container(await api.inspect(cid))
        except LookupError:
            return None

    async def _read(self, api: DockerAPI, c: Container, window: AckWindow, since: int,
                    follow: bool) -> tuple[StreamDecoder, int]:
        """Reads one logs response to its end; returns the decoder (holding any unfinished
        line) and how many lines were read."""
        seq_state: dict[str, list[int]] = {}
        n = 0
        decoder: StreamDecoder | None = None

        async def running() -> bool:
            fresh = await self._inspect_or_none(api, c.id)
            return fresh is not None and fresh.running

        try:
            async with open_log(api, self.settings, c, since, follow, running) as (decoder, chunks):
                async for chunk in chunks:
                    lines = decoder.feed(chunk)
                    if lines:
                        n += len(lines)
                        await self._emit_lines(c, window, lines, seq_state)
        finally:
            for name, value in (("logship_truncated_lines_total", decoder.truncated_lines if decoder else 0),
                                ("logship_truncated_bytes_total", decoder.truncated_bytes if decoder else 0),
                                ("logship_docker_bad_entries_total", decoder.bad_entries if decoder else 0)):
                if value:
                    METRICS.count(name, value, source="docker")
        assert decoder is not None
        return decoder, n

    async def _emit_lines(self, c: Container, window: AckWindow, lines: list[Line],
                          seq_state: dict[str, list[int]]) -> None:
        if not lines:
            return
        last = self._last_seen.get(c.id, 0)
        batch: list[Record] = []
        append = batch.append
        for stream, ts, data, truncated, merged in lines:
            if not ts:
                ts = last  # an entry without Docker timestamp: keep it, next to its neighbour
            st = seq_state.get(stream)
            if st is None:
                st = seq_state[stream] = [ts, 0]
                seq = 0
            elif st[0] == ts:
                seq = st[1] = st[1] + 1
            else:
                st[0], st[1], seq = ts, 0, 0
            if ts > last:
                last = ts
            if truncated or merged:
                append(Record(data, ts, stream, c, seq, truncated=truncated, partial_merged=merged))
            else:  # the common case, without keyword arguments: this loop runs once per line
                append(Record(data, ts, stream, c, seq))
        await self.emit(batch)
        # Tracked once it is in the pipeline: a put cancelled by a reconnect leaves no
        # phantom outstanding record behind (the re-read sends the lines again).
        window.track(batch)
        self._last_seen[c.id] = last

    def _advanced(self, container_id: str, time_ns: int) -> None:
        if self.checkpoints:
            self.checkpoints.advance(container_id, time_ns)

