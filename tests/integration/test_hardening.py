"""The shipper's hardening (docker-compose.yml, read through `docker-compose config`).

test_each_capability_is_needed: the shipper runs on the host with exactly the compose
service's capabilities as its bounding set (setpriv, no-new-privs), then with each one
removed in turn; shipping a file write breaks every time, which proves each is needed:
- a container that opened its log file before the shipper started, running as uid 1000:
  its fd is only known from the start-up /proc scan (readlink /proc/<pid>/fd/*: SYS_PTRACE
  for another container's process, DAC_READ_SEARCH for its mode-0500 fd directory);
- a container started afterwards, writing /var/log/fresh.log (the probe: BPF, PERFMON).

test_the_image_hardened_as_composed_ships: the image built from compose/shipper/Dockerfile
runs with the compose service's settings (no-new-privileges, the seccomp profile, read-only
root, tmpfs, limits, read-only mounts, the writer API key from `logship setup`) against
Elasticsearch with security on, and a container's file write is shipped. Docker engines
before 23 (Debian 12's 20.10) do not know CAP_BPF/CAP_PERFMON: there, and only there, the
two are given as CAP_SYS_ADMIN, which includes both; the test says so in its output."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.conftest import ROOT, Shipper, infra_missing, wait_until
from tests.integration.private_es import es_secure  # noqa: F401 - fixture
from tests.integration.test_compose import _mount, assert_hardened
from tests.integration.test_es_security import secured  # noqa: F401 - fixture
from tests.integration.test_image import TAG, _build
from tests.integration.test_tail import free_port

EARLY = ["sh", "-c", "exec 3>>/logs/app.log; i=0; while true; do echo \"early-fd-$i\" >&3; i=$((i+1)); sleep 0.5; done"]


def compose_shipper(tmp: Path) -> tuple[dict[str, Any], dict[str, str]]:
    if shutil.which("docker-compose") is None:
        infra_missing("docker-compose", "apt-get install docker-compose")
    d = tmp / "stack"
    d.mkdir()
    shutil.copy(ROOT / "docker-compose.yml", d)
    shutil.copytree(ROOT / "compose", d / "compose")
    subprocess.run([str(d / "compose" / "init-env.sh")], capture_output=True, text=True, check=True)
    lines = (d / ".env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    cfg = subprocess.run(["docker-compose", "config"], cwd=d, capture_output=True, text=True, timeout=60, check=True)
    return yaml.safe_load(cfg.stdout)["services"]["shipper"], env


class Scenario:
    """The two kinds of container file write, and how to count what arrived in Elasticsearch."""

    def __init__(self, es: Any, prefix: str, containers: Callable[..., Any], busybox: str, debian: str) -> None:
        self.es, self.prefix, self.containers, self.busybox = es, prefix, containers, busybox
        self.tag = uuid.uuid4().hex[:8]
        self.include = f"early-{self.tag},fresh-{self.tag}-*"  # only these: the host's other containers are not ours
        # Opened before any shipper starts, written through the old fd twice a second, as uid 1000
        # (Debian: the busybox image's directories are not open to other users).
        containers(debian, EARLY, name=f"early-{self.tag}", user="1000", tmpfs={"/logs": "mode=1777"})

    def count(self, text: str, since_ms: int) -> int:
        self.es.indices.refresh(index=f"{self.prefix}-*", ignore_unavailable=True)
        q = {"bool": {"filter": [{"match_phrase": {"message": text}}, {"range": {"@timestamp": {"gte": since_ms}}}]}}
        return int(self.es.count(index=f"{self.prefix}-*", query=q, ignore_unavailable=True)["count"])

    def check(self, n: int, running: Callable[[], bool]) -> dict[str, bool]:
        """After the probe attached: is a fresh container's write shipped, and the early one's?"""
        since = int(time.time() * 1000) - 1000
        fresh = f"fresh-{self.tag}-{n}"
        self.containers(self.busybox, ["sh", "-c", f"sleep 1; for i in 1 2 3; do echo {fresh} >> /var/log/fresh.log; "
                                                   "sleep 1; done; sleep 30"], name=f"fresh-{self.tag}-{n}")
        deadline = time.monotonic() + 90  # not wait_until: with a capability missing, nothing may ever arrive
        while time.monotonic() < deadline and running() and self.count(fresh, since) == 0:
            time.sleep(1)
        got_fresh = self.count(fresh, since) > 0
        deadline = time.monotonic() + 20  # a resolved fd shows within seconds: the early one writes every 0.5 s
        while time.monotonic() < deadline and self.count("early-fd", since) == 0:
            time.sleep(1)
        return {"probe": True, "fresh": got_fresh, "early": self.count("early-fd", since) > 0}


@pytest.mark.slow
def test_each_capability_is_needed(shipper: Callable[..., Shipper], es: Any, index_prefix: str,
                                   containers: Callable[..., Any], busybox: str, debian_image: str,
                                   bpf_ready: None, tmp_path: Path) -> None:
    if shutil.which("setpriv") is None:
        infra_missing("setpriv", "apt-get install util-linux")
    svc, dotenv = compose_shipper(tmp_path)
    assert_hardened(svc, dotenv)
    caps = [c.lower() for c in svc["cap_add"]]
    scenario = Scenario(es, index_prefix, containers, busybox, debian_image)

    def attempt(with_caps: list[str], n: int) -> dict[str, Any]:
        s = shipper(start=False, LOGSHIP_EBPF="on", LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}",
                    LOGSHIP_SNAPSHOT_ENABLED="false", LOGSHIP_STATE_DIR=str(tmp_path / f"state-{n}"),
                    LOGSHIP_DOCKER_INCLUDE=scenario.include)
        bounding = ",".join(["-all", *(f"+{c}" for c in with_caps)])
        log = open(s.log_path, "ab")
        s.proc = subprocess.Popen(["setpriv", "--no-new-privs", f"--bounding-set={bounding}", "--inh-caps=-all", "--",
                                   sys.executable, "-m", "shipper", "run"], cwd=ROOT, env=s.env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: "probe attached" in s.log() or s.proc.poll() is not None, 300,  # type: ignore[union-attr]
                       what=f"the shipper's probe with {with_caps}")
            if "probe attached" not in s.log():
                return {"probe": False, "fresh": False, "early": False, "log": s.log()[-800:]}
            result: dict[str, Any] = scenario.check(n, lambda: s.proc.poll() is None)  # type: ignore[union-attr]
            return result
        finally:
            s.kill()
            log.close()

    full = attempt(caps, 0)
    assert full == {"probe": True, "fresh": True, "early": True}, full
    for n, cap in enumerate(caps, 1):
        without = attempt([c for c in caps if c != cap], n)
        print(f"without {cap}: {without}")
        assert not (without["probe"] and without["fresh"] and without["early"]), (cap, without)


def docker_run_args(svc: dict[str, Any], state: Path, secrets: Path, env: dict[str, str],
                    engine_knows_bpf: bool) -> list[str]:
    """`docker run` arguments equal to the compose service's hardening; only the named volumes become
    host directories and the network the host's (to reach the private Elasticsearch on loopback)."""
    args = ["--pid", svc["pid"], "--network", "host"] + (["--read-only"] if svc["read_only"] else [])
    args += [a for c in svc["cap_drop"] for a in ("--cap-drop", c)]
    caps = list(svc["cap_add"])
    if not engine_knows_bpf:
        caps = [c for c in caps if c not in ("BPF", "PERFMON")] + ["SYS_ADMIN"]
    args += [a for c in caps for a in ("--cap-add", c)]
    for opt in svc["security_opt"]:
        key, _, value = opt.partition(":")
        if key == "seccomp":
            value = str(ROOT / value)  # compose resolves it from the project directory
        args += ["--security-opt", f"{key}={value}"]
    args += [a for t in svc["tmpfs"] for a in ("--tmpfs", t)]
    args += ["--memory", str(svc["mem_limit"]), "--pids-limit", str(svc["pids_limit"])]
    for v in svc["volumes"]:
        target, (source, ro) = _mount(v)
        source = {"shipperstate": str(state), "shippersecrets": str(secrets)}.get(source, source)
        args += ["-v", f"{source}:{target}{':ro' if ro else ''}"]
    for k, v in {**svc["environment"], **env}.items():
        args += ["-e", f"{k}={v}"]
    return args


@pytest.mark.slow
def test_the_image_hardened_as_composed_ships(secured: dict[str, Any], containers: Callable[..., Any],  # noqa: F811
                                              busybox: str, debian_image: str, docker_client: Any, bpf_ready: None,
                                              tmp_path: Path) -> None:
    svc, dotenv = compose_shipper(tmp_path)
    assert_hardened(svc, dotenv)
    docker_client.images.get(debian_image).tag("debian", "bookworm")
    built = _build([])
    if built.returncode != 0 and "Temporary failure" in built.stdout + built.stderr:
        built = _build(["--network", "host"])
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    probe = subprocess.run(["docker", "run", "--rm", "--cap-drop", "ALL", "--cap-add", "BPF", busybox, "true"],
                           capture_output=True, text=True, timeout=60)
    knows_bpf = probe.returncode == 0
    if not knows_bpf:
        assert "unknown capability" in probe.stderr, probe.stderr
        print("this Docker engine does not know CAP_BPF/CAP_PERFMON: giving CAP_SYS_ADMIN in their place")

    prefix, admin = secured["prefix"], secured["admin"]
    secrets, state = tmp_path / "shipper-secrets", tmp_path / "shipper-state"
    secrets.mkdir()
    state.mkdir()
    shutil.copy(secured["key_file"], secrets / "es-api-key")
    scenario = Scenario(admin, prefix, containers, busybox, debian_image)
    env = {"LOGSHIP_ES_URL": secured["admin_env"]["LOGSHIP_ES_URL"], "LOGSHIP_ES_INDEX_PREFIX": prefix,
           "LOGSHIP_EBPF": "on", "LOGSHIP_HTTP_ADDR": f"127.0.0.1:{free_port()}", "LOGSHIP_ES_FLUSH_INTERVAL_S": "0.2",
           "LOGSHIP_DOCKER_INCLUDE": scenario.include}
    name = f"hardened-{scenario.tag}"
    run = subprocess.run(["docker", "run", "-d", "--name", name, "--label", "logship.ignore=true",
                          *docker_run_args(svc, state, secrets, env, knows_bpf), TAG],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    try:
        def logs() -> str:
            r = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=60)
            return r.stdout + r.stderr

        def running() -> bool:
            return bool(docker_client.containers.get(name).status == "running")
        wait_until(lambda: "probe attached" in logs() or not running(), 300, what="the hardened shipper's probe")
        assert "probe attached" in logs(), logs()[-3000:]
        result = scenario.check(0, running)
        assert result == {"probe": True, "fresh": True, "early": True}, (result, logs()[-3000:])
        assert "security_exception" not in logs() and secured["key"] not in logs()
        inspect = docker_client.containers.get(name).attrs["HostConfig"]
        opts = inspect["SecurityOpt"]
        assert inspect["ReadonlyRootfs"] and "no-new-privileges=true" in opts
        assert any(o.startswith("seccomp=") and "perf_event_open" in o for o in opts)  # our profile, not unconfined
        assert inspect["CapDrop"] == ["ALL"] and inspect["PidsLimit"] == svc["pids_limit"]
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
