"""`docker-compose up`, for real: the README's quick start run against the real dockerd with
Debian's docker-compose, docker-compose.yml as users get it except the two official images
(swapped for the local stand-ins of tests/compose/ through COMPOSE_FILE, since no image registry
is reachable here). Then the user story end to end and the day-2 operations.

One test, because it is one story on one stack (each step needs the state the previous left);
every wait is on a condition, and the finalizer removes the stack, its volumes and the
containers the test started."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, infra_missing, wait_until
from tests.integration import compose_stack

PROJECT = "logshipct"
PORTS = {"ES_PORT": "19200", "KIBANA_PORT": "15601", "SHIPPER_PORT": "18080"}  # beside the shared services
STACK = ("elasticsearch", "kibana", "setup", "shipper")
APP_IMAGE = "local/busybox:latest"


class Stack:
    def __init__(self, d: Path, env: dict[str, str]) -> None:
        self.dir, self.env = d, env

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(["docker-compose", *args], cwd=self.dir, env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if check:
            assert r.returncode == 0, f"docker-compose {' '.join(args)}: {r.stdout[-3000:]}{r.stderr[-3000:]}"
        return r

    def dotenv(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in (self.dir / ".env").read_text().splitlines()
                    if line and not line.startswith("#"))

    def ids(self) -> dict[str, str]:
        """service -> container id (stopped ones too: setup has exited)."""
        out = {}
        for svc in STACK:
            r = self.compose("ps", "-a", "-q", svc, check=False)
            if r.stdout.strip():
                out[svc] = r.stdout.split()[0]
        return out

    def es(self, path: str, body: Any = None, auth: tuple[str, str] | None = None, method: str | None = None) -> Any:
        user, pw = auth or ("elastic", self.dotenv()["ELASTIC_PASSWORD"])
        req = urllib.request.Request(f"http://127.0.0.1:{PORTS['ES_PORT']}{path}",
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": "Basic "
                                              + base64.b64encode(f"{user}:{pw}".encode()).decode()}, method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def docs(self, query: dict[str, Any], size: int = 10000) -> list[dict[str, Any]]:
        try:
            self.es("/logship-*/_refresh", method="POST")
            r = self.es("/logship-*,-logship-snapshots-*,-logship-deadletter-*/_search",
                        {"query": query, "size": size, "sort": [{"@timestamp": "asc"}]})
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise
        return [_flat(h["_source"]) for h in r["hits"]["hits"]]

    def of(self, container_id: str, stream: str | None = None) -> list[dict[str, Any]]:
        f: list[dict[str, Any]] = [{"term": {"container.id": container_id}}]
        if stream:
            f.append({"term": {"stream": stream}})
        return self.docs({"bool": {"filter": f}})

    def health(self, container_id: str) -> str:
        r = subprocess.run(["docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                            container_id], capture_output=True, text=True, timeout=60)
        return r.stdout.strip()


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} and {"a.b": 1} alike as {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _app(tag: str, script: str) -> str:
    r = subprocess.run(["docker", "run", "-d", "--name", tag, "--label", "logship-compose-test=1",
                        "--label", "logship.snapshots=true", "--network",
                        "none", APP_IMAGE, "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _seqs(docs: list[dict[str, Any]], prefix: str) -> list[int]:
    return [int(m.group(1)) for d in docs if (m := re.fullmatch(prefix + r" (\d+)", str(d.get("message", ""))))]


@pytest.fixture
def stack(tmp_path: Path, docker_client: Any, debian_image: str, busybox: str) -> Any:
    if shutil.which("docker-compose") is None:
        infra_missing("docker-compose", "apt-get install docker-compose")
    docker_client.images.get(debian_image).tag("debian", "bookworm")  # the Dockerfiles' FROM, built locally
    t0 = time.monotonic()
    try:
        times = compose_stack.build_images(tmp_path / "build", "8.19.9")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        infra_missing("the stack's images (shipper, Elasticsearch and Kibana stand-ins)", str(exc)[-1500:])
    build_s = time.monotonic() - t0
    d = tmp_path / "stack"
    d.mkdir()
    # The file as shipped, but for the capabilities this engine cannot grant (README: Debian 12's Docker 20.10
    # knows no BPF/PERFMON; these machines' dockerd lacks CAP_SYS_RESOURCE); printed, and nothing else changes.
    text, notes = compose_stack.engine_compat((ROOT / "docker-compose.yml").read_text(), busybox)
    (d / "docker-compose.yml").write_text(text)
    print(f"\nengine compatibility: {notes or 'none needed'}")
    shutil.copytree(ROOT / "compose", d / "compose")
    (d / "tests" / "compose").mkdir(parents=True)
    shutil.copy(compose_stack.OVERRIDE, d / "tests" / "compose")
    env = {**os.environ, **PORTS, "COMPOSE_PROJECT_NAME": PROJECT,
           "COMPOSE_FILE": "docker-compose.yml:tests/compose/docker-compose.standin.yml"}
    s = Stack(d, env)
    s.compose("down", "-v", "--remove-orphans", check=False)  # a previous run's leftovers
    print(f"\nimage builds: {build_s:.0f}s {json.dumps({k: round(v) for k, v in times.items()})}")
    yield s
    logs = s.compose("logs", "--no-color", "--tail", "80", check=False)
    print(logs.stdout[-12000:])
    s.compose("down", "-v", "--remove-orphans", "-t", "30", check=False)
    left = subprocess.run(["docker", "ps", "-aq", "--filter", "label=logship-compose-test=1"],
                          capture_output=True, text=True, timeout=60).stdout.split()
    if left:
        subprocess.run(["docker", "rm", "-f", *left], capture_output=True, timeout=120)


@pytest.mark.slow
# pytest-timeout's 600 s default covers the fixture too: cold (no layer cached, a fresh machine) the three images
# took 244 s at load 5-10 on 2 cores (shipper 174 s, after its Dockerfile was cut to few steps: on vfs each step
# copies the whole file system), then ~9 min of story; each build is bounded by 1800 s itself.
@pytest.mark.timeout(3600)
def test_compose_up_ships_restarts_and_upgrades(stack: Stack) -> None:
    t_start = time.monotonic()
    run = uuid.uuid4().hex[:8]

    # ---- the README's quick start ------------------------------------------------------------
    r = subprocess.run(["compose/init-env.sh"], cwd=stack.dir, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "wrote" in r.stdout, r.stdout + r.stderr
    up = stack.compose("up", "-d", timeout=1500)  # waits for ES healthy and setup's exit 0 (depends_on)
    ids = stack.ids()
    assert set(ids) == set(STACK), up.stdout + up.stderr
    setup_logs = stack.compose("logs", "--no-color", "setup").stdout
    state = json.loads(subprocess.run(["docker", "inspect", "-f", "{{json .State}}", ids["setup"]],
                                      capture_output=True, text=True, timeout=60).stdout)
    assert state["Status"] == "exited" and state["ExitCode"] == 0, setup_logs
    assert "kibana_system password set" in setup_logs, setup_logs
    assert stack.health(ids["elasticsearch"]) == "healthy"  # (setup waited for it)
    # setup waited for Kibana to answer; its health check runs every 10 s, so may not have yet
    wait_until(lambda: stack.health(ids["kibana"]) == "healthy", 120, 2, what="kibana healthy")
    wait_until(lambda: stack.health(stack.ids()["shipper"]) == "healthy", 300, 2, what="the shipper healthy")

    # setup's work, seen from outside: templates, kibana_system's password, the saved objects.
    env = stack.dotenv()
    assert stack.es("/_index_template/logship*")["index_templates"]
    assert stack.es("/_security/_authenticate", auth=("kibana_system", env["KIBANA_SYSTEM_PASSWORD"]))[
        "username"] == "kibana_system"
    kibana_objects = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{PORTS['KIBANA_PORT']}/_standin/objects",
                                                       timeout=30).read())
    assert any(k.startswith("dashboard/") for k in kibana_objects) and any(
        k.startswith("index-pattern/") for k in kibana_objects), sorted(kibana_objects)

    # ---- a third container: stdout, a *.log file (eBPF in the shipper container), a snapshot ---
    app = _app(f"logship-ct-app-{run}", "sleep 3; for i in 1 2 3; do echo \"app-stdout $i\"; done; "
               "echo 'app-file 1' >> /var/log/app.log; "
               "echo '{\"level\":\"error\",\"message\":\"app-error database unreachable\"}' >> /var/log/app.log; "
               "sleep 3600")
    wait_until(lambda: len(stack.of(app, "stdout")) >= 3 and len(stack.of(app, "file")) >= 2, 240, 2,
               what="the app's stdout and file lines in Elasticsearch")
    docs = stack.of(app)
    assert {d["container.name"] for d in docs} == {f"logship-ct-app-{run}"}
    assert sorted(d["message"] for d in docs if d["stream"] == "stdout") == [f"app-stdout {i}" for i in (1, 2, 3)]
    files = [d for d in docs if d["stream"] == "file"]
    assert {d["log.file.path"] for d in files} == {"/var/log/app.log"} and "app-file 1" in {
        d["message"] for d in files}
    error = wait_until(lambda: [d for d in stack.of(app, "file") if d.get("logship.snapshot.id")], 120, 2,
                       what="the error line with its logship.snapshot.id")[0]
    sid = error["logship.snapshot.id"]
    snap = wait_until(lambda: (p := stack.compose("exec", "-T", "shipper", "logship", "snapshot", sid, check=False))
                      .returncode == 0 and p.stdout, 120, 3, what=f"logship snapshot {sid}")
    assert "app.log" in snap and "write" in snap, snap

    # nothing of the stack itself is shipped (LOGSPOUT=ignore / logship.ignore, the shipper's self-exclusion)
    ids = stack.ids()
    assert stack.docs({"terms": {"container.id": list(ids.values())}}) == []

    # ---- day 2: restart, stop/start while a container writes numbered lines -------------------
    # The writer numbers lines until told to stop (after the shipper is back), then says how
    # many it wrote: the stop falls mid-stream however long the restarts take on a busy machine
    # (at most 9,000 lines: one search answers them all).
    writer = _app(f"logship-ct-seq-{run}", "sleep 2; i=0; while [ ! -e /tmp/stop ] && [ $i -lt 9000 ]; do "
                  f"echo \"seq {run} $i\"; i=$((i+1)); usleep 40000 2>/dev/null || sleep 0.04; done; "
                  "echo \"wrote $i\"; sleep 3600")
    wait_until(lambda: len(stack.of(writer)) >= 50, 120, 1, what="the writer's first lines")
    stack.compose("restart", "shipper", timeout=300)
    wait_until(lambda: len(stack.of(writer)) > 0 and stack.health(stack.ids()["shipper"]) != "", 60, 1)
    stack.compose("stop", "shipper", timeout=300)
    before = len(stack.of(writer))
    time.sleep(5)  # lines written while the shipper is stopped
    stack.compose("start", "shipper", timeout=600)
    wait_until(lambda: len(stack.of(writer)) > before + 50, 300, 2, what="the writer's lines after the start")
    subprocess.run(["docker", "exec", writer, "touch", "/tmp/stop"], check=True, timeout=60)
    wrote = wait_until(lambda: [int(d["message"].split()[1]) for d in stack.of(writer)
                                if re.fullmatch(r"wrote \d+", str(d.get("message", "")))], 600, 2,
                       what="the writer's count after restart/stop/start")[0]
    n = wrote + 1  # (its count line)
    wait_until(lambda: len(stack.of(writer)) >= n, 600, 2, what=f"all {n} lines of the writer")
    seqs = _seqs(stack.of(writer), f"seq {run}")
    assert sorted(seqs) == list(range(wrote)), f"lost {set(range(wrote)) - set(seqs)}, {len(seqs) - len(set(seqs))} dup"
    assert len(stack.of(writer)) == n and before < wrote  # once each; the stop really was while it wrote

    # ---- down (volumes kept), up: nothing re-shipped ------------------------------------------
    counts = {c: len(stack.of(c)) for c in (app, writer)}
    stack.compose("down", "-t", "60", timeout=600)
    stack.compose("up", "-d", timeout=1500)
    wait_until(lambda: stack.health(stack.ids()["shipper"]) == "healthy", 300, 2, what="the shipper healthy again")
    marker = _app(f"logship-ct-marker-{run}", "sleep 2; echo marker-after-up; sleep 3600")
    wait_until(lambda: stack.of(marker), 240, 2, what="a new container's line after down/up")
    assert {c: len(stack.of(c)) for c in (app, writer)} == counts  # its checkpoints survived in shipperstate

    # ---- a changed shipper setting: up -d recreates only the shipper --------------------------
    before_ids = stack.ids()
    with (stack.dir / ".env").open("a") as f:
        f.write(f"LOGSHIP_HOSTNAME=host-{run}\n")
    stack.compose("up", "-d", timeout=1500)
    after_ids = stack.ids()
    changed = {svc for svc in STACK if before_ids[svc] != after_ids[svc]}
    assert changed == {"shipper"}, (before_ids, after_ids)
    late = _app(f"logship-ct-late-{run}", "sleep 2; echo late-line; sleep 3600")
    got = wait_until(lambda: stack.of(late), 240, 2, what="a line shipped by the recreated shipper")
    assert got[0]["host.name"] == f"host-{run}"
    assert {c: len(stack.of(c)) for c in (app, writer)} == counts
    print(f"\ncompose stack test (after the image builds): {time.monotonic() - t_start:.0f}s")
