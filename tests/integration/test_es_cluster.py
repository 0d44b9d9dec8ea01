"""A real 3-node cluster on loopback (tests/integration/private_es.py: 512 MiB heaps, replicas
1): the node holding the primary of today's index SIGKILLed under 5k lines/s and restarted
30 s later; a rolling restart of all three. Bulks go to the surviving nodes (LOGSHIP_ES_URL
lists all three), a returning node gets bulks again, and every line is stored exactly once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from typing import Any

import pytest

from tests.conftest import count_docs, wait_for_count, wait_until
from tests.integration.private_es import PrivateCluster, es_cluster  # noqa: F401 - fixture
from tests.integration.test_es_faults import assert_exactly_once, writer


def requests_to(s: Any, url: str) -> float:
    # 60 s, not 5: on a machine at load 20-30 the shipper's loop can answer /metrics late
    m = re.search(r'^logship_es_bulk_requests_total\{host="%s"\} (\S+)$' % re.escape(url), s.metrics(60), re.M)
    return float(m[1]) if m else 0.0


def wait_green(es: Any, index: str, timeout_s: int) -> None:
    """Green before the next node goes, as an orchestrator's rolling restart waits: stopping a node while
    the returned one still recovers its replica (it replays what was written while it was down: minutes at
    5k lines/s on a loaded 2-core machine) can take the only in-sync copy down, a red index, which is not
    the scenario under test. A failure says which shard copies were not started and how far recovery got."""
    h = es.options(request_timeout=timeout_s + 60, ignore_status=408).cluster.health(
        wait_for_status="green", timeout=f"{timeout_s}s", index=index)
    if h["status"] != "green":
        shards = es.cat.shards(index=index, h="index,shard,prirep,state,node,unassigned.reason").body
        recovery = es.cat.recovery(index=index, active_only=True,
                                   h="index,shard,stage,source_node,target_node,bytes_percent,translog_ops_percent")
        raise AssertionError(f"{index} {h['status']}, not green after {timeout_s} s:\n{shards}{recovery.body}")


def shipper_said(s: Any) -> str:
    """The shipper's warnings and errors and its ES counters, for a failure to be read."""
    said = [ln for ln in s.log().splitlines() if " WARNING " in ln or " ERROR " in ln][-40:]
    try:
        counters = [ln for ln in s.metrics(60).splitlines() if ln.startswith(("logship_es_", "logship_spool"))]
    except OSError as exc:
        counters = [f"/metrics: {exc}"]
    return "\n".join(said + counters)


def open_writer() -> list[str]:
    """~5k numbered lines/s until /tmp/stop exists: the test, not a clock, decides when the writing ends
    (a JVM restart on a loaded machine takes minutes), so a returning node still has lines to receive."""
    return ["sh", "-c", "r=0; while [ ! -e /tmp/stop ]; do seq $((r*500+1)) $((r*500+500)) | sed 's/^/seq /'; "
                        "r=$((r+1)); sleep 0.1; done"]


def stop_writer(c: Any) -> int:
    """Ends an open writer; the number of lines it wrote, read from dockerd's own copy."""
    c.exec_run(["touch", "/tmp/stop"])
    c.wait(timeout=120)
    last = subprocess.run(["docker", "logs", "--tail", "1", c.id], capture_output=True, text=True,
                          timeout=60).stdout.split()
    return int(last[1])


def primary_node(es: Any, index: str) -> str:
    rows = es.cat.shards(index=index, format="json", h="prirep,state,node").body
    return next(r["node"] for r in rows if r["prirep"] == "p" and r["state"] == "STARTED")


def ship(cluster: PrivateCluster, index_prefix: str, shipper: Any, containers: Any, busybox: str,
         cmd: list[str], port: int) -> tuple[Any, Any, Any]:
    from elasticsearch import Elasticsearch
    es = Elasticsearch(cluster.urls, request_timeout=120, retry_on_timeout=True, max_retries=5)
    name = f"cluster-{index_prefix}"
    s = shipper(LOGSHIP_ES_URL=",".join(cluster.urls), LOGSHIP_ES_REPLICAS="1", LOGSHIP_SPOOL_AFTER_S="5",
                LOGSHIP_DOCKER_INCLUDE=name, LOGSHIP_HTTP_ADDR=f"127.0.0.1:{port}")
    c = containers(busybox, cmd, name=name)
    return es, s, c


def restore(cluster: PrivateCluster) -> None:
    """Every node up again for the next test; a failure here must not hide the test's own."""
    for node in cluster.nodes:
        try:
            if not node.healthy():
                node.start()
        except RuntimeError as exc:
            print(f"could not restart node-{node.port}: {exc}")


def finish(es: Any, s: Any, c: Any, index_prefix: str, n: int) -> None:
    q = {"term": {"container.id": c.id}}
    c.wait(timeout=600)
    wait_for_count(lambda: count_docs(es, f"{index_prefix}-*", q), n, 300, what=f"{n} lines")
    time.sleep(3)  # anything late would be a duplicate
    assert_exactly_once(es, f"{index_prefix}-*", c.id, n)


@pytest.mark.slow
@pytest.mark.timeout(2400)  # three JVMs starting on a loaded 2-core machine take minutes each
def test_primary_node_sigkilled_under_load_then_back(es_cluster, index_prefix, shipper, containers, busybox):  # noqa: F811
    cmd, n = writer(60)
    es, s, c = ship(es_cluster, index_prefix, shipper, containers, busybox, cmd, 18981)
    q = {"term": {"container.id": c.id}}
    try:
        wait_until(lambda: count_docs(es, f"{index_prefix}-*", q) > 20_000, 600, what="lines flowing")
        today = sorted(es.indices.get(index=f"{index_prefix}-*").body)[-1]
        victim = es_cluster.node(primary_node(es, today))
        os.kill(victim.pid(), signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: primary_node(es, today) != f"node-{victim.port}", 120, what="a replica promoted")
        before = count_docs(es, f"{index_prefix}-*", q)
        time.sleep(max(0.0, 30 - (time.monotonic() - killed_at)))
        assert count_docs(es, f"{index_prefix}-*", q) > before, "no line stored while the node was down"
        victim.start()
        finish(es, s, c, index_prefix, n)
        print(f"SIGKILL of node-{victim.port} (primary of {today}) under 5k lines/s, back after 30 s: "
              f"{n} lines, each once")
    finally:
        restore(es_cluster)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # three JVM restarts in turn on a loaded 2-core machine (9-10 min at load 8-23)
def test_rolling_restart_under_load(es_cluster, index_prefix, shipper, containers, busybox):  # noqa: F811
    es, s, c = ship(es_cluster, index_prefix, shipper, containers, busybox, open_writer(), 18982)
    q = {"term": {"container.id": c.id}}
    t0 = time.monotonic()
    steps: list[str] = []

    def step(what: str) -> None:
        steps.append(f"{time.monotonic() - t0:6.0f} s  {what} (load {os.getloadavg()[0]:.0f})")
    try:
        wait_until(lambda: count_docs(es, f"{index_prefix}-*", q) > 20_000, 600, what="lines flowing")
        for node in es_cluster.nodes:
            step(f"node-{node.port}: SIGTERM")
            node.stop()  # SIGTERM, as an orchestrator's restart does
            step(f"node-{node.port}: stopped; starting")
            node.start()  # waits for the node to answer in the cluster
            step(f"node-{node.port}: back in the cluster")
            wait_green(es, f"{index_prefix}-*", 900)
            step(f"node-{node.port}: green")
            sent = requests_to(s, node.url)

            def got_bulks(url: str = node.url, before: float = sent) -> bool:
                return requests_to(s, url) > before
            wait_until(got_bulks, 120, what=f"bulks to the returned node-{node.port}")
            step(f"node-{node.port}: got bulks")
        n = stop_writer(c)
        step(f"writer stopped at {n} lines")
        finish(es, s, c, index_prefix, n)
        step("each line once")
        print(f"rolling restart of 3 nodes under 5k lines/s: {n} lines, each once; every returned node got bulks")
    except BaseException:
        print(shipper_said(s))
        raise
    finally:
        print("\n".join(steps))
        restore(es_cluster)
