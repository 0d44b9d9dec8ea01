"""Provisioning is idempotent: run after `make test` already provisioned, it installs
and downloads nothing."""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT


def test_second_provisioning_installs_and_downloads_nothing(es_url, docker_client):
    r = subprocess.run([str(ROOT / "scripts/provision.sh"),
                        "packages", "tracefs", "headers", "docker", "images", "venv"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 6, lines  # one line per step
    for word in ("installing", "downloaded", "starting", "built", "debootstrap"):
        assert not any(word in ln for ln in lines), lines
