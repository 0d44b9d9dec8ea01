"""Missing infrastructure fails a test, whatever the environment says: there is no skip switch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("env, outcome", [
    ({}, "1 failed"),
    ({"LOGSHIP_TEST_ALLOW_SKIP": "1"}, "1 failed"),  # the old opt-in is gone
    ({"LOGSHIP_TEST_ALLOW_SKIP": "1", "CI": "true"}, "1 failed"),
])
def test_missing_infrastructure_fails(tmp_path, env, outcome):
    probe = tmp_path / "test_probe.py"
    probe.write_text("from tests.conftest import infra_missing\n\n"
                     "def test_needs_it():\n    infra_missing('the thing', 'provision it')\n")
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "LOGSHIP_TEST_ALLOW_SKIP")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)], cwd=tmp_path,
                       env={**base, **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert outcome in r.stdout, r.stdout[-2000:]
