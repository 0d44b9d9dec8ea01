"""Snapshot documents to and from Elasticsearch with direct small requests.

Not through the log sink: snapshots are rare, large, go to their own index and have
no checkpoint to advance, so one `PUT <index>/_create/<id>` each (retried a few times, failures
counted) is simpler than teaching the bulk path a second document kind. `_create`, not `_doc`:
the shipper's writer role has `create_doc` only, so it can never overwrite a stored snapshot;
a 409 (a retry after a lost answer) means it is already there."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from shipper.config import ElasticsearchSettings
from shipper.sinks.elasticsearch.client import es_session
from shipper.core.metrics import METRICS
from shipper.sinks.elasticsearch.indices import day_of
from shipper.sinks.elasticsearch.snapshot_template import snapshot_index, snapshot_template

log = logging.getLogger("logship.snapshots")
STORED, FAILED = "logship_snapshots_stored_total", "logship_snapshots_store_failed_total"


class SnapshotStore:
    def __init__(self, settings: ElasticsearchSettings, attempts: int = 5) -> None:
        self.settings = settings
        self.attempts = attempts
        self._i = 0

    def _url(self) -> str:
        urls = self.settings.url
        self._i += 1
        return urls[self._i % len(urls)].rstrip("/")

    async def put_template(self) -> None:
        name, body = snapshot_template(self.settings)
        async with es_session(self.settings) as s:
            async with s.put(f"{self._url()}/_index_template/{name}", data=orjson.dumps(body),
                             headers={"Content-Type": "application/json"}) as r:
                if r.status >= 300:
                    raise RuntimeError(f"snapshot index template {name}: HTTP {r.status}: {(await r.text())[:300]}")

    async def put(self, doc: dict[str, Any], ts_ns: int) -> bool:
        index = snapshot_index(self.settings.index_prefix, day_of(ts_ns))
        sid = doc["logship.snapshot.id"]
        body = orjson.dumps(doc)
        delay = 0.5
        for attempt in range(self.attempts):
            try:
                async with es_session(self.settings, timeout_s=self.settings.timeout_s) as s:
                    async with s.put(f"{self._url()}/{index}/_create/{sid}?refresh=true", data=body,
                                     headers={"Content-Type": "application/json"}) as r:
                        if r.status < 300 or r.status == 409:
                            METRICS.count(STORED)
                            return True
                        text = (await r.text())[:300]
                        if 400 <= r.status < 500 and r.status != 429:
                            log.error("snapshot %s rejected by Elasticsearch: HTTP %s %s", sid, r.status, text)
                            break
                        log.warning("snapshot %s: HTTP %s (attempt %d)", sid, r.status, attempt + 1)
            except (OSError, asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 - any failure: retry
                log.warning("snapshot %s: %r (attempt %d)", sid, exc, attempt + 1)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        METRICS.count(FAILED)
        return False

    async def get(self, sid: str) -> dict[str, Any] | None:
        q = {"query": {"ids": {"values": [sid]}}, "size": 1}
        async with es_session(self.settings, timeout_s=self.settings.timeout_s) as s:
            async with s.post(f"{self._url()}/{self.settings.index_prefix}-snapshots-*/_search",
                              data=orjson.dumps(q), headers={"Content-Type": "application/json"}) as r:
                if r.status >= 300:
                    raise RuntimeError(f"search for snapshot {sid}: HTTP {r.status}: {(await r.text())[:300]}")
                hits = (orjson.loads(await r.read()).get("hits") or {}).get("hits") or []
        return hits[0]["_source"] if hits else None
