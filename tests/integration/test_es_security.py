"""Least privilege against a real Elasticsearch with security on (private_es.SecureES):
`logship setup` as the superuser puts the roles and mints the shipper's API key; that key can
ship (bulk create, snapshots with _create, the health calls) and read snapshots, and every
other action answers 403: reading the log indices or other indices, overwriting, deleting,
managing templates, creating indices outside its patterns. The real shipper ships a
container's line with nothing but that key."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import ROOT, wait_until
from tests.integration.private_es import SecureES, es_secure  # noqa: F401 - fixture


def logship(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipper", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def secured(es_secure: SecureES, tmp_path: Path) -> Iterator[dict[str, Any]]:  # noqa: F811
    from elasticsearch import Elasticsearch
    prefix = f"lssec{uuid.uuid4().hex[:8]}"
    admin_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
    admin_env.update({"LOGSHIP_ES_URL": es_secure.url, "LOGSHIP_ES_USERNAME": "elastic",
                      "LOGSHIP_ES_PASSWORD": es_secure.password, "LOGSHIP_ES_INDEX_PREFIX": prefix,
                      "LOGSHIP_STATE_DIR": str(tmp_path / "setup-state")})
    key_file = tmp_path / "secrets" / "es-api-key"
    r = logship(admin_env, "setup", "--skip-kibana", "--api-key-file", str(key_file))
    assert r.returncode == 0, r.stdout + r.stderr
    admin = Elasticsearch(es_secure.url, basic_auth=("elastic", es_secure.password), request_timeout=60)
    key = key_file.read_text().strip()
    writer = Elasticsearch(es_secure.url, api_key=key, request_timeout=60)
    yield {"prefix": prefix, "admin": admin, "writer": writer, "key_file": key_file, "key": key,
           "admin_env": admin_env, "setup_out": r.stdout}
    admin.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
    admin.options(ignore_status=404).indices.delete(index=f"other-{prefix}", expand_wildcards="all")


def status_of(call: Callable[[], Any]) -> int:
    from elasticsearch import ApiError
    try:
        r = call()
    except ApiError as exc:
        return int(exc.meta.status)
    return int(r.meta.status)


def test_setup_puts_roles_and_a_private_key_idempotently(secured: dict[str, Any]) -> None:
    prefix, admin = secured["prefix"], secured["admin"]
    assert "ok    elasticsearch roles:" in secured["setup_out"] and "created, written to" in secured["setup_out"]
    assert stat.S_IMODE(secured["key_file"].stat().st_mode) == 0o600
    for role in (f"{prefix}_writer", f"{prefix}_snapshot_reader", f"{prefix}_viewer"):
        assert role in admin.security.get_role(name=role).body
    writer_role = admin.security.get_role(name=f"{prefix}_writer").body[f"{prefix}_writer"]
    assert writer_role["cluster"] == ["monitor"]
    assert sorted(writer_role["indices"][0]["privileges"]) == ["auto_configure", "create_doc", "create_index"]
    # Again: the key in the file still works, so it is kept (no new key each run).
    again = logship(secured["admin_env"], "setup", "--skip-kibana", "--api-key-file", str(secured["key_file"]))
    assert again.returncode == 0 and "still valid in" in again.stdout, again.stdout + again.stderr
    assert secured["key_file"].read_text().strip() == secured["key"]
    # An invalidated key is replaced.
    keys = admin.security.get_api_key(name=f"{prefix}-shipper-*").body["api_keys"]
    admin.security.invalidate_api_key(ids=[k["id"] for k in keys])
    third = logship(secured["admin_env"], "setup", "--skip-kibana", "--api-key-file", str(secured["key_file"]))
    assert third.returncode == 0 and "created, written to" in third.stdout, third.stdout + third.stderr
    assert secured["key_file"].read_text().strip() != secured["key"]


def test_the_writer_key_ships_and_every_other_action_is_403(secured: dict[str, Any]) -> None:
    from shipper.config import ElasticsearchSettings
    from shipper.snapshots.store import SnapshotStore

    prefix, admin, w = secured["prefix"], secured["admin"], secured["writer"]
    day = time.strftime("%Y.%m.%d", time.gmtime())
    logs = f"{prefix}-{day}"
    # What the shipper does: bulk create (creating the index), the health calls, snapshots with _create.
    r = w.bulk(operations=[{"create": {"_index": logs, "_id": "line-1"}}, {"message": "shipped"},
                           {"create": {"_index": f"{prefix}-deadletter-{day}", "_id": "dl-1"}}, {"message": "refused"}],
               refresh=True)
    assert not r["errors"], r
    assert w.cluster.health().meta.status == 200
    assert w.nodes.info(node_id="_local").meta.status == 200
    settings = ElasticsearchSettings(url=(secured["admin"].transport.node_pool.get().base_url,),
                                     api_key=secured["key"], index_prefix=prefix, setup=False)
    store = SnapshotStore(settings, attempts=1)
    doc = {"logship.snapshot.id": "snap-1", "message": "first", "@timestamp": "2026-12-01T00:00:00Z"}
    assert asyncio.run(store.put(doc, time.time_ns()))
    assert asyncio.run(store.put({**doc, "message": "overwrite attempt"}, time.time_ns()))  # 409: already there
    got = asyncio.run(store.get("snap-1"))  # the snapshot reader role
    assert got is not None and got["message"] == "first"  # _create never overwrote it
    # A foreign index of the admin's, to read.
    admin.index(index=f"other-{prefix}", id="1", document={"secret": True}, refresh=True)
    refused = {
        "read its own log index": lambda: w.search(index=logs),
        "get a log line": lambda: w.get(index=logs, id="line-1"),
        "read another index": lambda: w.search(index=f"other-{prefix}"),
        "overwrite a line (index, not create)": lambda: w.index(index=logs, id="line-1", document={"m": "forged"}),
        "update a line": lambda: w.update(index=logs, id="line-1", doc={"m": "forged"}),
        "delete a line": lambda: w.delete(index=logs, id="line-1"),
        "delete the index": lambda: w.indices.delete(index=logs),
        "put an index template": lambda: w.indices.put_index_template(name=f"{prefix}-evil", index_patterns=["x-*"]),
        "delete an index template": lambda: w.indices.delete_index_template(name=f"{prefix}-logs"),
        "write outside its patterns": lambda: w.create(index=f"{prefix}-elsewhere", id="1", document={"m": 1}),
        "write another index": lambda: w.create(index=f"other-{prefix}", id="2", document={"m": 1}),
        "create a user": lambda: w.security.put_user(username=f"{prefix}-u", password="p4ssw0rd!", roles=["superuser"]),
        "mint itself an API key with more": lambda: w.security.create_api_key(
            name="escalate",
            role_descriptors={"all": {"cluster": ["all"], "indices": [{"names": ["*"], "privileges": ["all"]}]}}),
        "change cluster settings": lambda: w.cluster.put_settings(
            persistent={"cluster.routing.allocation.enable": "none"}),
    }
    # Not here: _delete_by_query (the reindex module is not in the integ-test distribution); reading
    # index templates is allowed, by the cluster `monitor` privilege the health calls need.
    answers = {what: status_of(call) for what, call in refused.items()}
    assert {what: code for what, code in answers.items() if code != 403} == {}
    # And nothing changed: the line is as shipped, the foreign index unwritten, no template.
    assert admin.get(index=logs, id="line-1")["_source"] == {"message": "shipped"}
    assert admin.count(index=f"other-{prefix}")["count"] == 1
    assert status_of(lambda: admin.indices.get_index_template(name=f"{prefix}-evil")) == 404


def test_the_shipper_ships_with_only_the_writer_key(secured: dict[str, Any], containers: Callable[..., Any],
                                                    busybox: str, tmp_path: Path) -> None:
    from tests.integration.test_tail import free_port
    from tests.conftest import Shipper
    prefix, admin = secured["prefix"], secured["admin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
    env.update({"LOGSHIP_ES_URL": admin.transport.node_pool.get().base_url,
                "LOGSHIP_ES_API_KEY_FILE": str(secured["key_file"]),
                "LOGSHIP_ES_SETUP": "false", "LOGSHIP_ES_INDEX_PREFIX": prefix, "LOGSHIP_EBPF": "off",
                "LOGSHIP_STATE_DIR": str(tmp_path / "state"), "LOGSHIP_ES_FLUSH_INTERVAL_S": "0.2",
                "LOGSHIP_HTTP_ADDR": f"127.0.0.1:{free_port()}", "PYTHONUNBUFFERED": "1"})
    s = Shipper(env, tmp_path / "shipper.log").start()
    try:
        name = f"sec-{uuid.uuid4().hex[:8]}"
        containers(busybox, ["sh", "-c", "echo shipped-with-the-writer-key; sleep 30"], name=name)

        def found() -> int:
            admin.indices.refresh(index=f"{prefix}-*", ignore_unavailable=True)
            q = {"match_phrase": {"message": "shipped-with-the-writer-key"}}
            return int(admin.count(index=f"{prefix}-*", query=q)["count"])
        wait_until(lambda: found() == 1, 60, what=f"the line shipped with the writer key\n{s.log()[-2000:]}")
        assert "403" not in s.log() and "security_exception" not in s.log(), s.log()[-3000:]
        assert secured["key"] not in s.log()
    finally:
        s.stop()
