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
- Auto-remove containers (`docker run --rm`): their log is refused once they exit, which
  can be before the start event is even handled. They are attached on `create` (before
  they run, as the docker CLI does) and what attach carries is held; their json-file,
  held open since its creation (held_logs.py), is the one path that ships, else the logs
  endpoint, and only if neither opens (removed, another driver) do the attach lines ship
  instead (ARCHITECTURE.md, "Short-lived containers").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from pathlib import Path
from typing import Any, Awaitable, BinaryIO, Callable, Iterator

import aiohttp

from shipper.sources.docker import self_container
from shipper.core.acks import AckTracker, AckWindow
from shipper.core.checkpoints import CheckpointStore
from shipper.config import DockerSettings
from shipper.core.container import Container, ContainerRegistry
from shipper.sources.docker.filters import Filters
from shipper.sources.docker.held_logs import LogHolder
from shipper.core.metrics import CHECKPOINT_LAG, METRICS
from shipper.core.record import EVENT, Record
from shipper.core.timefmt import iso_ns
from shipper.sources.docker.api import DockerAPI, DockerError
from shipper.sources.docker.logs import READ_CHUNK, StreamRefused, open_log
from shipper.sources.docker.jsonfile import JsonFileDecoder, log_path_here
from shipper.sources.docker.stream import AttachDecoder, Line, StreamDecoder
from shipper.core.masking import error_text

log = logging.getLogger("logship.docker")

Emit = Callable[[list[Record]], Awaitable[None]]
# After a container stops, the final catch-up read waits this long for dockerd's log copier.
FINAL_READ_DELAY_S = 0.2
FINAL_READS_MAX = 50
TORN_RETRY_S = 1.0  # before a torn stream is read again
# Stopped containers read at start (catch-up) at once: bounded, a host may hold thousands.
CATCH_UP_CONCURRENCY = 8
# A stopped container without checkpoint is caught up when it finished this close to (or
# after) the last sign of life of the previous run.
ALIVE_MARGIN_NS = 30 * 1_000_000_000
# What an auto-remove container's attach stream may hold until its logs open (or it is gone).
ATTACH_HOLD_BYTES = 16 << 20
# After its logs were refused, how long the attach stream of a dead container may take to end.
ATTACH_DRAIN_S = 10.0


_TRANSIENT = (aiohttp.ClientError, OSError, asyncio.TimeoutError, DockerError)


def _no_advance(container_id: str, time_ns: int) -> None:
    pass


class StreamTorn(DockerError):
    """A logs response that ended inside a frame: cut, to be read again from the newest line."""


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
        self._streams: dict[str, asyncio.Task[Any]] = {}
        self._started_again: set[str] = set()  # start events that came while a stream was ending
        self._last_seen: dict[str, int] = {}  # newest Docker time read per container, this process
        # container -> stream -> (time, seq) of the newest line emitted by this process: a re-read
        # from the newest line (final read, re-attach) starts with lines already sent downstream
        self._emitted: dict[str, dict[str, tuple[int, int]]] = {}
        self._start_seen: dict[str, asyncio.Event] = {}  # containers in their create phase
        self._resumed_at: dict[str, int] = {}  # container -> checkpoint it resumes from, until its first read
        self._catch_up = asyncio.Semaphore(CATCH_UP_CONCURRENCY)
        if self_container_ids is None:
            own = self_container.own_container_ids(hostname=hostname or socket.gethostname())
            self._own_ids, self._own_prefix = own
        else:
            self._own_ids, self._own_prefix = set(self_container_ids), ""
        self.ready = asyncio.Event()  # set once the existing containers are attached
        self.held: LogHolder | None = None  # json-files opened at their creation (held_logs.py)
        self._files: dict[str, BinaryIO] = {}  # auto-remove containers' json-files, open, being read

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
                    log.warning("docker: %s; reconnecting in %.1fs", error_text(exc), backoff)
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
            if self.held is not None:
                self.held.stop()
                self.held = None
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
        if self.held is None and self.settings.read_files == "auto":
            await self._hold_new_logs(api)
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
                elif c.get("State") == "created":
                    self._on_create(api, c["Id"])
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

    async def _hold_new_logs(self, api: DockerAPI) -> None:
        """Starts holding json-files at their creation (held_logs.py), before the events are
        followed: a container created from then on is read to its end even if removed at once."""
        root = self.settings.files_root
        if not root:
            try:
                data_root = (await api.info()).get("DockerRootDir") or ""
            except (DockerError, aiohttp.ClientError, ValueError) as exc:
                log.info("docker: no DockerRootDir (%s): new containers' json-files are not held", exc)
                return
            root = str(Path(data_root) / "containers") if data_root else ""
        holder = LogHolder(Path(root))
        if root and holder.start():
            self.held = holder

    def _may_hold_unshipped(self, cid: str) -> bool:
        """A stopped container is worth a read (follow=0) if it has a checkpoint or the
        previous run of the shipper was alive when it could still have been logging."""
        return self.checkpoints is not None and (cid in self.checkpoints or self.checkpoints.alive_ns > 0)

    def _on_event(self, api: DockerAPI, ev: dict[str, Any]) -> None:
        action = (ev.get("Action") or ev.get("status") or "").split(":")[0]
        actor = ev.get("Actor") or {}
        cid = ev.get("id") or actor.get("ID", "")
        if action == "create":
            self._on_create(api, cid)
        elif action in ("start", "restart"):
            started = self._start_seen.get(cid)
            if started is not None:
                started.set()
            self._attach(api, cid, follow=True)
        elif action == "rename":
            c = self.containers.get(cid)
            if c:
                c.name = (actor.get("Attributes") or {}).get("name", c.name).lstrip("/")
        elif action == "destroy":
            self.containers.remove(cid)
            task = self._streams.get(cid)
            if self.held is not None and (task is None or task.done()):
                self.held.release(cid)  # nothing will read it (a running task takes or releases it)
            self._last_seen.pop(cid, None)
            self._emitted.pop(cid, None)
            self._resumed_at.pop(cid, None)
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

    def _on_create(self, api: DockerAPI, cid: str) -> None:
        if cid not in self._streams or self._streams[cid].done():
            self._streams[cid] = asyncio.create_task(self._created(api, cid), name=f"docker-create-{cid[:12]}")

    # ---- short-lived containers -------------------------------------------------
    async def _created(self, api: DockerAPI, cid: str) -> None:
        """A container that has not run yet. Attached at once, before it is even inspected:
        the race is against `docker run`'s own attach-then-start, and an inspect first would
        lose it more often. Only auto-remove containers keep the attach stream."""
        started = self._start_seen[cid] = asyncio.Event()
        try:
            async with api.attach(cid) as r:
                c = await self._inspect_or_none(api, cid) if r.status < 400 else None
                if c is not None and c.auto_remove and not self._not_shipped(c):
                    await self._ship_auto_remove(api, c, r, started)
                    return
        except _TRANSIENT as exc:
            log.debug("docker: attach to %s failed (%s): the logs endpoint alone reads it", cid[:12], exc)
        finally:
            self._start_seen.pop(cid, None)
        if started.is_set() or cid in self._started_again:  # it started meanwhile: the usual path
            self._started_again.discard(cid)
            await self._ship(api, cid, True)

    async def _ship_auto_remove(self, api: DockerAPI, c: Container, attached: aiohttp.ClientResponse,
                                started: asyncio.Event) -> None:
        """Holds what attach carries while the container's log is opened, once it runs
        (before, dockerd answers with a created container's empty log and does not follow):
        its json-file if this process has it open, else the logs endpoint. Either gives
        Docker's timestamps, ids that a re-read after a restart reproduces; the held lines
        ship only if neither opens: the container was removed first, and no later read can
        ever produce those lines again."""
        cid, name = c.id, c.name
        decoder = AttachDecoder(self.settings.max_line_bytes, c.tty)
        held: list[tuple[str, bytes, bool, int]] = []  # stream, line, truncated, time received
        size = [0, 0]  # bytes held, lines dropped over the bound

        def keep(lines: list[tuple[str, bytes, bool]], now: int) -> None:
            for stream, data, cut in lines:
                if size[0] + len(data) > ATTACH_HOLD_BYTES:
                    size[1] += 1
                    continue
                size[0] += len(data)
                held.append((stream, data, cut, now))

        async def collect() -> None:
            while chunk := await attached.content.read(READ_CHUNK):
                keep(decoder.feed(chunk), time.time_ns())
            keep(decoder.flush(), time.time_ns())

        reader = asyncio.create_task(collect(), name=f"docker-attach-{c.id[:12]}")

        def logs_opened() -> None:
            # Closed, not merely left unread: dockerd writes a container's output to its attach
            # streams as it runs, and an attach nobody reads blocks the container's writes (a
            # `--rm` job printing 3 MB hung in write() until docker run timed out).
            reader.cancel()
            attached.close()
            held.clear()

        try:
            # Started, or its attach stream ended first (it ran and exited before the event came).
            # Already running when attach joined (`docker run -d` starts at once): its logs now.
            late = c.status != "created"
            if late:
                METRICS.count("logship_docker_attach_late_total")
                log.debug("docker: attach to %s (%s) joined it %s", name, cid[:12], c.status)
                ran: Container | None = c
            else:
                waiter = asyncio.create_task(started.wait())
                await asyncio.wait((waiter, reader), return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                ran = await self._inspect_or_none(api, cid)
            # Its json-file, if this process has it open (held since its creation, else opened by _ship),
            # is the one path: an open file stays readable through the removal, and it has every line
            # with Docker's times, whereas the endpoint refuses once removal starts and, seen under
            # load, can open and end empty for a container that has just exited.
            kept = self.held.take(cid) if self.held is not None else None
            if kept is not None:
                self._files[cid] = kept.file
            try:
                if ran is None and kept is not None:  # removed already: the file to its end
                    await self._ship_log_file(c, kept.file)
                    return
                if ran is not None and await self._ship(api, cid, True, on_open=logs_opened, inspected=ran):
                    return
            finally:
                if kept is not None:
                    del self._files[cid]
                    kept.file.close()
            await asyncio.wait((reader,), timeout=ATTACH_DRAIN_S)
            if not reader.done():
                log.warning("docker: attach stream of %s (%s) did not end; shipping what it held", name, cid[:12])
            if size[1]:
                METRICS.count("logship_docker_attach_dropped_lines_total", size[1])
                log.error("docker: %s (%s) was removed before its logs could be read and %d lines were over the "
                          "%d bytes held from its attach stream: lost", name, cid[:12], size[1], ATTACH_HOLD_BYTES)
            if late:
                # What it wrote before attach joined is in no stream we hold: possibly lost, counted.
                METRICS.count("logship_docker_unread_containers_total")
                log.warning("docker: %s (%s) was removed before its logs could be read, and attach joined it only "
                            "once it ran: what it wrote before that is lost", name, cid[:12])
            with self._reported_while_gone(c):
                await self._emit_attached(c, held + [(s, d, t, time.time_ns()) for s, d, t in decoder.flush()])
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _ship_held(self, cid: str) -> bool:
        """A container removed before it could even be inspected, whose json-file was held
        at its creation: shipped from it (as its configuration then allows); True if read."""
        held = self.held.take(cid) if self.held is not None else None
        if held is None:
            return False
        try:
            if held.config is None:
                log.warning("docker: %s was removed before it could be inspected and its configuration was not "
                            "readable: its held json-file is not shipped", cid[:12])
                METRICS.count("logship_docker_unread_containers_total")
                return False
            c = self._inspect_to_container(held.config)
            reason = self._not_shipped(c)
            if reason:
                self._decline(c, reason)
            else:
                await self._ship_log_file(c, held.file)
            return True
        finally:
            held.file.close()

    def _open_log_file(self, c: Container) -> BinaryIO | None:
        if c.log_driver != "json-file" or not c.log_path:
            return None
        try:
            return open(log_path_here(c.log_path, c.id, self.settings.files_root), "rb")
        except OSError as exc:
            log.debug("docker: cannot open the json-file of %s (%s): %s", c.name, c.id[:12], exc)
            return None

    @contextlib.contextmanager
    def _reported_while_gone(self, c: Container) -> Iterator[None]:
        """A container removed before its logs were read is in the registry while its lines
        ship: the eBPF source then replays what it held of it (its file lines), instead of
        letting them go as a container never reported."""
        self.containers.add(c)
        try:
            yield
        finally:
            self.containers.remove(c.id)

    async def _ship_log_file(self, c: Container, f: BinaryIO) -> None:
        """A removed container's json-file, read through the json-file decoder (jsonfile.py):
        the same lines and Docker times as the logs endpoint would give, so the same ids."""
        decoder = JsonFileDecoder(self.settings.max_line_bytes, c.tty)
        window = AckWindow(c.id, _no_advance)  # nothing to checkpoint: it is gone
        seq_state: dict[str, list[int]] = {}
        with self._reported_while_gone(c):
            while chunk := f.read(READ_CHUNK):
                await self._emit_lines(c, window, decoder.feed(chunk), seq_state)
            await self._emit_lines(c, window, decoder.flush(), seq_state)
        if decoder.bad_entries:
            METRICS.count("logship_docker_bad_entries_total", decoder.bad_entries, source="json-file")
        METRICS.count("logship_docker_json_file_reads_total")
        log.info("docker: %s (%s) was removed before its logs could be read: %d lines from its json-file",
                 c.name, c.id[:12], len(window))

    async def _emit_attached(self, c: Container, held: list[tuple[str, bytes, bool, int]]) -> None:
        """The held lines of a removed container: @timestamp is when they were received
        (attach has no Docker timestamps), made strictly increasing per stream so that the
        ids stay unique. Not tracked for checkpoints: nothing can re-read them."""
        if not held:
            return
        last: dict[str, int] = {}
        batch = []
        for stream, data, cut, t in held:
            t = max(t, last.get(stream, 0) + 1)
            last[stream] = t
            batch.append(Record(data, t, stream, c, 0, truncated=cut))
        METRICS.count("logship_docker_attach_lines_total", len(batch))
        log.info("docker: %s (%s) was removed before its logs could be read: %d lines from its attach stream",
                 c.name, c.id[:12], len(batch))
        for i in range(0, len(batch), 4096):
            await self.emit(batch[i:i + 4096])

    # ---- one container ----------------------------------------------------------
    def _inspect_to_container(self, data: dict[str, Any]) -> Container:
        return Container.from_inspect(data, self.settings.labels)

    def _decline(self, c: Container, reason: str) -> None:
        log.info("docker: not shipping %s (%s): %s", c.name, c.id[:12], reason)
        self.containers.decline(c.id)  # the eBPF source lets go of what it held for it

    def _not_shipped(self, c: Container) -> str:
        """Why the container is not shipped ("" when it is)."""
        return "the shipper's own container" if c.id in self._own_ids else self.filters.reason(c) or ""

    async def _ship(self, api: DockerAPI, cid: str, follow: bool, on_open: Callable[[], None] | None = None,
                    inspected: Container | None = None) -> bool:
        """Reads the container's log while it is shipped; True when a logs stream opened
        (on_open is called then, once)."""
        c = inspected or await self._inspect_or_none(api, cid)
        if c is None:
            return await self._ship_held(cid) if follow else False
        reason = self._not_shipped(c)
        if reason:
            self._decline(c, reason)
            if self.held is not None:
                self.held.release(cid)
            return True
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
                return True
        if self.checkpoints is not None and not c.auto_remove and self.checkpoints.register(cid):
            # On disk before its first line can be delivered: a crash right after would
            # otherwise leave no trace of it, and a restart would not catch it up. (Not for
            # auto-remove containers: stopped, they are gone; running, a restart reads them.)
            await self.checkpoints.persist()
        window = self.acks.window(cid, ckpt)
        since = self._last_seen.get(cid) or (max(0, ckpt - self._overlap_ns) if ckpt else 0)
        if ckpt and cid not in self._last_seen:
            self._resumed_at[cid] = ckpt  # the first lines read tell whether dockerd still had them all
        self.containers.add(c)  # before the first line is read: the eBPF filter follows the registry
        log.info("docker: %s %s (%s, image %s) since %d", "attached to" if follow else "catching up on",
                 c.name, cid[:12], c.image, since)
        empty_ends = 0
        was_opened = False
        # An auto-remove container's files go with it, mid-read: read from one opened now (unless
        # held since its creation), so its end is read even if it is removed first (after a
        # restart of the shipper too, while it runs).
        own_file = self._open_log_file(c) if c.auto_remove and cid not in self._files else None
        if own_file is not None:
            self._files[cid] = own_file

        def opened() -> None:
            nonlocal was_opened
            if not was_opened:
                was_opened = True
                if self.held is not None:
                    self.held.release(cid)  # read the usual way from here on
                if on_open is not None:
                    on_open()

        try:
            while True:
                try:
                    async with (self._catch_up if not follow else contextlib.nullcontext()):
                        decoder, read = await self._read(api, c, window, since, follow, opened)
                    fresh = await self._inspect_or_none(api, cid)
                except _TRANSIENT as exc:
                    # A torn stream: read again from the newest line we have. If the daemon
                    # itself is gone, the event loop's reconnect cancels us and re-lists.
                    METRICS.count("logship_docker_stream_errors_total")
                    log.warning("docker: stream of %s broke (%s); re-reading", c.name, error_text(exc))
                    since = self._reread_since(cid, since)
                    await asyncio.sleep(TORN_RETRY_S)
                    continue
                # A start event while this stream was ending means: read on from the newest line.
                # Stopped is re-checked after every await: a start must never be lost.
                if self._stays_stopped(cid, fresh):
                    if fresh is not None:
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
                since = self._reread_since(cid, since)
                empty_ends = 0 if read else empty_ends + 1
                await asyncio.sleep(min(0.05 * 2 ** empty_ends, 5.0) if empty_ends else 0)
        except StreamRefused:
            pass
        finally:
            if own_file is not None:
                del self._files[cid]
                own_file.close()
            self._started_again.discard(cid)
            self.containers.remove(cid)
            if self.checkpoints and not len(window):
                self.checkpoints.flush_soon()
            log.info("docker: stream of %s (%s) ended", c.name, cid[:12])
        return was_opened

    def _stays_stopped(self, cid: str, fresh: Container | None) -> bool:
        """Removed, or stopped with no start event since its stream ended."""
        return fresh is None or not (fresh.running or cid in self._started_again)

    async def _final_read(self, api: DockerAPI, c: Container, window: AckWindow, since: int,
                          decoder: StreamDecoder) -> StreamDecoder:
        """Reads on, without following, from the newest line we have, until a read brings
        nothing new: dockerd may still be copying the container's output into its log when
        the container is reported stopped (seen with TTY containers: a follow stream that
        ended empty), and a response can end early, at a frame boundary or cut mid-frame
        (seen under CPU load: a catch-up read ended mid-frame and the rest of the log was
        never read). Lines read again are skipped (this process emitted them)."""
        for _ in range(FINAL_READS_MAX):
            await asyncio.sleep(FINAL_READ_DELAY_S)
            marks = dict(self._emitted.get(c.id) or ())
            try:
                decoder, _ = await self._read(api, c, window, self._reread_since(c.id, since), False)
            except StreamRefused:
                return decoder  # removed meanwhile: keep what we had
            except _TRANSIENT as exc:
                METRICS.count("logship_docker_stream_errors_total")
                log.warning("docker: final read of %s broke (%s); reading again", c.name, error_text(exc))
                continue
            if dict(self._emitted.get(c.id) or ()) == marks:
                return decoder
        log.warning("docker: the log of %s (%s) still grew after %d final reads; leaving it", c.name, c.id[:12],
                    FINAL_READS_MAX)
        return decoder

    def _reread_since(self, cid: str, since: int) -> int:
        """Where a re-read of a container's log starts: its newest line's time less the
        overlap. stdout and stderr are stamped by two clocks: the line after the newest
        one in the log can be the other stream's, with an earlier time (found by
        tests/unit/test_exactly_once_model.py). What this process emitted already is skipped."""
        newest = self._last_seen.get(cid)
        return since if newest is None else max(0, newest - self._overlap_ns)

    async def _inspect_or_none(self, api: DockerAPI, cid: str) -> Container | None:
        try:
            return self._inspect_to_container(await api.inspect(cid))
        except LookupError:
            return None

    async def _read(self, api: DockerAPI, c: Container, window: AckWindow, since: int,
                    follow: bool, opened: Callable[[], None] | None = None) -> tuple[StreamDecoder, int]:
        """Reads one logs response to its end; returns the decoder (holding any unfinished
        line) and how many lines were read."""
        seq_state: dict[str, list[int]] = {}
        # A read from the newest line's time starts with lines this process already emitted.
        skip = dict(self._emitted.get(c.id) or ())
        n = 0
        decoder: StreamDecoder | None = None

        async def running() -> bool:
            fresh = await self._inspect_or_none(api, c.id)
            return fresh is not None and fresh.running

        try:
            async with open_log(api, self.settings, c, since, follow, running, self._files.get(c.id)) as (
                    decoder, chunks):
                if opened is not None:
                    opened()
                async for chunk in chunks:
                    lines = decoder.feed(chunk)
                    if lines:
                        n += len(lines)
                        await self._emit_lines(c, window, lines, seq_state, skip)
                if decoder.torn:
                    # Cut inside a frame: not the end of the log. Its pieces must never become a line.
                    raise StreamTorn(f"the logs response of {c.name} ended inside a frame")
        finally:
            for name, value in (("logship_truncated_lines_total", decoder.truncated_lines if decoder else 0),
                                ("logship_truncated_bytes_total", decoder.truncated_bytes if decoder else 0),
                                ("logship_docker_bad_entries_total", decoder.bad_entries if decoder else 0)):
                if value:
                    METRICS.count(name, value, source="docker")
        assert decoder is not None
        return decoder, n

    async def _emit_lines(self, c: Container, window: AckWindow, lines: list[Line],
                          seq_state: dict[str, list[int]], skip: dict[str, tuple[int, int]] | None = None) -> None:
        """Records of the lines, emitted and tracked; `skip`: per stream, the position up to
        which this process emitted lines before (emptied as each stream passes it)."""
        if not lines:
            return
        last = self._last_seen.get(c.id, 0)
        batch: list[Record] = []
        append = batch.append
        if self._resumed_at:
            ckpt = self._resumed_at.pop(c.id, 0)
            if ckpt:
                gap = self._gap(c, ckpt, lines)
                if gap is not None:
                    append(gap)
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
            if skip and stream in skip:
                if (ts, seq) <= skip[stream]:
                    continue  # sent downstream before: ES would answer 409, the live view would repeat it
                del skip[stream]
            if ts > last:
                last = ts
            if truncated or merged:
                append(Record(data, ts, stream, c, seq, truncated=truncated, partial_merged=merged))
            else:  # the common case, without keyword arguments: this loop runs once per line
                append(Record(data, ts, stream, c, seq))
        if not batch:
            return
        await self.emit(batch)
        # Tracked once it is in the pipeline: a put cancelled by a reconnect leaves no
        # phantom outstanding record behind (the re-read sends the lines again).
        window.track(batch)
        self._last_seen[c.id] = last
        emitted = self._emitted.setdefault(c.id, {})
        for stream, (ts, seq) in seq_state.items():
            emitted[stream] = max(emitted.get(stream, (0, 0)), (ts, seq))

    def _gap(self, c: Container, ckpt: int, lines: list[Line]) -> Record | None:
        """A resume whose oldest line is newer than the checkpoint (beyond the line right
        after it, which an undelivered line there would be): dockerd's json-file rotated
        away what lay between while we were down. A fact, not a silence: counted, logged and
        shipped as an event document of the container (its time the checkpoint's, so a
        crash before it is delivered reports it again under the same id)."""
        oldest = min((ln[1] for ln in lines if ln[1]), default=0)
        # Lines arrive in the order dockerd copied them, and stdout's and stderr's clocks may
        # interleave by up to the resume overlap: the other stream's older line can come later.
        if oldest <= ckpt + 1 + self._overlap_ns:
            return None
        METRICS.count("logship_docker_gaps_total")
        METRICS.count("logship_docker_gap_seconds_total", (oldest - ckpt) / 1e9)
        start, end = iso_ns(ckpt), iso_ns(oldest)
        log.warning("docker: %s (%s): its log lines after %s and before %s are gone (rotated by dockerd before they "
                    "could be read)", c.name, c.id[:12], start, end)
        text = (f"logship: lines of {c.name} written after {start} and before {end} were lost: dockerd rotated "
                "them out of its json-file before they could be read")
        return Record(text.encode(), ckpt + 1, EVENT, c, 0, fields={
            "message": text, "event.kind": "event", "event.action": "log-gap", "log.level": "warning",
            "logship.gap.start": start, "logship.gap.end": end,
            "logship.gap.seconds": round((oldest - ckpt) / 1e9, 3)})

    def _advanced(self, container_id: str, time_ns: int) -> None:
        if self.checkpoints:
            self.checkpoints.advance(container_id, time_ns)

