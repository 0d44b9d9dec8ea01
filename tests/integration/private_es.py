"""A private Elasticsearch (ports 9250-9259, 9271-9289) that a test may stop and start: never
the shared one on 9200. Started through scripts/provision.sh with its own data dir; also a
3-node cluster on loopback (`private_cluster`), and the series under test is
LOGSHIP_ES_SERIES (8.19 by default, 9.2)."""

from __future__ import annotations

import base64
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import time
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


# ---- Elasticsearch with security on -------------------------------------------------
SHIM = ROOT / "tests/integration/es_plugin"
ES_USER = "logship-es"


class SecureES:
    """A private Elasticsearch with x-pack security on (plain HTTP on 127.0.0.1, single node), its
    own home (the integ-test distribution plus the analysis shim, see es_plugin/) and config dir,
    the `elastic` superuser's password set through the keystore's bootstrap.password."""

    def __init__(self, port: int, password: str = "elastic-test-pw") -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.password = password
        self.state = ROOT / ".state" / f"es-secure-{port}"

    def _run(self, args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]

    def healthy(self) -> bool:
        req = urllib.request.Request(self.url + "/_cluster/health")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"elastic:{self.password}".encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=3) as r:
                return r.status == 200
        except OSError:
            return False

    def _home(self) -> Path:
        r = self._run([str(ROOT / "scripts/provision.sh"), "es-download"], env={**os.environ, "LOGSHIP_ES_URL": ""})
        if r.returncode != 0:
            raise RuntimeError(f"provision.sh es-download: {r.stdout}{r.stderr}")
        dist = Path(r.stdout.strip().splitlines()[-1])
        home = ROOT / ".state" / f"es-home-secure-{dist.name}"
        plugin = home / "plugins" / "logship-analysis-shim"
        if not (plugin / "logship-analysis-shim.jar").exists():
            if shutil.which("javac") is None:
                raise RuntimeError("no javac: install openjdk-17-jdk-headless (scripts/provision.sh packages)")
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(dist, home, symlinks=True)
            build = self.state / "shim-build"
            shutil.rmtree(build, ignore_errors=True)
            build.mkdir(parents=True)
            sources = [str(p) for p in (SHIM / "src").rglob("*.java")]
            for cmd in (["javac", "-d", str(build / "classes"), "-cp", f"{home / 'lib'}/*", *sources],
                        ["jar", "cf", str(build / "logship-analysis-shim.jar"), "-C", str(build / "classes"), "."]):
                r = self._run(cmd)
                if r.returncode != 0:
                    raise RuntimeError(f"{cmd[0]}: {r.stderr}")
            plugin.mkdir(parents=True)
            shutil.copy(build / "logship-analysis-shim.jar", plugin)
            version = dist.name.rsplit("-", 1)[1]
            (plugin / "plugin-descriptor.properties").write_text(
                (SHIM / "plugin-descriptor.properties").read_text().replace("@VERSION@", version))
        return home

    def start(self) -> None:
        if self.healthy():
            return
        home = self._home()
        conf, data, logs = self.state / "config", self.state / "data", self.state / "logs"
        shutil.rmtree(self.state / "config", ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)  # a fresh cluster: the bootstrap password only seeds an empty one
        shutil.copytree(home / "config", conf)
        (conf / "elasticsearch.keystore").unlink(missing_ok=True)
        data.mkdir(parents=True)
        logs.mkdir(parents=True, exist_ok=True)
        self._run(["chown", "-R", ES_USER, str(home), str(self.state)])
        java_home = str(Path(os.path.realpath(shutil.which("java") or "java")).parent.parent)
        env = ["env", f"ES_JAVA_HOME={java_home}", f"ES_PATH_CONF={conf}"]
        ks = str(home / "bin" / "elasticsearch-keystore")
        for args, stdin in (([ks, "create"], None), ([ks, "add", "-x", "bootstrap.password"], self.password)):
            r = self._run(["runuser", "-u", ES_USER, "--", *env, *args], input=stdin)
            if r.returncode != 0:
                raise RuntimeError(f"elasticsearch-keystore {args[1]}: {r.stdout}{r.stderr}")
        r = self._run(["runuser", "-u", ES_USER, "--", *env, "ES_JAVA_OPTS=-Xms512m -Xmx512m",
                       str(home / "bin" / "elasticsearch"), "-d", "-p", str(self.state / "pid"),
                       "-Ediscovery.type=single-node", "-Enetwork.host=127.0.0.1", f"-Ehttp.port={self.port}",
                       f"-Etransport.port={self.port + 100}", f"-Epath.data={data}", f"-Epath.logs={logs}",
                       "-Ecluster.routing.allocation.disk.threshold_enabled=false",
                       "-Eaction.destructive_requires_name=false",
                       "-Expack.security.enabled=true", "-Expack.security.http.ssl.enabled=false",
                       "-Expack.security.transport.ssl.enabled=false"])
        if r.returncode != 0:
            raise RuntimeError(f"elasticsearch start: {r.stdout}{r.stderr}")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.healthy():
                return
            time.sleep(1)
        raise RuntimeError(f"secure Elasticsearch on {self.port} not healthy after 180 s; see {logs}")

    def stop(self) -> None:
        pidf = self.state / "pid"
        if not pidf.exists():
            return
        pid = int(pidf.read_text().strip() or 0)
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        pidf.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def es_secure() -> Iterator[SecureES]:
    """On 9256, security on: for the least-privilege tests (roles, the shipper's API key)."""
    es = SecureES(9256)
    try:
        es.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        infra_missing("a private Elasticsearch with security on (9256)", str(exc)[-800:])
    yield es
    if not os.environ.get("LOGSHIP_TEST_KEEP"):
        es.stop()


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
