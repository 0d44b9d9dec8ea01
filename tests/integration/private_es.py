"""A private Elasticsearch (ports 9250-9259, 9271-9289) that a test may stop and start: never
the shared one on 9200. Started through scripts/provision.sh with its own data dir; also a
3-node cluster on loopback (`private_cluster`), and the series under test is
LOGSHIP_ES_SERIES (8.19 by default, 9.2)."""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import ROOT, infra_missing


class PrivateES:
    def __init__(self, port: int, extra_opts: str = "", *, series: str = "", heap: str = "",
                 cluster_ports: tuple[int, ...] = ()) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.extra_opts = extra_opts
        self.series = series or os.environ.get("LOGSHIP_ES_SERIES", "")  # "" = provision.sh's default (8.19)
        self.heap = heap
        self.cluster_ports = cluster_ports

    @property
    def pid_file(self) -> Path:
        return ROOT / ".state" / f"es-{self.port}" / "pid"

    def pid(self) -> int:
        """The node's JVM: from its pid file, else (a start that lost the race rewrote or removed it)
        the process listening on its HTTP port."""
        try:
            return int(self.pid_file.read_text())
        except (OSError, ValueError):
            out = subprocess.run(["ss", "-Hltnp", f"sport = :{self.port}"], capture_output=True, text=True).stdout
            m = re.search(r"pid=(\d+)", out)
            if m is None:
                raise RuntimeError(f"no process listens on {self.port}") from None
            return int(m[1])

    def _provision(self, step: str) -> None:
        env = {**os.environ, "LOGSHIP_ES_URL": "", "LOGSHIP_ES_PORT": str(self.port),
               "LOGSHIP_ES_EXTRA_OPTS": self.extra_opts,
               "LOGSHIP_ES_CLUSTER_PORTS": ",".join(map(str, self.cluster_ports))}
        if self.series:
            env["LOGSHIP_ES_SERIES"] = self.series
        if self.heap:
            env["LOGSHIP_ES_HEAP"] = self.heap
        try:  # a JVM start takes minutes on a loaded 2-core machine (three at once: more)
            r = subprocess.run([str(ROOT / "scripts/provision.sh"), step], env=env, capture_output=True, text=True,
                               timeout=900)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"provision.sh {step} on {self.port} took over 900 s: {exc.stdout!r}") from None
        if r.returncode != 0:
            raise RuntimeError(f"provision.sh {step} on {self.port} failed:\n{r.stdout}\n{r.stderr}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/_cluster/health", timeout=3) as r:
                return r.status == 200
        except OSError:
            return False

    def start(self) -> None:
        self._provision("es-start")

    def stop(self) -> None:
        self._provision("es-stop")


def private_es(port: int, extra_opts: str = "", **kw: Any) -> Iterator[PrivateES]:
    es = PrivateES(port, extra_opts, **kw)
    if es.healthy() and extra_opts:  # left by an earlier run: restart it with our options
        es.stop()
    try:
        es.start()
    except RuntimeError as exc:
        infra_missing(f"a private Elasticsearch on {port}", str(exc)[-500:])
    yield es
    if not os.environ.get("LOGSHIP_TEST_KEEP"):
        es.stop()


@pytest.fixture(scope="session")
def es_private() -> Iterator[PrivateES]:
    """On 9251: for tests that stop and restart Elasticsearch."""
    yield from private_es(9251)


@pytest.fixture(scope="session")
def es_busy() -> Iterator[PrivateES]:
    """On 9252, with a one-slot write queue: answers 429 under concurrent bulks."""
    yield from private_es(9252, "-Ethread_pool.write.size=1 -Ethread_pool.write.queue_size=1")


@pytest.fixture(scope="session")
def es_blockable() -> Iterator[PrivateES]:
    """On 9271: for tests that block writes (read-only blocks) on their indices."""
    yield from private_es(9271)


class PrivateCluster:
    """Three nodes on loopback (HTTP 9281-9283, transport +100), 512 MiB heaps, one cluster."""

    PORTS = (9281, 9282, 9283)

    def __init__(self) -> None:
        self.nodes = [PrivateES(p, heap="512m", cluster_ports=self.PORTS) for p in self.PORTS]
        self.urls = [n.url for n in self.nodes]

    def start(self) -> None:
        """All nodes at once: each waits for a cluster, which needs a quorum of them."""
        with concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.start(), self.nodes))

    def stop(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.stop(), self.nodes))

    def node(self, name: str) -> PrivateES:
        return next(n for n in self.nodes if f"node-{n.port}" == name)


@pytest.fixture(scope="session")
def es_cluster() -> Iterator[PrivateCluster]:
    c = PrivateCluster()
    try:
        c.start()
    except RuntimeError as exc:
        infra_missing("a private 3-node Elasticsearch cluster", str(exc)[-500:])
    yield c
    if not os.environ.get("LOGSHIP_TEST_KEEP"):
        c.stop()
