"""The Elasticsearch sink: batches documents into `_bulk` requests, judges every item of
every response on its own, dead-letters what Elasticsearch refuses, and spools to disk
while it is unreachable.

Why a lean aiohttp writer and not elasticsearch-py's async client: we build the NDJSON
body ourselves with orjson in one pass (no action dicts, no re-serialisation) and need
the raw per-item statuses to drive acknowledgements, retries and dead letters exactly;
the client's bulk helper re-encodes every action and hides which item failed how.
bench/es_sink.py measures both, on the same pre-enriched documents, against a minimal
loader replaying prebuilt 5 MB bodies (the ceiling for any client), on a private ES, 2
cores shared with it (median of 3, 200k docs each): this writer 35,170 docs/s (108% of the
loader's 32,415), elasticsearch-py's async streaming bulk helper 20,085 docs/s; p99
write-to-searchable at 5k lines/s with refresh 1 s: 1.25 s (p50 0.69 s). elasticsearch-py
is only used for the few set-up calls (templates.py), where its error types help.

Batching: a bulk leaves when full (bulk_max_docs/bulk_max_bytes), when its oldest
document waited flush_interval_s, or, while a request slot is free, after linger_s: low
latency while ES keeps up, full bulks as soon as every slot is busy.

Per item: 2xx and 409 (the `_id` is deterministic, see Record.doc_id: 409 = already
held) are delivered; 429/5xx and transport errors are retried, the failed items only,
with exponential backoff and jitter, and so is a `cluster_block_exception` (a flood-stage
read-only block, an operator's write block: the cluster refuses, not the document; see
blocks.py: held and spooled, never dead-lettered, one log line when it starts and one when
it lifts); any other 4xx (mapping/parse rejection) sends the
document, as an unindexed string with the error, to `<prefix>-deadletter-YYYY.MM.DD`
(same `_id`, so that too is idempotent) and counts as delivered.

Acknowledgements: `record.on_delivered(record)` is called exactly once per record, once
Elasticsearch holds it (or its dead letter), possibly out of order across requests.
Never for a record that is only in the spool.

The disk spool (spool.py): when Elasticsearch has been failing for `spool.after_s`, new
batches (and the items a failing request still holds) go to disk instead of memory, and a
replay task sends them back in order when it answers. While the spool is not empty, new
batches queue behind it (order). When it is full, `run` stops taking from its input queue:
the sources pause. Spooled frames carry the complete bulk item (action with
`_index`/`_id`, and source), nothing else. The Record objects stay in memory (bounded by
`spool.max_ack_records`, stripped of their payload, which is on disk) only to acknowledge
them after the replay (the ack tracker knows them by identity, so they are kept, never
dropped unacknowledged: reaching the bound pauses the input like a full spool). After a
restart those callbacks are gone: the frames are replayed without acknowledgement, the
Docker source's checkpoint of those lines is therefore behind, it re-reads them, and
Elasticsearch answers 409 to the re-sent copies: the price of the restart is some re-
reading, never a loss or a duplicate. The same argument covers a SIGKILL in mid-bulk:
whatever was not acknowledged is re-read, whatever ES already held is answered 409. """

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from shipper.core.acks import deliver
from shipper.core.aio import get_within, wait_event
from shipper.config import ElasticsearchSettings, SpoolSettings
from shipper.core.metrics import BULK_LATENCY, LAST_BULK_OK, METRICS
from shipper.core.record import ID_FORMAT, Record
from shipper.sinks.elasticsearch.blocks import OVERLOAD_HINT, WriteBlock, block_reason
from shipper.sinks.elasticsearch.client import es_session
from shipper.sinks.elasticsearch.deadletter import deadletter_item
from shipper.sinks.elasticsearch import retention
from shipper.sinks.elasticsearch.indices import DAY_NS, DEADLETTER, daily_index, index_for_day
from shipper.core.masking import error_text, mask_credentials
from shipper.sinks.elasticsearch.judge import Verdict, is_block, item_results, verdict
from shipper.sinks.elasticsearch.templates import setup_all_async
from shipper.sinks.spool import Position, Spool

log = logging.getLogger("logship.es")

# The action line (the id exactly as Record.doc_id, formatted without a str in between) and the source.
_BULK_ITEM = b'{"create":{"_index":"%s","_id":"' + ID_FORMAT + b'"}}\n%s\n'
Item = tuple[Record | None, bytes]  # the record (None once it went through a restart) and its NDJSON lines
LOG_EVERY_S = 10.0
MIN_BULK_DOCS = 200


EXPRESS_SLOTS = 2  # express bulks in flight beyond LOGSHIP_ES_CONCURRENCY (see _express_loop)


class ElasticsearchStartError(RuntimeError):
    """Elasticsearch refused us for a reason a retry cannot fix (credentials, certificate)."""


class _RateLimitedLog:
    """At most one line per key and interval: never a line per event."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def __call__(self, level: int, key: str, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= LOG_EVERY_S:
            self._last[key] = now
            log.log(level, msg, *args)


class _Hosts:
    """Round robin over the URLs, skipping those that failed recently."""

    def __init__(self, urls: tuple[str, ...]) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.names = [redact_url(u) for u in self.urls]  # a metric label: never the credentials
        self._dead_until = [0.0] * len(self.urls)
        self._fails = [0] * len(self.urls)
        self._i = 0

    def pick(self) -> int:
        now = time.monotonic()
        for _ in range(len(self.urls)):
            self._i = (self._i + 1) % len(self.urls)
            if self._dead_until[self._i] <= now:
                return self._i
        return min(range(len(self.urls)), key=self._dead_until.__getitem__)

    def failed(self, i: int) -> None:
        self._fails[i] += 1
        self._dead_until[i] = time.monotonic() + min(2 ** self._fails[i], 30)

    def ok(self, i: int) -> None:
        self._fails[i] = 0
        self._dead_until[i] = 0.0


def redact_url(url: str) -> str:
    """The URL with its password masked, for logs and errors (shipper.core.masking)."""
    return mask_credentials(url)


class ElasticsearchSink:
    def __init__(self, settings: ElasticsearchSettings, spool: SpoolSettings | None = None,
                 state_dir: Path | None = None) -> None:
        self.s = settings
        self.spool_settings = spool or SpoolSettings(enabled=False)
        self._state_dir = state_dir
        self.spool: Spool | None = None
        self._session: aiohttp.ClientSession | None = None
        self._hosts = _Hosts(settings.url)
        self._in_flight = asyncio.Semaphore(settings.concurrency)
        self.bulk_docs = settings.bulk_max_docs  # what a bulk holds now: adapted to Elasticsearch's speed
        self._slot_freed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._express_slot = asyncio.Semaphore(EXPRESS_SLOTS)  # requests beyond `concurrency`, for express lines
        self._index_for_day: dict[int, bytes] = {}
        self._failing_since: float | None = None
        self._templates_ready = not settings.setup
        self._setup_lock = asyncio.Lock()
        self._acks: collections.deque[tuple[Position, Record]] = collections.deque()
        self._replay_wake = asyncio.Event()
        self._replayer: asyncio.Task[None] | None = None
        self._retention: asyncio.Task[None] | None = None
        self._say = _RateLimitedLog()
        self.block = WriteBlock()
        dead_letters = index_for_day(settings.index_prefix, "", DEADLETTER)  # every day's: `<prefix>-deadletter-`
        self._dl_prefix = b'{"create":{"_index":"' + dead_letters.encode()

    # ---- connection -------------------------------------------------------------
    async def start(self) -> None:
        """Opens the session and the spool, checks credentials and certificates (a clear
        error now beats retrying forever), puts the index templates if ES answers."""
        self._session = es_session(self.s, self.s.timeout_s, headers={"Content-Type": "application/x-ndjson"},
                                   limit=self.s.concurrency + 4)
        if self.spool_settings.enabled and self._state_dir is not None:
            sp = self.spool_settings
            self.spool = Spool(Path(self._state_dir) / "spool", max_bytes=sp.max_bytes,
                               segment_bytes=sp.segment_bytes, fsync=sp.fsync)
            METRICS.gauge("logship_spool_bytes", lambda: self.spool.pending_bytes if self.spool else 0,
                          "Bytes waiting in the disk spool.")
        await self._check_access()
        if not self._templates_ready:
            await self._ensure_templates()

    async def _check_access(self) -> None:
        assert self._session is not None
        for raw_url in self._hosts.urls:
            url = redact_url(raw_url)
            try:
                async with self._session.get(raw_url + "/_cluster/health") as r:
                    if r.status in (401, 403):
                        raise ElasticsearchStartError(
                            f"elasticsearch at {url} answered {r.status}: "
                            "check LOGSHIP_ES_USERNAME/LOGSHIP_ES_PASSWORD or LOGSHIP_ES_API_KEY")
                    return
            except aiohttp.ClientConnectorCertificateError as exc:
                raise ElasticsearchStartError(
                    f"elasticsearch at {url}: TLS certificate verification failed ({exc.certificate_error}); "
                    "set LOGSHIP_ES_CA_FILE to the CA that signed it") from None
            except aiohttp.ClientSSLError as exc:
                raise ElasticsearchStartError(f"elasticsearch at {url}: TLS error: {exc}") from None
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.warning("elasticsearch at %s unreachable at start (%s); will keep trying%s", url,
                            error_text(exc), ", spooling to disk meanwhile" if self.spool else "")

    async def _ensure_templates(self) -> bool:
        async with self._setup_lock:
            if self._templates_ready:
                return True
            try:
                _, plan = await setup_all_async(self.s)
            except Exception as exc:  # noqa: BLE001 - any failure: retried before the next bulk
                self._say(logging.WARNING, "setup", "elasticsearch: index templates not put yet: %s", exc)
                return False
            self._templates_ready = True
            if plan.shipper_deletes and self._retention is None:
                self._retention = asyncio.create_task(self._retention_loop(), name="es-retention")
            return True

    async def _retention_loop(self) -> None:
        """Without ILM: deletes expired daily indices every `retention_check_s` (set-up did it once at start)."""
        while True:
            await asyncio.sleep(self.s.retention_check_s)
            try:
                async with es_session(self.s) as session:
                    await retention.delete_expired(session, self.s)
            except Exception as exc:  # noqa: BLE001 - tried again next round; shipping goes on
                METRICS.count("logship_es_retention_errors_total")
                self._say(logging.WARNING, "retention", "retention: could not delete expired indices: %s", exc)

    async def close(self) -> None:
        """Waits a little for requests in flight, then spools what they still hold."""
        for task in (self._replayer, self._retention):
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=min(self.s.timeout_s, 10.0))
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.spool:
            self.spool.close()
        if self._session:
            await self._session.close()

    # ---- encoding ---------------------------------------------------------------
    def index_name(self, time_ns: int) -> bytes:
        day = time_ns // DAY_NS
        name = self._index_for_day.get(day)
        if name is None:
            name = daily_index(self.s.index_prefix, day * DAY_NS).encode()
            self._index_for_day[day] = name
        return name

    def encode(self, record: Record, doc: dict[str, Any]) -> bytes:
        return self.encode_json(record, orjson.dumps(doc))

    def encode_json(self, record: Record, doc_json: bytes) -> bytes:
        """The bulk lines of one document already serialised (Enricher.documents_json)."""
        return self.encode_batch([record], [doc_json])[0]

    def encode_batch(self, records: list[Record], docs: list[bytes]) -> list[bytes]:
        """The bulk lines of each record and its serialised document. The index and the
        `_id`'s stream part are looked up once per run of records of one stream and day."""
        out: list[bytes] = []
        append = out.append
        item = _BULK_ITEM
        container: object = None
        stream = source = ""
        path: str | None = ""
        file_id: str | None = None
        day_start = day_end = 0
        index = prefix = b""
        for r, doc in zip(records, docs, strict=True):
            t = r.time_ns
            if not day_start <= t < day_end:
                index = self.index_name(t)
                day_start = t // DAY_NS * DAY_NS
                day_end = day_start + DAY_NS
            if r.container is not container or r.stream is not stream or r.path is not path or r.source is not source \
                    or r.file_id is not file_id:
                prefix, container, stream, path, source = r.id_prefix(), r.container, r.stream, r.path, r.source
                file_id = r.file_id
            append(item % (index, t if file_id is None else 0, prefix, r.seq, doc))
        return out

    # ---- the loop ---------------------------------------------------------------
    async def run(self, queue: asyncio.Queue[list[Item]], express: asyncio.Queue[list[Item]] | None = None) -> None:
        """Consumes batches of encoded items until cancelled. A bulk leaves when full (count,
        bytes), when its oldest document waited `flush_interval_s`, or, when a request slot
        is free, once it lingered `linger_s`: low latency while ES keeps up, big bulks
        (throughput) as soon as every slot is busy. `express` (the lines of containers keeping
        up) is sent apart: see `_express_loop`."""
        if self.spool is not None:
            self._replayer = asyncio.create_task(self._replay_loop(), name="es-spool-replay")
        lane = asyncio.create_task(self._express_loop(express), name="es-express") if express is not None else None
        try:
            await self._bulk_loop(queue)
        finally:
            if lane is not None:
                lane.cancel()
                await asyncio.gather(lane, return_exceptions=True)

    async def _express_loop(self, queue: asyncio.Queue[list[Item]]) -> None:
        """Express lines leave at once, all that queued meanwhile in one bulk: in a free request
        slot, or else in one of the two slots kept for them (one was often busy with the last express
        bulk: bench/fairness.py p99 2.13-2.46 s with one, 2.07-2.13 with two). So they wait for no bulk of a flood being
        filled or waiting for a slot, only for Elasticsearch (the express bulks are small: what
        containers keeping up wrote while the last one was in flight)."""
        batch: list[Item] = []
        try:
            while True:
                batch = await queue.get()
                while not queue.empty():
                    batch += queue.get_nowait()
                await self._route(batch, express=True)
                batch = []
        finally:
            if batch:  # cancelled (shutting down) while waiting for a slot
                await self._route(batch, express=True)

    async def _bulk_loop(self, queue: asyncio.Queue[list[Item]]) -> None:
        batch: list[Item] = []
        size = 0
        first = 0.0
        loop = asyncio.get_running_loop()
        max_bytes = self.s.bulk_max_bytes
        try:
            while True:
                max_docs = self.bulk_docs
                timeout = None
                if batch:
                    now = loop.time()
                    due = min(first + self.s.flush_interval_s, max(first + self.s.linger_s, now + 0.02))
                    timeout = max(0.0, due - now)
                items = await get_within(queue, timeout)
                if items:
                    if not batch:
                        first = loop.time()
                    nbytes = sum([len(it[1]) for it in items])
                    if len(batch) + len(items) < max_docs and size + nbytes < max_bytes:
                        batch += items  # the usual case: the whole batch fits
                        size += nbytes
                    else:
                        for it in items:
                            batch.append(it)
                            size += len(it[1])
                            if len(batch) >= max_docs or size >= max_bytes:
                                await self._route(batch)
                                batch, size, first = [], 0, loop.time()
                if batch:
                    age = loop.time() - first
                    if age >= self.s.flush_interval_s or (age >= self.s.linger_s and not self._in_flight.locked()):
                        await self._route(batch)
                        batch, size = [], 0
        finally:
            if batch:
                await self._route(batch)

    def _down_long(self) -> bool:
        return self._failing_since is not None and time.monotonic() - self._failing_since >= self.spool_settings.after_s

    def _should_spool(self) -> bool:
        return self.spool is not None and (not self.spool.empty or self._down_long())

    async def _route(self, batch: list[Item], *, express: bool = False) -> None:
        """To Elasticsearch when a request slot is free; to the spool when ES is down or when
        the spool still holds older items. An Elasticsearch that answers but slower than the
        input is waited for: that back-pressure reaches the pipeline's fair stage, where the
        container(s) over their byte budget wait (Docker) or lose their excess, counted (eBPF).
        (Spooling then instead took every container's lines into the spool, behind the
        flood, and the spool's in-memory acknowledgement list past the memory bound.)"""
        while True:
            if self._should_spool():
                await self._to_spool(batch)
                return
            slot = self._in_flight if not self._in_flight.locked() or not express else self._express_slot
            if not slot.locked():
                await slot.acquire()  # free: returns at once
                t = asyncio.create_task(self._deliver(batch, slot, sized=not express))
                self._tasks.add(t)
                t.add_done_callback(self._tasks.discard)
                return
            self._slot_freed.clear()
            await wait_event(self._slot_freed, 0.5)

    async def _to_spool(self, batch: list[Item], *, force: bool = False) -> None:
        assert self.spool is not None
        data = [d for _, d in batch]
        need = sum(map(len, data)) + 8 * len(data)
        limit = self.spool_settings.max_ack_records
        # full (bytes, or records waiting for their acknowledgement): stop taking input, the sources pause
        while not force and (not self.spool.has_room(need) or (self._acks and len(self._acks) + len(batch) > limit)):
            METRICS.count("logship_spool_full_waits_total")
            self._say(logging.WARNING, "spool-full", "spool full (%d bytes, %d records): pausing input until "
                      "Elasticsearch drains it", self.spool.pending_bytes, len(self._acks))
            await asyncio.sleep(0.2)
        positions = self.spool.append(data)
        for (rec, _), pos in zip(batch, positions, strict=True):
            if rec is not None and rec.on_delivered is not None:
                # Only its identity and position matter from now on (the bytes are on disk):
                # drop the payload so a long outage costs ~200 bytes of memory per line.
                rec.message = b""
                rec.fields = {}
                self._acks.append((pos, rec))
        METRICS.count("logship_es_spooled_total", len(batch))
        self._say(logging.WARNING, "spooling", "elasticsearch unavailable: spooling to disk (%d bytes waiting)",
                  self.spool.pending_bytes)
        self._replay_wake.set()

    async def _replay_loop(self) -> None:
        """Sends the spool's frames back in order: up to `concurrency` bulks at a time,
        the head committed once all of them are held."""
        assert self.spool is not None
        while True:
            rounds = []
            for _ in range(self.s.concurrency):
                frames = self.spool.read(self.s.bulk_max_docs, self.s.bulk_max_bytes)
                if not frames:
                    break
                rounds.append(frames)
            if not rounds:
                self._replay_wake.clear()
                await wait_event(self._replay_wake, 1.0)
                continue
            last = rounds[-1][-1][0]
            owners: dict[Position, Record] = {}
            while self._acks and self._acks[0][0] <= last:
                pos, rec = self._acks.popleft()
                owners[pos] = rec
            try:
                await asyncio.gather(*(self._replay_one([(owners.get(p), d) for p, d in frames]) for frames in rounds))
            except BaseException:
                self.spool.rewind()  # not committed: read again later, or after a restart
                raise
            self.spool.commit()
            METRICS.count("logship_es_replayed_total", sum(map(len, rounds)))
            if self.spool.empty:
                log.info("spool: drained; back to direct delivery")

    async def _replay_one(self, items: list[Item]) -> None:
        await self._in_flight.acquire()
        try:
            await self._deliver_all(items, may_spool=False)
        finally:
            self._release_slot(self._in_flight)

    def _release_slot(self, slot: asyncio.Semaphore) -> None:
        slot.release()
        self._slot_freed.set()

    async def _deliver(self, batch: list[Item], slot: asyncio.Semaphore, *, sized: bool = True) -> None:
        holder = [batch]
        try:
            await self._deliver_all(batch, may_spool=True, holder=holder, sized=sized)
        except asyncio.CancelledError:
            if self.spool is not None and holder[0]:  # shutdown with ES away: keep them on disk
                await self._to_spool(holder[0], force=True)  # shutting down: past the bound, not lost
            raise
        finally:
            self._release_slot(slot)

    async def _deliver_all(self, items: list[Item], *, may_spool: bool, holder: list[list[Item]] | None = None,
                           sized: bool = True) -> None:
        """Sends until every item is held (or dead-lettered); failing items are retried
        alone, with backoff, or moved to the spool once ES has been down long enough."""
        backoff = 0.25
        while items:
            items, failed = await self._send_once(items, sized=sized)
            if holder is not None:
                holder[0] = items
            if not items:
                return
            if may_spool and self._should_spool():
                await self._to_spool(items)
                if holder is not None:
                    holder[0] = []
                return
            if failed:
                METRICS.count("logship_es_retried_items_total", len(items))
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.s.retry_max_s)

    def _adapt(self, n: int, took: float) -> None:
        """Moves the bulk size halfway to what Elasticsearch indexes in `bulk_target_s` (a small
        bulk that was quick says nothing about the rate: the input was light). A slow
        Elasticsearch gets smaller bulks rather than a longer wait for a quiet container's line."""
        target_s = self.s.bulk_target_s
        if n < self.bulk_docs // 2 and took < target_s:
            return
        target = int(n / max(took, 1e-3) * target_s)
        self.bulk_docs = max(MIN_BULK_DOCS, min(self.s.bulk_max_docs, (self.bulk_docs + target) // 2))

    def _failure(self) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()

    async def _send_once(self, batch: list[Item], *, sized: bool = True) -> tuple[list[Item], bool]:
        """One bulk request; returns (items to send again, whether something failed). `sized`: the
        bulk was filled to the current size, so its time tells Elasticsearch's rate (an express
        bulk's does not: it is small, and slow only for the flood's bulks beside it)."""
        assert self._session is not None
        if not self._templates_ready and not await self._ensure_templates():
            self._failure()
            return batch, True
        body = b"".join([it[1] for it in batch])
        host = self._hosts.pick()
        METRICS.count("logship_es_bulk_requests_total", host=self._hosts.names[host])
        started = time.monotonic()
        try:
            async with self._session.post(self._hosts.urls[host] + "/_bulk", data=body) as r:
                raw = await r.read()
                status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self._hosts.failed(host)
            self._failure()
            METRICS.count("logship_es_request_errors_total", reason=type(exc).__name__)
            self._say(logging.WARNING, "transport", "elasticsearch: bulk of %d failed: %s; retrying",
                      len(batch), error_text(exc))
            return batch, True
        took = time.monotonic() - started
        METRICS.observe(BULK_LATENCY, took)
        if sized:
            self._adapt(len(batch), took)
        if status != 200:
            if status >= 500:
                self._hosts.failed(host)
                self._failure()
            elif self._request_blocked(raw, len(batch)):
                return batch, True
            METRICS.count("logship_es_request_errors_total", reason=f"http_{status}")
            self._say(logging.WARNING, f"http{status}", "elasticsearch: bulk answered %d: %s; retrying",
                      status, raw[:300].decode(errors="replace"))
            return batch, True
        self._hosts.ok(host)
        results = item_results(raw)
        if results is None:
            self._all_accepted()
            self._delivered(batch)
            return [], False
        again: list[Item] = []
        ok: list[Item] = []
        failed = False
        blocked: dict[str, Any] | None = None  # the first cluster-block error of this answer
        too_many = 0
        for item, (st, error) in zip(batch, results, strict=False):
            v = verdict(st, error, item[1].startswith(self._dl_prefix))
            if v is Verdict.HELD:
                ok.append(item)
            elif v is Verdict.RETRY or v is Verdict.BLOCKED:  # the cluster's fault, not the line's: hold it
                again.append(item)
                failed = True
                METRICS.count("logship_es_item_retries_total", status=str(st))
                if blocked is None and v is Verdict.BLOCKED:
                    blocked = error
                too_many += st == 429
            elif v is Verdict.GIVE_UP:  # even the dead letter was refused: give up on it
                METRICS.count("logship_es_deadletter_failed_total")
                log.error("elasticsearch: refused the dead letter too (%s); the line is dropped", error or None)
                ok.append(item)
            else:
                METRICS.count("logship_es_rejected_total", reason=str(error.get("type", "unknown")))
                self._say(logging.ERROR, "rejected",
                          "elasticsearch: rejected a line (%s: %s); sent to the dead-letter index",
                          error.get("type"), str(error.get("reason"))[:300])
                again.append((item[0], deadletter_item(item[1], error, self.s.index_prefix)))
        if len(results) < len(batch):  # an answer short of items: the unanswered ones are not known held
            unanswered = batch[len(results):]
            again.extend(unanswered)
            failed = True
            METRICS.count("logship_es_item_retries_total", len(unanswered), status="unanswered")
            self._say(logging.WARNING, "short", "elasticsearch: answered %d of %d items; retrying the other %d",
                      len(results), len(batch), len(unanswered))
        self._delivered(ok)
        self._judge_cluster(blocked, all_429=too_many == len(batch), refused=len(again))
        return again, failed

    def _judge_cluster(self, blocked: dict[str, Any] | None, *, all_429: bool, refused: int) -> None:
        """After a 200 answer with errors: a block on writes, or 429 on every item for
        `spool.after_s`, counts as Elasticsearch failing (so the spool takes over) and
        puts the sink in the blocked state; anything else means it is taking writes."""
        if blocked is not None:
            self._failure()
            self.block.refused(block_reason(blocked), refused)
        elif all_429:
            self._failure()
            if self._down_long():
                self.block.refused(f"429 on every item for {self.spool_settings.after_s:g} s or more", refused,
                                   OVERLOAD_HINT)
        else:
            self._all_accepted()

    def _request_blocked(self, raw: bytes, n: int) -> bool:
        """A whole bulk refused with a cluster block (`cluster.blocks.read_only`): held like blocked items."""
        try:
            error = (orjson.loads(raw) or {}).get("error")
        except (orjson.JSONDecodeError, AttributeError):
            return False
        if not isinstance(error, dict) or not is_block(error):
            return False
        self._failure()
        self.block.refused(block_reason(error), n)
        return True

    def _all_accepted(self) -> None:
        self._failing_since = None
        self.block.accepted()

    def _delivered(self, items: list[Item]) -> None:
        if items:
            METRICS.set(LAST_BULK_OK, time.time())
        METRICS.count("logship_es_delivered_total", len(items))
        deliver([rec for rec, _ in items])
