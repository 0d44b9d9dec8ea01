"""Wiring: sources -> parse/enrich -> sink, through bounded queues, with a graceful
shutdown that flushes what is already read before exiting."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


from shipper.core.acks import deliver
from shipper.core.budget import RECORD_OVERHEAD, ByteQueue, FairQueue
from shipper.config import Config, ConfigError
from shipper.core.container import ContainerRegistry
from shipper.transforms.enrich import Enricher
from shipper.runtime.http import EsProbe, HttpServer, LogHub
from shipper.core.metrics import METRICS
from shipper.transforms.multiline import MultilineStage
from shipper.core.record import Record
from shipper.sinks.elasticsearch.sink import EXPRESS_SLOTS, ElasticsearchSink, Item
from shipper.sources.docker.source import DockerSource
from shipper.runtime.state_lock import lock_state_dir
from shipper.snapshots.http_routes import routes as snapshot_routes
from shipper.snapshots.manager import SnapshotManager
from shipper.sources.ebpf.source import EbpfSource, EbpfUnavailable, from_a_file

log = logging.getLogger("logship.pipeline")
EXIT_SECOND_SIGNAL = 130
COALESCE_LINES = 4096  # at most this many lines taken from the queue at once
PARSE_PART = 256  # lines parsed between two chances for the express lane to run
EXPRESS_LINES = 256  # at most this many lines of the containers keeping up handed on ahead at once
MIB = 1 << 20
MIN_RECORDS_BYTES = 8 * MIB
DROPPED = "logship_pipeline_dropped_total"
METRICS.describe(DROPPED, "Lines not shipped because their container was over its byte budget and its source cannot "
                          "pause (eBPF: the kernel ring serves every container), by container and reason.")
BUDGET_WAITS = "logship_pipeline_budget_waits_total"
METRICS.describe(BUDGET_WAITS, "Times a source's read of one container waited because that container was over its "
                               "byte budget (its stream paused; the other containers' went on).")
REPORT_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class MemorySplit:
    """LOGSHIP_MEMORY_LIMIT_MB split between the stages, in bytes."""
    sink: int  # the Elasticsearch sink's bulks: one filling, `concurrency` in flight (documents and records)
    encoded: int  # encoded lines waiting for the sink: about one bulk (more only delays the lines behind)
    express: int  # the express lane's encoded lines waiting for the sink, and as much for each of its bulks in flight
    records: int  # lines waiting to be parsed, shared fairly between containers

    @classmethod
    def of(cls, config: Config) -> "MemorySplit":
        es = config.elasticsearch
        total = config.pipeline.memory_limit_mb * MIB
        sink = 2 * (es.concurrency + 1) * es.bulk_max_bytes
        encoded = es.bulk_max_bytes
        express = es.bulk_max_bytes // 8
        queued = encoded + (1 + EXPRESS_SLOTS) * express  # (the express queue, and its bulks in flight)
        records = total - sink - queued
        if records < MIN_RECORDS_BYTES:
            need = (sink + queued + MIN_RECORDS_BYTES + MIB - 1) // MIB
            raise ConfigError(f"LOGSHIP_MEMORY_LIMIT_MB={config.pipeline.memory_limit_mb}: too small for "
                              f"LOGSHIP_ES_CONCURRENCY={es.concurrency} and LOGSHIP_ES_BULK_MAX_BYTES="
                              f"{es.bulk_max_bytes} (the sink's bulks take {sink // MIB} MiB, the encoded queue "
                              f"{queued // MIB} MiB; at least {need} needed)")
        return cls(sink, encoded, express, records)


def encoded_bytes(items: list[Item]) -> int:
    """Memory of a batch of encoded items: the bulk lines, and their records (whose message is at
    most as long as its document)."""
    return 2 * sum([len(it[1]) for it in items]) + RECORD_OVERHEAD * len(items)


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
        self.memory = MemorySplit.of(config)
        self.records = FairQueue(self.memory.records)
        # One batch waiting for the sink keeps it busy; more would only delay every container's lines.
        self.encoded: ByteQueue[list[Item]] = ByteQueue(self.memory.encoded, encoded_bytes, max_items=1)
        self.express: ByteQueue[list[Item]] = ByteQueue(self.memory.express, encoded_bytes)  # see _express
        self._dropped: Counter[str] = Counter()  # container name -> lines dropped since the last report
        self._reported = -REPORT_EVERY_S
        self._report_timer: asyncio.TimerHandle | None = None
        self.enricher = Enricher(config.pipeline.hostname, tz=zone(config.pipeline.timezone))
        p = config.pipeline
        self.multiline = MultilineStage(p.multiline_timeout_s, config.docker.max_line_bytes, p.multiline_max_lines) \
            if p.multiline else None
        self.sink = ElasticsearchSink(config.elasticsearch, config.spool, config.pipeline.state_dir)
        self.containers = ContainerRegistry()
        self.docker = DockerSource(config.docker, self.emit, self.containers, state_dir=config.pipeline.state_dir)
        self.ebpf = EbpfSource(config.ebpf, self.emit, self.containers, mode=config.pipeline.ebpf,
                               state_dir=config.pipeline.state_dir,
                               room=self.records.admits_now) if config.pipeline.ebpf != "off" else None
        self.snapshots = SnapshotManager(config) if self.ebpf is not None and config.snapshot.enabled else None
        METRICS.gauge("logship_queue_records_batches", self.records.qsize, "Batches waiting to be parsed.")
        METRICS.gauge("logship_queue_encoded_batches", self.encoded.qsize, "Batches waiting for the sink.")
        METRICS.gauge("logship_queue_records_bytes", lambda: self.records.total,
                      "Bytes of lines waiting to be parsed or being parsed (payload + per-record overhead).")
        METRICS.gauge("logship_queue_encoded_bytes", lambda: self.encoded.bytes + self.express.bytes,
                      "Bytes of encoded lines waiting for the sink.")
        METRICS.gauge("logship_memory_limit_bytes", lambda: config.pipeline.memory_limit_mb * MIB,
                      "LOGSHIP_MEMORY_LIMIT_MB: the bound on lines in flight.")
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
        """A source's batch into the fair stage. A Docker batch is one read of one container: over
        its budget, that read waits (its stream pauses, no other). The eBPF source reads one ring
        for all containers and cannot wait for one: what an over-budget container sent is dropped,
        except its file lines, which it reads only while the stage has room for them (the rest
        waits in the file: `EbpfSource` paces them by `admits_now`)."""
        source = batch[0].source
        METRICS.count("logship_lines_in_total", len(batch), source=source)
        if source == "ebpf":
            refused = self.records.offer(batch, paced=from_a_file)
            if refused:
                self._drop(refused, "over_budget")
        else:
            await self.records.put(batch, lambda: METRICS.count(BUDGET_WAITS, source=source))

    def _drop(self, records: list[Record], reason: str) -> None:
        """Counted per container and reported (at most every REPORT_EVERY_S); acknowledged, so the
        checkpoints of their files move on past them (they are gone, not pending)."""
        by_name = Counter(r.container.name for r in records)
        for name, n in by_name.items():
            METRICS.count(DROPPED, n, container=name, source=records[0].source, reason=reason)
        self._dropped.update(by_name)
        deliver(records)
        if self._report_timer is None:  # the first drop at once, then at most one line per interval
            wait = max(0.0, self._reported + REPORT_EVERY_S - time.monotonic())
            self._report_timer = asyncio.get_running_loop().call_later(wait, self._report_drops)

    def _report_drops(self) -> None:
        self._report_timer = None
        self._reported = time.monotonic()
        log.warning("pipeline: lines dropped, their containers over their byte budget (LOGSHIP_MEMORY_LIMIT_MB; "
                    "%s): %s", DROPPED, ", ".join(f"{k}={v}" for k, v in self._dropped.most_common(10))
                    + (f" and {len(self._dropped) - 10} more containers" if len(self._dropped) > 10 else ""))
        self._dropped.clear()

    async def _process(self) -> None:
        ml = self.multiline
        loop = asyncio.get_running_loop()
        next_flush = 0.0
        records = self.records
        while True:
            # Wake up now and then so quiet streams' held lines leave after the timeout. What
            # queued meanwhile goes along (one batch of each container in turn): per-batch costs
            # are paid once per read-ahead.
            # While the sink is behind, a batch the size of its bulks: what is taken here waits in front
            # of every container's next lines.
            most = COALESCE_LINES if self.encoded.empty() else min(COALESCE_LINES, getattr(self.sink, "bulk_docs",
                                                                                           COALESCE_LINES))
            got = await records.take(most, 0.25 if ml else None)
            batch, taken = got if got is not None else ([], {})
            try:
                now = loop.time()
                ready = self._ready(batch, now) if batch else []
                if ml and now >= next_flush:
                    ready += ml.flush_due(now)
                    next_flush = now + 0.25
                if ready:
                    await self._forward(ready)
            finally:
                if taken:
                    records.release(taken)  # handed on (or failed): room for that container's next reads

    async def _express(self) -> None:
        """The express lane: the lines of containers keeping up (a read or two queued) are taken as
        they come, parsed and queued for the sink apart, which sends them in the next free request
        slot or in one of the two kept for them. Under a flood a quiet container's line then waits for no flood
        batch being parsed, queued for the sink or filling a bulk (bench/fairness.py: write to
        acknowledged p99 2.1 s with one FIFO after the fair stage, figures in ARCHITECTURE.md).
        Order within a container may change between the lanes; the acknowledgements are by
        position, and Elasticsearch sorts by time."""
        loop = asyncio.get_running_loop()
        while True:
            batch, taken = await self.records.take_light(EXPRESS_LINES)
            try:
                ready = self._ready(batch, loop.time())
                if ready:
                    await self._forward(ready, express=True)
            finally:
                self.records.release(taken)

    def _ready(self, batch: list[Record], now: float) -> list[Record]:
        """A taken batch's lines that are complete (the multi-line stage holds the rest)."""
        if self.snapshots is not None:
            self._consider(batch)
        return self.multiline.feed(batch, now) if self.multiline else batch

    def _consider(self, batch: list[Record]) -> None:
        """Snapshot triggers see each eBPF line as soon as it is read, before the multi-line
        hold: the writing thread is armed while its "after" half is still to come."""
        assert self.snapshots is not None
        parsed, consider = self.enricher.parsed_fields, self.snapshots.consider
        for r in batch:
            if r.tid is not None:
                parsed(r)  # cached on the record: the document reuses it
                consider(r)

    async def _forward(self, batch: list[Record], *, express: bool = False) -> None:
        """Parse, enrich and encode complete records and hand them to the sink's queue: a part at a
        time, letting the express lane in between (a flood's batch takes ~100 ms to parse on a busy
        host, a wait for every quiet line behind it)."""
        encoded: list[bytes] = []
        for i in range(0, len(batch), PARSE_PART):
            part = batch[i:i + PARSE_PART] if len(batch) > PARSE_PART else batch
            if i:
                await asyncio.sleep(0)
            docs = self.enricher.documents_json(part)  # a record orjson refuses is repaired there, alone
            if self.hub.active:  # the /logs tap costs this one test while nobody listens
                self.hub.publish(part, docs)
            encoded += self.sink.encode_batch(part, docs)
        if encoded:
            METRICS.count("logship_encoded_bytes_total", sum(map(len, encoded)), source=batch[0].source)
        for r in batch:
            # Encoded: the sink needs only the bytes and the record's identity from here on, and
            # the parser's dict is most of a record's memory (~1 KB) while it waits for its ack.
            r.fields = {}
        await (self.express if express else self.encoded).put(list(zip(batch, encoded, strict=True)))

    async def run(self, stop: asyncio.Event) -> None:
        await self.sink.start()
        sources: list[asyncio.Task[Any]] = []
        process = asyncio.create_task(self._process(), name="process")
        express = asyncio.create_task(self._express(), name="express")
        sink = asyncio.create_task(self.sink.run(self.encoded, self.express), name="es-sink")
        stopper = asyncio.create_task(stop.wait())
        self.tasks.update({t.get_name(): t for t in (process, express, sink)})
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
        done, _ = await asyncio.wait([*sources, process, express, sink, stopper], return_when=asyncio.FIRST_COMPLETED)
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
        while not (self.encoded.empty() and self.express.empty()):  # ... and handed to the sink
            await asyncio.sleep(0.05)
        sink.cancel()  # its finally-block sends the last partial batch
        await asyncio.gather(sink, return_exceptions=True)
        process.cancel()
        express.cancel()
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
