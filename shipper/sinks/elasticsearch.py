"""The Elasticsearch sink: batches documents into `_bulk` requests and judges every
item of every response on its own.

A lean aiohttp writer rather than elasticsearch-py's bulk helpers: we build the
NDJSON body ourselves with orjson (one pass, no intermediate action dicts) and need
the per-item statuses to drive acknowledgements and retries exactly."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import aiohttp
import orjson

from shipper.config import ElasticsearchSettings
from shipper.metrics import METRICS
from shipper.record import Record

log = logging.getLogger("logship.es")

Item = tuple[Record, bytes]  # the record and its NDJSON action+source lines
RETRYABLE = frozenset({429, 500, 502, 503, 504})


class ElasticsearchSink:
    def __init__(self, settings: ElasticsearchSettings) -> None:
        self.s = settings
        self._session: aiohttp.ClientSession | None = None
        self._url_index = 0
        self._in_flight = asyncio.Semaphore(settings.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._index_for_day: dict[int, bytes] = {}

    # ---- connection -------------------------------------------------------------
    async def start(self) -> None:
        headers = {"Content-Type": "application/x-ndjson"}
        auth = None
        if self.s.api_key:
            headers["Authorization"] = f"ApiKey {self.s.api_key}"
        elif self.s.username:
            auth = aiohttp.BasicAuth(self.s.username, self.s.password)
        ssl: Any = None
        if self.s.ca_file or not self.s.verify_certs:
            import ssl as _ssl
            ctx = _ssl.create_default_context(cafile=self.s.ca_file or None)
            if not self.s.verify_certs:
                ctx.check_hostname = False
                ctx.verify_mode = _ssl.CERT_NONE
            ssl = ctx
        self._session = aiohttp.ClientSession(
            headers=headers, auth=auth, connector=aiohttp.TCPConnector(ssl=ssl, limit=self.s.concurrency + 2),
            timeout=aiohttp.ClientTimeout(total=self.s.timeout_s), json_serialize=lambda o: orjson.dumps(o).decode(),
        )

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session:
            await self._session.close()

    def _url(self) -> str:
        return self.s.url[self._url_index % len(self.s.url)].rstrip("/")

    # ---- encoding ---------------------------------------------------------------
    def index_name(self, time_ns: int) -> bytes:
        day = time_ns // 86_400_000_000_000
        name = self._index_for_day.get(day)
        if name is None:
            name = (self.s.index_prefix + "-" + time.strftime("%Y.%m.%d", time.gmtime(day * 86400))).encode()
            self._index_for_day[day] = name
        return name

    def encode(self, record: Record, doc: dict[str, Any]) -> bytes:
        action = b'{"create":{"_index":"%s","_id":"%s"}}\n' % (self.index_name(record.time_ns), record.doc_id().encode())
        return action + orjson.dumps(doc) + b"\n"

    # ---- the loop ---------------------------------------------------------------
    async def run(self, queue: asyncio.Queue[list[Item]]) -> None:
        """Consumes batches of encoded items until cancelled; flushes by count, bytes or age."""
        batch: list[Item] = []
        size = 0
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    items = await asyncio.wait_for(queue.get(), timeout)
                except asyncio.TimeoutError:
                    items = None
                if items:
                    if deadline is None:
                        deadline = loop.time() + self.s.flush_interval_s
                    for it in items:
                        batch.append(it)
                        size += len(it[1])
                        if len(batch) >= self.s.bulk_max_docs or size >= self.s.bulk_max_bytes:
                            await self._dispatch(batch)
                            batch, size = [], 0
                    if not batch:
                        deadline = None
                if batch and (items is None or loop.time() >= (deadline or 0)):
                    await self._dispatch(batch)
                    batch, size, deadline = [], 0, None
        finally:
            if batch:
                await self._dispatch(batch)

    async def _dispatch(self, batch: list[Item]) -> None:
        await self._in_flight.acquire()  # backpressure: at most `concurrency` requests out
        t = asyncio.create_task(self._deliver(batch))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _deliver(self, batch: list[Item]) -> None:
        try:
            backoff = 0.25
            while batch:
                batch = await self._send_once(batch)
                if batch:
                    METRICS.count("logship_es_retried_items_total", len(batch))
                    await asyncio.sleep(backoff * (0.5 + random.random()))
                    backoff = min(backoff * 2, 30.0)
        finally:
            self._in_flight.release()

    async def _send_once(self, batch: list[Item]) -> list[Item]:
        """One bulk request; returns the items to retry."""
        assert self._session is not None
        body = b"".join(it[1] for it in batch)
        started = time.monotonic()
        try:
            async with self._session.post(self._url() + "/_bulk", data=body) as r:
                raw = await r.read()
                status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self._url_index += 1
            METRICS.count("logship_es_request_errors_total", reason=type(exc).__name__)
            log.warning("elasticsearch: bulk of %d failed: %s; will retry", len(batch), exc or type(exc).__name__)
            return batch
        METRICS.count("logship_es_bulk_seconds_total", time.monotonic() - started)
        if status != 200:
            METRICS.count("logship_es_request_errors_total", reason=f"http_{status}")
            log.warning("elasticsearch: bulk answered %d: %s", status, raw[:300])
            return batch
        resp = orjson.loads(raw)
        if not resp.get("errors"):
            self._delivered(batch)
            return []
        retry: list[Item] = []
        ok: list[Item] = []
        for item, res in zip(batch, resp["items"]):
            st = res["create"]["status"]
            if st < 300 or st == 409:
                ok.append(item)
            elif st in RETRYABLE:
                retry.append(item)
            else:
                self._rejected(item, res["create"].get("error"))
        self._delivered(ok)
        return retry

    def _delivered(self, items: list[Item]) -> None:
        METRICS.count("logship_es_delivered_total", len(items))
        for rec, _ in items:
            if rec.on_delivered is not None:
                rec.on_delivered(rec)

    def _rejected(self, item: Item, error: Any) -> None:
        METRICS.count("logship_es_rejected_total", reason=str((error or {}).get("type", "unknown")))
        log.error("elasticsearch: rejected a line of %s: %s", item[0].container.name, error)
