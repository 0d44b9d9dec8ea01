"""`logship check` on this host (real dockerd, ES, kernel): one line per check, exit 0
when nothing FAILs; a FAIL line carries its fix and makes the exit code 1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT

LINE = re.compile(r"^(ok|FAIL|warn)\s+(\S+)\s+(.*)$")


def _check(**env: str) -> tuple[int, dict[str, tuple[str, str]]]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
    full.update(env)
    r = subprocess.run([sys.executable, "-m", "shipper", "check"], cwd=ROOT, env=full,
                       capture_output=True, text=True, timeout=60)
    lines = {m[2]: (m[1], m[3]) for m in map(LINE.match, r.stdout.splitlines()) if m}
    assert len(lines) == len(r.stdout.splitlines()), r.stdout  # nothing but check lines
    return r.returncode, lines


def test_check_passes_on_a_provisioned_host(es_url: str, docker_client: Any, bpf_ready: None, tmp_path) -> None:
    code, lines = _check(LOGSHIP_ES_URL=es_url, LOGSHIP_STATE_DIR=str(tmp_path / "state"))
    assert set(lines) == {"docker", "state-dir", "bpf", "kernel-headers", "btf", "tracefs", "snapshots",
                          "elasticsearch", "retention", "kibana"}
    assert code == 0, lines
    # which mechanism the syscall rings run on: fentry, or tracepoints with the reason fentry is not used
    assert lines["snapshots"][0] == "ok" and re.search(r"rings on (fentry|per-syscall tracepoints .*fentry not used)",
                                                        lines["snapshots"][1]), lines["snapshots"]
    series = os.environ.get("LOGSHIP_ES_SERIES", "8.19")
    assert lines["elasticsearch"][0] == "ok" and series in lines["elasticsearch"][1]
    assert lines["retention"][0] in ("ok", "warn")
    assert lines["docker"][0] == "ok" and lines["tracefs"][0] == "ok"
    assert lines["kibana"][0] == "warn"  # no LOGSHIP_KIBANA_URL


def test_check_fails_with_a_fix_for_unreachable_services() -> None:
    code, lines = _check(LOGSHIP_ES_URL="http://127.0.0.1:9", LOGSHIP_KIBANA_URL="http://127.0.0.1:9",
                         LOGSHIP_DOCKER_HOST="unix:///nonexistent.sock", LOGSHIP_EBPF="off")
    assert code == 1
    for name in ("elasticsearch", "kibana", "docker"):
        assert lines[name][0] == "FAIL" and "(fix: " in lines[name][1], lines[name]


def test_check_fails_on_a_read_only_state_dir(es_url: str, tmp_path) -> None:
    """A read-only mount (root ignores permission bits, so the test makes a real one)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "--bind", str(ro), str(ro)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        code, lines = _check(LOGSHIP_ES_URL=es_url, LOGSHIP_STATE_DIR=str(ro), LOGSHIP_EBPF="off")
    finally:
        subprocess.run(["umount", str(ro)], check=True)
    assert code == 1
    status, detail = lines["state-dir"]
    assert status == "FAIL" and "Read-only" in detail and "(fix: " in detail
