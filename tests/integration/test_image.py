"""The shipper image builds with no image registry (FROM debian:bookworm = the locally built
local/debian:bookworm; apt and pip reach their registries) and `logship check` runs in it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

TAG = "logship/shipper:test"
CHECK_LINE = re.compile(r"^(ok|FAIL|warn)\s+(\S+)\s+\S", re.M)


def _build(extra: list[str]) -> subprocess.CompletedProcess[str]:
    ca = "".join(p.read_text() for p in sorted(Path("/usr/local/share/ca-certificates").glob("*.crt")))
    args = ["docker", "build", "-q", "-f", "compose/shipper/Dockerfile", "-t", TAG, *extra]
    if ca:  # this machine reaches PyPI through a TLS-inspecting proxy
        args += ["--build-arg", f"EXTRA_CA_PEM={ca}"]
    return subprocess.run([*args, "."], cwd=ROOT, capture_output=True, text=True, timeout=1500)


@pytest.mark.slow
def test_image_builds_and_logship_check_runs_inside(docker_client: Any, debian_image: str) -> None:
    docker_client.images.get(debian_image).tag("debian", "bookworm")
    built = _build([])
    if built.returncode != 0 and "Temporary failure" in built.stderr + built.stdout:
        built = _build(["--network", "host"])  # some hosts give build containers no DNS
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]

    run = subprocess.run(["docker", "run", "--rm", "-e", "LOGSHIP_ES_URL=http://127.0.0.1:9", TAG, "logship", "check"],
                         capture_output=True, text=True, timeout=120)
    checks = dict((name, status) for status, name in CHECK_LINE.findall(run.stdout))
    assert set(checks) == {"docker", "state-dir", "bpf", "kernel-headers", "btf", "tracefs", "snapshots",
                           "elasticsearch", "retention", "kibana"}, run.stdout + run.stderr
    assert checks["elasticsearch"] == "FAIL" and run.returncode == 1  # nothing listens on :9
    assert checks["docker"] == "FAIL"  # no socket mounted in this bare run
    assert "(fix: " in run.stdout

    helps = subprocess.run(["docker", "run", "--rm", TAG, "sh", "-c",
                            "logship --help && logship setup --help && logship tail --help && python3 -c 'import bcc'"],
                           capture_output=True, text=True, timeout=120)
    assert helps.returncode == 0, helps.stderr
