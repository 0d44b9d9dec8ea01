"""Blocked writes on a real Elasticsearch: a real flood stage during 5k lines/s for 60 s, then
lifted: 0 lost, 0 duplicated, nothing dead-lettered, one log line each way.

The flood stage is forced by watermarks no disk can meet (absolute free-space values of
1000 TB) with the disk monitor on and polling every 10 s (its minimum): Elasticsearch's own
DiskThresholdMonitor sets `index.blocks.read_only_allow_delete` on every index of the node,
and releases it when the watermarks are lifted. (A block set by hand is released by that
monitor within ~30 s on a disk that is not full, so it cannot be held for 60 s.)"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.conftest import free_port, count_docs, wait_until
from tests.integration.private_es import es_blockable  # noqa: F401 - fixture
from tests.integration.test_es_faults import assert_exactly_once, writer


def health(addr: str) -> dict:
    try:
        with urllib.request.urlopen(f"http://{addr}/health", timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_read_only_block_60s_at_5k_lines_per_s(es_blockable, index_prefix, shipper, containers, busybox):  # noqa: F811
    from elasticsearch import Elasticsearch
    es = Elasticsearch(es_blockable.url, request_timeout=120)
    name = f"block-{index_prefix}"
    addr = f"127.0.0.1:{free_port()}"
    s = shipper(LOGSHIP_ES_URL=es_blockable.url, LOGSHIP_SPOOL_AFTER_S="2", LOGSHIP_DOCKER_INCLUDE=name,
                LOGSHIP_HTTP_ADDR=addr)
    cmd, n = writer(80)
    c = containers(busybox, cmd, name=name)
    q = {"term": {"container.id": c.id}}
    logs = f"{index_prefix}-*"
    wm = "cluster.routing.allocation.disk.watermark."
    flood = {"cluster.routing.allocation.disk.threshold_enabled": True, "cluster.info.update.interval": "10s",
             wm + "low": "1000tb", wm + "high": "1000tb", wm + "flood_stage": "1000tb"}
    # Lifted to absolute free-space values every disk meets, not to the defaults: on a disk already past
    # the default high watermark (90%, e.g. a CI machine with 19 GB free of 252 GB) the monitor would
    # never release the block.
    normal = {wm + "low": "3mb", wm + "high": "2mb", wm + "flood_stage": "1mb"}
    defaults = {wm + "low": None, wm + "high": None, wm + "flood_stage": None}

    def read_only() -> bool:
        got = es.indices.get_settings(index=logs, name="index.blocks.read_only_allow_delete").body
        return bool(got) and all(v["settings"] for v in got.values())
    try:
        wait_until(lambda: count_docs(es, logs, q) > 20_000, 180, what="lines flowing")
        es.cluster.put_settings(persistent=flood)
        wait_until(read_only, 180, what="the flood-stage block")
        blocked_at = time.monotonic()
        wait_until(lambda: "writes blocked" in s.log(), 120, what="the shipper to see the block")
        wait_until(lambda: health(addr)["elasticsearch"].get("writes_blocked"), 120, what="/health to say blocked")
        h = health(addr)
        assert h["status"] == "degraded" and "cluster_block_exception" in h["elasticsearch"]["reason"], h
        assert "logship_es_writes_blocked 1" in s.metrics()
        wait_until(lambda: "spooling to disk" in s.log(), 120, what="the shipper to spool")
        held = count_docs(es, logs, q)
        time.sleep(max(0.0, 60 - (time.monotonic() - blocked_at)))
        assert count_docs(es, logs, q) == held, f"the block let writes through: {s.log()[-2000:]}"
        es.cluster.put_settings(persistent=normal)
        wait_until(lambda: not read_only(), 180, what="the disk monitor to release the block")
        c.wait(timeout=300)
        wait_until(lambda: count_docs(es, logs, q) >= n, 300, interval=2, what=f"{n} lines")
        wait_until(lambda: "writes accepted again" in s.log(), 180, what="the shipper to see the block lifted")
        time.sleep(2)  # anything late would be a duplicate
        assert_exactly_once(es, logs, c.id, n)
        assert count_docs(es, f"{index_prefix}-deadletter-*") == 0, "a blocked line went to the dead letters"
        log = s.log()
        # One line each way per blocked episode, never one per item (the disk monitor may lift and set the
        # block again while it settles: each is an episode of its own).
        episodes = log.count("writes blocked")
        assert 1 <= episodes <= 5 and log.count("writes accepted again") == episodes, \
            [ln for ln in log.splitlines() if "writes " in ln]
        assert health(addr)["elasticsearch"]["writes_blocked"] is False
        assert "logship_es_writes_blocked 0" in s.metrics()
        print(f"blocked 60 s at 5k lines/s: {n} lines, each once; held at {held}; "
              f"{[ln for ln in log.splitlines() if 'writes ' in ln]}")
    finally:
        es.cluster.put_settings(persistent={**defaults, "cluster.routing.allocation.disk.threshold_enabled": None,
                                            "cluster.info.update.interval": None})
        es.options(ignore_status=404).indices.put_settings(index=logs,
                                                           settings={"index.blocks.read_only_allow_delete": None})
        es.options(ignore_status=404).indices.delete(index=logs)
