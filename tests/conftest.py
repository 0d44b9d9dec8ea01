"""Shared fixtures for tests against the real things: dockerd, Elasticsearch, the kernel.

When a piece of infrastructure is missing the test FAILS, locally and in CI: a green run
that skipped the real tests would be a lie. To run only the pure-logic tests, select them:
`pytest tests/unit`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pytest
from hypothesis import settings

from tests.sizing import FULL

ROOT = Path(__file__).resolve().parents[1]

# Property-test effort (see tests/sizing.py): CI runs the full counts, a developer's run a tenth.
settings.register_profile("ci", max_examples=FULL)
settings.register_profile("dev", max_examples=FULL // 10)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev"))
T = TypeVar("T")
TEST_LABEL = "logship.test"


def infra_missing(what: str, fix: str) -> None:
    """A real-infrastructure test that cannot run fails; it never skips."""
    pytest.fail(f"{what} is not available ({fix}); `make test` provisions everything", pytrace=False)


def free_port() -> int:
    """A loopback TCP port nothing listens on now (for a shipper's LOGSHIP_HTTP_ADDR)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ebpf_notes(metrics: str) -> str:
    """The eBPF source's counters that are not 0, from a /metrics text, one per line (for
    failure messages: give them in a str message, which pytest does not shorten)."""
    return "\n".join(ln for ln in metrics.splitlines() if ln.startswith("logship_ebpf") and not ln.endswith(" 0"))


def wait_until(pred: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def wait_for_count(count: Callable[[], int], n: int, stall_s: float, interval: float = 3, what: str = "lines") -> None:
    """Until `count()` reaches `n`, failing only when it stops growing for `stall_s`: a backlog
    drains at whatever pace a loaded machine allows, but a stuck pipeline still fails."""
    best, since = -1, time.monotonic()
    while (got := count()) < n:
        if got > best:
            best, since = got, time.monotonic()
        elif time.monotonic() - since > stall_s:
            raise AssertionError(f"{what}: stuck at {got} of {n} for {stall_s}s")
        time.sleep(interval)


# ---- Docker ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def docker_client() -> Any:
    try:
        import docker
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        infra_missing("the Docker engine", f"{exc}; run scripts/provision.sh docker")
    return client


def _local_image(client: Any, name: str, step: str) -> str:
    try:
        client.images.get(name)
    except Exception:  # noqa: BLE001 - any failure means "no such image"
        infra_missing(f"image {name}", f"run scripts/provision.sh {step}")
    return name


@pytest.fixture(scope="session")
def busybox(docker_client: Any) -> str:
    return _local_image(docker_client, "local/busybox:latest", "images")


@pytest.fixture(scope="session")
def debian_image(docker_client: Any) -> str:
    return _local_image(docker_client, "local/debian:bookworm", "debian-image")


@pytest.fixture
def containers(docker_client: Any) -> Iterator[Callable[..., Any]]:
    """Factory: run(image, cmd, **kwargs) -> container, labelled and removed after the test."""
    made: list[Any] = []

    def run(image: str, command: Any = None, **kw: Any) -> Any:
        labels = {TEST_LABEL: "1", **kw.pop("labels", {})}
        c = docker_client.containers.run(image, command, detach=True, labels=labels, **kw)
        made.append(c)
        return c

    yield run
    for c in made:
        try:
            c.remove(force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


# ---- Elasticsearch --------------------------------------------------------------
@pytest.fixture(scope="session")
def es_url() -> str:
    url = os.environ.get("LOGSHIP_ES_URL", "http://127.0.0.1:9200").split(",")[0]
    import urllib.request
    try:
        with urllib.request.urlopen(url + "/_cluster/health?wait_for_status=yellow&timeout=10s", timeout=15) as r:
            r.read()
    except Exception as exc:  # noqa: BLE001 - any failure means "no Elasticsearch"
        infra_missing(f"Elasticsearch at {url}", f"{exc}; run scripts/provision.sh es-start or set LOGSHIP_ES_URL")
    return url


@pytest.fixture(scope="session")
def es(es_url: str) -> Any:
    from elasticsearch import Elasticsearch
    return Elasticsearch(es_url, request_timeout=60)


@pytest.fixture
def index_prefix(es: Any) -> Iterator[str]:
    """A fresh index prefix per test, so tests never see each other's documents."""
    prefix = f"lstest-{uuid.uuid4().hex[:10]}"
    yield prefix
    if not os.environ.get("LOGSHIP_TEST_KEEP"):
        es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


def _searchable(es: Any, index: str) -> None:
    # A just-created index answers 503 until its primary shard is active.
    es.options(ignore_status=(404, 408)).cluster.health(index=index, wait_for_status="yellow", timeout="30s")
    es.options(ignore_status=404).indices.refresh(index=index)


def _while_shards_start(read: Callable[[], T], timeout: float = 60.0) -> T:
    """`read()` again on 503: an index the shipper creates between the health wait and the
    read has no active shard yet (search_phase_execution_exception). Anything else raises."""
    from elasticsearch import ApiError
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except ApiError as exc:
            if exc.meta.status != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def count_docs(es: Any, index: str, query: dict[str, Any] | None = None) -> int:
    def read() -> int:
        _searchable(es, index)
        r = es.options(ignore_status=404).count(index=index, query=query or {"match_all": {}})
        return int(r.get("count", 0)) if isinstance(r.body, dict) else 0
    return _while_shards_start(read)


def search_all(es: Any, index: str, query: dict[str, Any], size: int = 10000) -> list[dict[str, Any]]:
    """Every matching document's _source, via search_after paging."""
    return [h["_source"] for h in search_hits(es, index, query, size=size)]


def search_hits(es: Any, index: str, query: dict[str, Any], *, size: int = 10000,
                source: list[str] | None = None) -> list[dict[str, Any]]:
    """Every matching hit (with _index and _id), via search_after paging."""
    return _while_shards_start(lambda: _search_hits_once(es, index, query, size, source))


def _search_hits_once(es: Any, index: str, query: dict[str, Any], size: int,
                      source: list[str] | None) -> list[dict[str, Any]]:
    _searchable(es, index)
    out: list[dict[str, Any]] = []
    names = sorted(es.options(ignore_status=404).indices.get(index=index, expand_wildcards="open").body or {})
    if not isinstance(names, list) or not names:
        return out
    # Paged through a point in time, `_shard_doc` order: a stable order across indices (a test
    # spanning midnight UTC), shard copies and pages. search_after on `_doc` without one overlapped
    # pages while concurrent indexing refreshed and merged segments (seen under load: a test counted a
    # document twice while its index took another test's container's lines).
    pit = es.open_point_in_time(index=",".join(names), keep_alive="2m").body["id"]
    after = None
    try:
        while True:
            kw: dict[str, Any] = {"pit": {"id": pit, "keep_alive": "2m"}, "query": query,
                                  "size": min(size, 10000), "sort": ["_shard_doc"]}
            if source is not None:
                kw["_source"] = source
            if after is not None:
                kw["search_after"] = after
            hits = es.search(**kw).get("hits", {}).get("hits", [])
            out.extend(hits)
            if len(hits) < kw["size"]:
                break
            after = hits[-1]["sort"]
    finally:
        es.options(ignore_status=404).close_point_in_time(id=pit)
    return out


# ---- the shipper as a real process ----------------------------------------------
class Shipper:
    """`python -m shipper run` as a child process, configured through LOGSHIP_* env."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True, args: tuple[str, ...] = ("run",)) -> "Shipper":
        self._log = open(self.log_path, "ab")
        proc = self.proc = subprocess.Popen([sys.executable, "-m", "shipper", *args], cwd=ROOT, env=self.env,
                                            stdout=self._log, stderr=subprocess.STDOUT)
        if wait_ready:
            wait_until(lambda: "following events" in self.log() or proc.poll() is not None, 60,
                       what="the shipper to follow docker events")
            assert proc.poll() is None, f"shipper exited early:\n{self.log()[-3000:]}"
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 120) -> None:
        """Until the shipper logs `text` (e.g. "ebpf: probe attached": compiling the probe
        takes seconds to tens of seconds on a loaded 2-core machine)."""
        wait_until(lambda: text in self.log() or (self.proc is not None and self.proc.poll() is not None), timeout,
                   what=f"the shipper to log {text!r}")
        assert text in self.log(), f"shipper exited before logging {text!r}:\n{self.log()[-3000:]}"

    def stop(self, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"shipper did not stop within {timeout}s after SIGTERM:\n{self.log()[-3000:]}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def metrics(self, timeout: float = 5) -> str:
        import urllib.request
        with urllib.request.urlopen(f"http://{self.env.get('LOGSHIP_HTTP_ADDR', '127.0.0.1:0')}/metrics",
                                    timeout=timeout) as r:
            return r.read().decode()


@pytest.fixture
def shipper(es_url: str, index_prefix: str, tmp_path: Path, docker_client: Any) -> Iterator[Callable[..., Shipper]]:
    """Factory: shipper(**LOGSHIP_overrides) -> a started Shipper shipping into this test's indices."""
    made: list[Shipper] = []

    def make(start: bool = True, **overrides: str) -> Shipper:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_") or k == "LOGSHIP_EVAL_DIR"}
        env.update({
            "LOGSHIP_ES_URL": es_url,
            "LOGSHIP_ES_INDEX_PREFIX": index_prefix,
            "LOGSHIP_STATE_DIR": str(tmp_path / "state"),
            "LOGSHIP_EBPF": "off",
            "LOGSHIP_ES_FLUSH_INTERVAL_S": "0.2",
            "LOGSHIP_LOG_LEVEL": "debug",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(overrides)
        s = Shipper(env, tmp_path / f"shipper-{len(made)}.log")
        made.append(s)
        return s.start() if start else s

    yield make
    for s in made:
        s.kill()


# ---- eBPF -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def bpf_ready() -> None:
    if os.geteuid() != 0:
        infra_missing("BPF (needs root)", "run the tests as root")
    try:
        import bcc  # noqa: F401 - importing is the check
    except ImportError as exc:
        infra_missing("bcc", f"{exc}; install python3-bpfcc and use the .venv made by scripts/provision.sh")
    if not Path(f"/lib/modules/{os.uname().release}/build").exists():
        infra_missing("kernel headers for bcc", "run scripts/provision.sh headers")
