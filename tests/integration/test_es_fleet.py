"""A fleet: three hosts, each its own private dockerd with its own shipper (own state dir,
own `host.name`), into one 3-node cluster. 100k lines per host: 300k documents, each once,
each with its host's name; the `_id`s of the hosts cannot collide (they hash the engine's
container id, 256 random bits per container)."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any, Iterator

import pytest

from tests.conftest import count_docs, infra_missing, wait_until
from tests.integration.private_dockerd import IMAGE, PrivateDockerd
from tests.integration.private_es import es_cluster  # noqa: F401 - fixture
from tests.integration.test_es_faults import assert_exactly_once

HOSTS = 3
LINES = 100_000


@pytest.fixture
def fleet(docker_client: Any, busybox: str) -> Iterator[list[PrivateDockerd]]:
    base = (os.getpid() % 80) * HOSTS + 700  # distinct dirs, bridges and subnets per host
    engines = [PrivateDockerd(base + k) for k in range(HOSTS)]
    try:
        for d in engines:
            d.cleanup()
            d.start()
            d.load_image()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
        for d in engines:
            d.cleanup()
        infra_missing("three private dockerds", str(exc)[-500:])
    yield engines
    for d in engines:
        d.cleanup()


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_three_hosts_into_one_cluster(es_cluster, fleet, index_prefix, shipper, tmp_path):  # noqa: F811
    from elasticsearch import Elasticsearch
    es = Elasticsearch(es_cluster.urls, request_timeout=120, retry_on_timeout=True, max_retries=5)
    shippers = [shipper(LOGSHIP_ES_URL=",".join(es_cluster.urls), LOGSHIP_ES_REPLICAS="1",
                        LOGSHIP_DOCKER_HOST=d.host, LOGSHIP_HOSTNAME=f"host-{k}",
                        LOGSHIP_STATE_DIR=str(tmp_path / f"state-{k}"), LOGSHIP_HTTP_ADDR=f"127.0.0.1:{18990 + k}")
                for k, d in enumerate(fleet)]
    ids = []
    for d in fleet:  # the same container name and the same lines on every host
        r = d.docker("run", "-d", "--name", "app", "--log-driver", "json-file", IMAGE, "sh", "-c",
                     f"seq 1 {LINES} | sed 's/^/seq /'")
        assert r.returncode == 0, r.stderr
        ids.append(r.stdout.decode().strip())
    started = time.monotonic()
    total = HOSTS * LINES
    index = f"{index_prefix}-*"
    wait_until(lambda: count_docs(es, index) >= total, 600, interval=3, what=f"{total} documents")
    took = time.monotonic() - started
    time.sleep(3)  # anything late would be a duplicate
    assert count_docs(es, index) == total
    for k, cid in enumerate(ids):
        assert_exactly_once(es, index, cid, LINES)
        hosts = es.search(index=index, size=0, query={"term": {"container.id": cid}},
                          aggs={"h": {"terms": {"field": "host.name"}}}).body["aggregations"]["h"]["buckets"]
        assert hosts == [{"key": f"host-{k}", "doc_count": LINES}], hosts
    for s in shippers:
        assert s.proc.poll() is None, s.log()[-2000:]
    print(f"fleet: {HOSTS} hosts x {LINES} lines into a 3-node cluster: {total} documents, each once, "
          f"in {took:.0f} s")
