"""Wiring: sources -> parse/enrich -> sink, through bounded queues, with a graceful
shutdown that flushes what is already read before exiting."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from datetime import timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


from shipper.core.aio import get_within
from shipper.config import Config, ConfigError
from shipper.core.container import ContainerRegistry
from shipper.transforms.enrich import Enricher
from shipper.runtime.http import EsProbe, HttpServer, LogHub
from shipper.core.metrics import METRICS
from shipper.transforms.multiline import MultilineStage
from shipper.core.record import Record
from shipper.sinks.elasticsearch.sink import ElasticsearchSink, Item
from shipper.sources.docker.source import DockerSource
from shipper.runtime.state_lock import lock_state_dir
from shipper.snapshots.http_routes import routes as snapshot_routes
from shipper.snapshots.manager import SnapshotManager
from shipper.sources.ebpf.source import EbpfSource, EbpfUnavailable

log = logging.getLogger("logship.pipeline")
EXIT_SECOND_SIGNAL = 130
COALESCE_LINES = 4096  # at most this many lines taken from the queue at once
# The encoded queue carries coalesced batches (up to COALESCE_LINES each, not one read):
# a few of them keep the sink's bulks full; 64 of them held ~250k documents (RSS ~380 MiB)
# behind a source that reads faster than Elasticsearch takes (json-file reading).
ENCODED_QUEUE_DIVISOR = 16


def zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"LOGSHIP_TIMEZONE={name}: unknown time zone (use an IANA name like Europe/Paris)") from None


class Pipeline:
    def __init__(self, config: Config) -> None:
        self.config = config
        n = config.pipeline.queue_batches
        self.records: asyncio.Queue[list[Record]] = asyncio.Queue(n)
        self.encoded: asyncio.Queue[list[Item]] = asyncio.Queue(max(2, n // ENCODED_QUEUE_DIVISOR))
        self.enricher = Enricher(config.pipeline.hostname, tz=zone(config.pipeline.timezone))
        p = config.pipeline
        self.multiline = MultilineStage(p.multiline_timeout_s, config.docker.max_line_bytes, p.multiline_max_lines) \
            if p.multiline else None
        self.sink = ElasticsearchSink(config.elasticsearch, config.spool, config.pipeline.state_dir)
        self.containers = ContainerRegistry()
        self.docker = DockerSource(config.docker, self.emit, self.containers, state_dir=config.pipeline.state_dir)
        self.ebpf = EbpfSource(config.ebpf, self.emit, self.containers, mode=config.pipeline.ebpf,
                               state_dir=config.pipeline.state_dir) if config.pipeline.ebpf != "off" else None
        self.snapshots = SnapshotManager(config) if self.ebpf is not None and config.snapshot.enabled else None
        METRICS.gauge("logship_queue_records_batches", self.records.qsize, "Batches waiting to be parsed.")
        METRICS.gauge("logship_queue_encoded_batches", self.encoded.qsize, "Batches waiting for the sink.")
        self.hub = LogHub(config.http.logs_queue_lines, config.http.logs_max_subscribers)
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.http = HttpServer(config.http, self.hub, stages=self.stage_status, es=EsProbe(config.elasticsearch),
                               control_socket=config.control_socket(), sink=self.sink.block.status)
        if self.snapshots is not None:
            self.http.add_routes(snapshot_routes(self.snapshots))

    def stage_status(self) -> dict[str, str]:
        """running | starting | stopped | failed, per stage: the /health answer. The eBPF source
        is "starting" while its probe compiles and attaches (not healthy: in-container files
        written meanwhile are only caught up for files that have a checkpoint)."""
        out = {name: "running" if not t.done() else "failed" if not t.cancelled() and t.exception() else "stopped"
               for name, t in self.tasks.items()}
        if self.ebpf is not None and out.get("ebpf-source") == "running" and self.ebpf.state == "starting":
            out["ebpf-source"] = "starting"
        return out

    async def emit(self, batch: list[Record]) -> None:
        METRICS.count("logship_lines_in_total", len(batch), source=batch[0].source)
        await self.records.put(batch)

    async def _process(self) -> None:
        ml = self.multiline
        loop = asyncio.get_running_loop()
        next_flush = 0.0
        records = self.records
        while True:
            # Wake up now and then so quiet streams' held lines leave after the timeout.
            batch = await get_within(records, 0.25 if ml else None)
            taken = 1 if batch is not None else 0
            # What queued meanwhile goes along: per-batch costs are paid once per read-ahead.
            while batch and len(batch) < COALESCE_LINES and not records.empty():
                batch = batch + records.get_nowait()  # a new list: sources still hold theirs
                taken += 1
            try:
                now = loop.time()
                if batch and self.snapshots is not None:
                    self._consider(batch)
                ready = (ml.feed(batch, now) if ml else batch) if batch else []
                if ml and now >= next_flush:
                    ready += ml.flush_due(now)
                    next_flush = now + 0.25
                if ready:
                    await self._forward(ready)
            finally:
                for _ in range(taken):
                    records.task_done()

    def _consider(self, batch: list[Record]) -> None:
        """Snapshot triggers see each eBPF line as soon as it is read, before the multi-line
        hold: the writing thread is armed while its "after" half is still to come."""
        assert self.snapshots is not None
        parsed, consider = self.enricher.parsed_fields, self.snapshots.consider
        for r in batch:
            if r.tid is not None:
                parsed(r)  # cached on the record: the document reuses it
                consider(r)

    async def _forward(self, batch: list[Record]) -> None:
        """Parse, enrich and encode complete records and hand them to the sink's queue."""
        docs = self.enricher.documents_json(batch)  # a record orjson refuses is repaired there, alone
        if self.hub.active:  # the /logs tap costs this one test while nobody listens
            self.hub.publish(batch, docs)
        encoded = self.sink.encode_batch(batch, docs)
        if encoded:
            METRICS.count("logship_encoded_bytes_total", sum(map(len, encoded)), source=batch[0].source)
        for r in batch:
            # Encoded: the sink needs only the bytes and the record's identity from here on, and
            # the parser's dict is most of a record's memory (~1 KB) while it waits for its ack.
            r.fields = {}
        await self.encoded.put(list(zip(batch, encoded, strict=True)))

    async def run(self, stop: asyncio.Event) -> None:
        await self.sink.start()
        sources: list[asyncio.Task[Any]] = []
        process = asyncio.create_task(self._process(), name="process")
        sink = asyncio.create_task(self.sink.run(self.encoded), name="es-sink")
        stopper = asyncio.create_task(stop.wait())
        self.tasks.update({t.get_name(): t for t in (process, sink)})
        if self.ebpf is not None:
            # The probe is compiled and attached before the containers are followed (and
            # "following events" is said): what they write from then on is captured.
            sources.append(asyncio.create_task(self.ebpf.run(), name="ebpf-source"))
            self.tasks["ebpf-source"] = sources[-1]
            await self.http.start()  # (/health says "starting" meanwhile)
            await self._settled(self.ebpf, sources[-1], stopper)
        else:
            await self.http.start()
        sources.append(asyncio.create_task(self.docker.run(), name="docker-source"))
        self.tasks["docker-source"] = sources[-1]
        snapshots = asyncio.create_task(self.snapshots.run(self.ebpf, self.containers), name="snapshots") \
            if self.snapshots else None
        done, _ = await asyncio.wait([*sources, process, sink, stopper], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stopper and t.exception():
                log.error("stage %s failed: %r", t.get_name(), t.exception())
        log.info("shutting down: flushing what was read")
        for t in sources:
            t.cancel()
        await asyncio.gather(*sources, return_exceptions=True)
        await self.records.join()  # everything read is encoded ...
        if self.multiline:
            await self._forward(self.multiline.flush())
        while not self.encoded.empty():  # ... and handed to the sink
            await asyncio.sleep(0.05)
        sink.cancel()  # its finally-block sends the last partial batch
        await asyncio.gather(sink, return_exceptions=True)
        process.cancel()
        stopper.cancel()
        if snapshots is not None:
            snapshots.cancel()
            await asyncio.gather(snapshots, return_exceptions=True)
        await self.sink.close()
        self.docker.close()  # the final checkpoints, now that the sink has delivered what it could
        if self.ebpf is not None:
            self.ebpf.close()
        await self.http.stop()
        log.info("stopped")
        for t in sources:  # LOGSHIP_EBPF=on and the probe could not start: exit non-zero
            exc = t.exception() if t.done() and not t.cancelled() else None
            if isinstance(exc, EbpfUnavailable):
                raise exc


    @staticmethod
    async def _settled(ebpf: EbpfSource, task: "asyncio.Task[Any]", stopper: "asyncio.Task[Any]") -> None:
        """Until the probe is attached or known not to start (or its task ended, or a stop signal)."""
        while not ebpf.settled.is_set() and not task.done() and not stopper.done():
            await asyncio.sleep(0.05)


async def run(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second signal: the operator does not want to wait for the flush
            log.error("second signal: exiting now; unacknowledged lines are re-read on the next start")
            os._exit(EXIT_SECOND_SIGNAL)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    lock = lock_state_dir(config.pipeline.state_dir)
    try:
        await Pipeline(config).run(stop)
    finally:
        os.close(lock)


def tune_gc() -> None:
    """Lines are freed by reference counting; the cyclic collector only finds the rare cycle
    (exceptions, aiohttp internals). With its default gen-0 threshold (700 allocations) it
    ran every few dozen lines and walked the records still in flight (measured: 1.5 us of
    CPU per line, 15% of the shipper's time, `bench/docker_source.py`). Start-up objects
    are frozen out of collections; the young generation is collected every 100k objects."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def run_forever(config: Config) -> Any:
    tune_gc()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        return asyncio.run(run(config))
    return uvloop.run(run(config))
