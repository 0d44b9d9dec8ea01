"""The shipper image run with exactly the hardening docker-compose.yml gives its service (read
from `docker-compose config`: capabilities, no-new-privileges, the seccomp profile, read-only
root, tmpfs, limits, read-only mounts) and the writer API key `logship setup` minted, against
Elasticsearch with security on: a container's file writes are shipped. Then each capability
is removed in turn and shipping breaks, which proves each one is needed:

- a container that opened its log file before the shipper started, running as uid 1000: its
  fd is only known from the start-up /proc scan (readlink /proc/<pid>/fd/*: SYS_PTRACE for
  another container's process, DAC_READ_SEARCH for its mode-0500 fd directory);
- a container started afterwards, writing /var/log/fresh.log (the probe itself: BPF, PERFMON).

Slow (an image build, five shipper starts each compiling the probe): marked slow."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.conftest import ROOT, wait_until
from tests.integration.private_es import es_secure  # noqa: F401 - fixture
from tests.integration.test_compose import _mount, assert_hardened
from tests.integration.test_es_security import secured  # noqa: F401 - fixture
from tests.integration.test_image import TAG, _build
from tests.integration.test_tail import free_port

CAPS_NEEDED = ("BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH")


def compose_shipper(tmp: Path) -> tuple[dict[str, Any], dict[str, str]]:
    d = tmp / "stack"
    d.mkdir()
    shutil.copy(ROOT / "docker-compose.yml", d)
    shutil.copytree(ROOT / "compose", d / "compose")
    subprocess.run([str(d / "compose" / "init-env.sh")], capture_output=True, text=True, check=True)
    lines = (d / ".env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    cfg = subprocess.run(["docker-compose", "config"], cwd=d, capture_output=True, text=True, timeout=60, check=True)
    return yaml.safe_load(cfg.stdout)["services"]["shipper"], env


def run_args(svc: dict[str, Any], caps: tuple[str, ...], state: Path, secrets: Path, env: dict[str, str]) -> list[str]:
    """`docker run` arguments equal to the compose service's hardening; only the named volumes become
    host directories and the network the host's (to reach the private Elasticsearch on loopback)."""
    args = ["--pid", svc["pid"], "--network", "host", "--read-only"] if svc["read_only"] else []
    args += [a for c in svc["cap_drop"] for a in ("--cap-drop", c)]
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
def test_the_image_hardened_as_composed_ships_and_needs_each_capability(
        secured: dict[str, Any], containers: Callable[..., Any], busybox: str, debian_image: str,  # noqa: F811
        docker_client: Any, bpf_ready: None, tmp_path: Path) -> None:
    svc, dotenv = compose_shipper(tmp_path)
    assert_hardened(svc, dotenv)
    docker_client.images.get(debian_image).tag("debian", "bookworm")
    built = _build([])
    if built.returncode != 0 and "Temporary failure" in built.stdout + built.stderr:
        built = _build(["--network", "host"])
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]

    prefix, admin = secured["prefix"], secured["admin"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    shutil.copy(secured["key_file"], secrets / "es-api-key")
    tag = uuid.uuid4().hex[:8]
    # Opened before any shipper starts, written through the old fd every 0.5 s, as uid 1000.
    containers(busybox, ["sh", "-c", "exec 3>>/logs/app.log; i=0; while true; do echo \"early-fd-$i\" >&3; "
                                     "i=$((i+1)); sleep 0.5; done"],
               name=f"early-{tag}", user="1000", tmpfs={"/logs": "mode=1777"})

    def count(text: str, since_ms: int) -> int:
        admin.indices.refresh(index=f"{prefix}-*", ignore_unavailable=True)
        q = {"bool": {"filter": [{"match_phrase": {"message": text}}, {"range": {"@timestamp": {"gte": since_ms}}}]}}
        return int(admin.count(index=f"{prefix}-*", query=q, ignore_unavailable=True)["count"])

    def attempt(caps: tuple[str, ...], n: int) -> dict[str, bool]:
        """Starts the hardened shipper with `caps`; which of the two kinds of file write got shipped."""
        state = tmp_path / f"state-{n}"
        state.mkdir()
        env = {"LOGSHIP_ES_URL": secured["admin_env"]["LOGSHIP_ES_URL"], "LOGSHIP_ES_INDEX_PREFIX": prefix,
               "LOGSHIP_EBPF": "on", "LOGSHIP_HTTP_ADDR": f"127.0.0.1:{free_port()}",
               "LOGSHIP_ES_FLUSH_INTERVAL_S": "0.2",
               "LOGSHIP_SNAPSHOT_ENABLED": "false"}
        name = f"hardened-{tag}-{n}"
        run = subprocess.run(["docker", "run", "-d", "--name", name, "--label", "logship.ignore=true",
                              *run_args(svc, caps, state, secrets, env), TAG],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        try:
            def logs() -> str:
                r = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=60)
                return r.stdout + r.stderr

            def state_of() -> str:
                return docker_client.containers.get(name).status
            wait_until(lambda: "probe attached" in logs() or "cannot start" in logs() or state_of() != "running",
                       300, what=f"the hardened shipper's probe ({caps})")
            if "probe attached" not in logs():
                return {"probe": False, "fresh": False, "early": False, "log": logs()[-1500:]}  # type: ignore[dict-item]
            since = int(time.time() * 1000)
            fresh = f"fresh-{tag}-{n}"
            containers(busybox, ["sh", "-c", f"sleep 1; for i in 1 2 3; do echo {fresh} >> /var/log/fresh.log; "
                                             "sleep 1; done; sleep 30"], name=f"fresh-{tag}-{n}")
            got_fresh = bool(wait_until(lambda: count(fresh, since) > 0 or state_of() != "running", 90,
                                        what="the fresh container's file write") and count(fresh, since) > 0)
            # The early container writes twice a second: a resolved fd shows within seconds of the scan.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and count("early-fd", since) == 0:
                time.sleep(1)
            return {"probe": True, "fresh": got_fresh, "early": count("early-fd", since) > 0,
                    "log": logs()[-1500:]}  # type: ignore[dict-item]
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)

    full = attempt(tuple(svc["cap_add"]), 0)
    assert full["probe"] and full["fresh"] and full["early"], full
    assert sorted(svc["cap_add"]) == sorted(CAPS_NEEDED)
    for n, cap in enumerate(CAPS_NEEDED, 1):
        without = attempt(tuple(c for c in svc["cap_add"] if c != cap), n)
        assert not (without["probe"] and without["fresh"] and without["early"]), (cap, without)
        print(f"without {cap}: {without}")
