"""A non-editable install (`pip install .`) works away from the checkout: the CLI starts and
the Kibana saved objects, kept at the top of the repository, come with the package."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_pip_install_carries_the_kibana_objects(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    # The dependencies come from the running interpreter's environment (no index needed).
    site = Path(sysconfig.get_paths()["purelib"])
    (next((venv / "lib").glob("python3*")) / "site-packages" / "deps.pth").write_text(f"{site}\n")
    r = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--disable-pip-version-check", str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=120, cwd=tmp_path)

    helped = run(str(venv / "bin/logship"), "setup", "--help")
    assert helped.returncode == 0 and "kibana" in helped.stdout.lower(), helped.stderr
    loaded = run(str(venv / "bin/python"), "-c",
                 "import json, shipper.cli.kibana as k; "
                 "print(json.dumps([str(k.OBJECTS_DIR), k.__file__, len(k.load_objects())]))")
    assert loaded.returncode == 0, loaded.stderr
    objects_dir, module, count = json.loads(loaded.stdout)
    assert not module.startswith(str(ROOT)) and objects_dir.startswith(str(venv)), (module, objects_dir)
    want = sum(1 for p in (ROOT / "kibana").glob("*.ndjson") for line in p.read_text().splitlines() if line.strip())
    assert count == want > 0
