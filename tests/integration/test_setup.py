"""`logship setup` against the real Elasticsearch: creates the index templates, and a
second run changes nothing (idempotent)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT


def _setup(es_url: str, prefix: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
    env.update(LOGSHIP_ES_URL=es_url, LOGSHIP_ES_INDEX_PREFIX=prefix)
    return subprocess.run([sys.executable, "-m", "shipper", "setup"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_setup_creates_templates_then_changes_nothing(es: Any, es_url: str, index_prefix: str) -> None:
    try:
        first = _setup(es_url, index_prefix)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "ok    elasticsearch templates: updated" in first.stdout
        assert "skip  kibana: LOGSHIP_KIBANA_URL is not set" in first.stdout
        names = {t["name"] for t in es.indices.get_index_template(name=f"{index_prefix}-*")["index_templates"]}
        assert f"{index_prefix}-logs" in names and f"{index_prefix}-deadletter" in names
        versions = {t["name"]: t["index_template"]["_meta"] for t in
                    es.indices.get_index_template(name=f"{index_prefix}-*")["index_templates"]}

        second = _setup(es_url, index_prefix)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "already up to date" in second.stdout
        assert {t["name"]: t["index_template"]["_meta"] for t in
                es.indices.get_index_template(name=f"{index_prefix}-*")["index_templates"]} == versions
    finally:
        es.options(ignore_status=404).indices.delete_index_template(name=f"{index_prefix}-*")


def test_setup_reports_unreachable_elasticsearch() -> None:
    r = _setup("http://127.0.0.1:9", "lstest-nowhere")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "FAIL  elasticsearch templates" in r.stderr
