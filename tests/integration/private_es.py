"""A private Elasticsearch (ports 9250-9259) that a test may stop and start: never the
shared one on 9200. Started through scripts/provision.sh with its own data dir."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from typing import Iterator

import pytest

from tests.conftest import ROOT, infra_missing


class PrivateES:
    def __init__(self, port: int, extra_opts: str = "") -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.extra_opts = extra_opts

    def _provision(self, step: str) -> None:
        env = {**os.environ, "LOGSHIP_ES_URL": "", "LOGSHIP_ES_PORT": str(self.port),
               "LOGSHIP_ES_EXTRA_OPTS": self.extra_opts}
        r = subprocess.run([str(ROOT / "scripts/provision.sh"), step], env=env, capture_output=True, text=True,
                           timeout=300)
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


def private_es(port: int, extra_opts: str = "") -> Iterator[PrivateES]:
    es = PrivateES(port, extra_opts)
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
