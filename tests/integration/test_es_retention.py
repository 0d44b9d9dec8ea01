"""Retention on a real Elasticsearch without ILM (the integration-test distribution has no
x-pack-ilm): `logship setup` and the running shipper delete the daily indices older than
their kind's retention, by the date in their name, and nothing else; `logship check` shows
who deletes and the oldest index. (The ILM side is tested on canned answers:
tests/unit/test_es_retention.py.)"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT, wait_until


def day(ago: int) -> str:
    return (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=ago)).strftime("%Y.%m.%d")


def cli(es_url: str, prefix: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
    full.update({"LOGSHIP_ES_URL": es_url, "LOGSHIP_ES_INDEX_PREFIX": prefix, **env})
    return subprocess.run([sys.executable, "-m", "shipper", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=120)


def existing(es: Any, prefix: str) -> set[str]:
    return set(es.options(ignore_status=404).indices.get(index=f"{prefix}-*", expand_wildcards="all").body or {})


def test_setup_deletes_expired_daily_indices_only(es: Any, es_url: str, index_prefix: str) -> None:
    p = index_prefix
    expired = {f"{p}-{day(31)}", f"{p}-{day(400)}", f"{p}-deadletter-{day(31)}", f"{p}-snapshots-{day(8)}"}
    kept = {f"{p}-{day(30)}", f"{p}-{day(0)}", f"{p}-deadletter-{day(30)}", f"{p}-snapshots-{day(7)}",
            f"{p}-other-{day(400)}", f"{p}-{day(400)}-copy"}
    for name in expired | kept:
        es.indices.create(index=name, settings={"number_of_replicas": 0})
    r = cli(es_url, p, "setup", "--skip-kibana")
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "retention" in ln)
    assert "the shipper deletes expired daily indices (logs 30d, deadletter 30d, snapshots 7d)" in line, line
    assert all(name in line for name in expired), line
    assert existing(es, p) == kept
    again = cli(es_url, p, "setup", "--skip-kibana")
    assert "deleted" not in next(ln for ln in again.stdout.splitlines() if "retention" in ln)

    check = cli(es_url, p, "check", LOGSHIP_EBPF="off")
    line = next(ln for ln in check.stdout.splitlines() if ln.split()[1:2] == ["retention"])
    assert line.startswith("ok") and f"oldest logs {p}-{day(30)} (30 days)" in line, line
    assert f"oldest snapshots {p}-snapshots-{day(7)} (7 days)" in line, line


def test_running_shipper_deletes_what_expires(es: Any, index_prefix: str, shipper: Any) -> None:
    p = index_prefix
    s = shipper(LOGSHIP_ES_RETENTION_CHECK_S="1", LOGSHIP_ES_SNAPSHOT_RETENTION_DAYS="2",
                LOGSHIP_DOCKER_INCLUDE=f"none-{p}")
    es.indices.create(index=f"{p}-snapshots-{day(3)}", settings={"number_of_replicas": 0})
    es.indices.create(index=f"{p}-snapshots-{day(2)}", settings={"number_of_replicas": 0})
    wait_until(lambda: f"{p}-snapshots-{day(3)}" not in existing(es, p), 60, what="the shipper's retention task")
    assert f"{p}-snapshots-{day(2)}" in existing(es, p)
    assert "retention: deleted 1 expired indices" in s.log()
