"""Least privilege in Elasticsearch (Filebeat's model: a setup user, a writer, readers).

`logship setup`, run as an administrator, puts three roles and can mint the shipper's API key:

- `<prefix>_writer`: exactly what the running shipper calls: `monitor` on the cluster (the start-up
  `_cluster/health`, the /health probe's `_nodes/_local`) and `create_doc`, `create_index`,
  `auto_configure` on the log, dead-letter and snapshot indices (`_bulk` create actions,
  snapshots with `_create`). It cannot read, overwrite, delete, or manage templates.
- `<prefix>_snapshot_reader`: `read` on the snapshot indices (the shipper's /snapshots/{id}).
- `<prefix>_viewer`: for people in Kibana: read the log, dead-letter and snapshot indices, and
  Kibana's Discover and Dashboard in read-only mode.

The shipper's key carries the writer and the snapshot reader role descriptors. Elasticsearch
stores only a hash of a key: `setup` writes the encoded key to a file (mode 0600) that the
shipper reads (LOGSHIP_ES_API_KEY_FILE), and mints a new one only when the file's key no
longer authenticates."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from shipper.config import ElasticsearchSettings
from shipper.sinks.elasticsearch.client import es_session

JSON = {"Content-Type": "application/json"}


class SecurityError(RuntimeError):
    """Elasticsearch refused a security call; the message says which and why."""


def index_patterns(prefix: str) -> dict[str, str]:
    """The shipper's indices. Log indices are `<prefix>-YYYY.MM.DD`: matched by a Lucene regex, so
    the writer cannot create `<prefix>-anything-else`."""
    return {
        "logs": "/" + re.sub(r"([.?+*|{}\[\]()\"\\#@&<>~])", r"\\\1", prefix) + r"-[0-9]{4}\.[0-9]{2}\.[0-9]{2}/",
        "deadletter": f"{prefix}-deadletter-*",
        "snapshots": f"{prefix}-snapshots-*",
    }


def roles(prefix: str) -> dict[str, dict[str, Any]]:
    p = index_patterns(prefix)
    every = [p["logs"], p["deadletter"], p["snapshots"]]
    meta = {"managed_by": "logship"}
    return {
        f"{prefix}_writer": {
            "cluster": ["monitor"],
            "indices": [{"names": every, "privileges": ["create_doc", "create_index", "auto_configure"]}],
            "metadata": meta,
        },
        f"{prefix}_snapshot_reader": {
            "indices": [{"names": [p["snapshots"]], "privileges": ["read"]}],
            "metadata": meta,
        },
        f"{prefix}_viewer": {
            "indices": [{"names": every, "privileges": ["read", "view_index_metadata"]}],
            "applications": [{"application": "kibana-.kibana", "resources": ["*"],
                              "privileges": ["feature_discover.read", "feature_dashboard.read",
                                             "feature_visualize.read"]}],
            "metadata": meta,
        },
    }


def shipper_key_roles(prefix: str) -> dict[str, dict[str, Any]]:
    """The role descriptors of the shipper's API key: the writer and the snapshot reader."""
    r = roles(prefix)
    return {name: r[name] for name in (f"{prefix}_writer", f"{prefix}_snapshot_reader")}


async def _call(s: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = orjson.dumps(body) if body is not None else None
    async with s.request(method, url, data=data, headers=JSON if data else None) as r:
        raw = await r.read()
        try:
            return r.status, orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return r.status, raw.decode(errors="replace")


async def security_enabled(settings: ElasticsearchSettings) -> bool:
    """False when Elasticsearch runs without security (no roles to put, no keys to mint): its
    `_security/_authenticate` then does not exist (8.x answers 405, or 400/404/500 naming security)."""
    async with es_session(settings) as s:
        status, body = await _call(s, "GET", settings.url[0].rstrip("/") + "/_security/_authenticate")
    if status == 200:
        return True
    if status in (400, 404, 405, 500):
        return False
    raise SecurityError(f"_security/_authenticate answered HTTP {status}: {str(body)[:300]}")


async def put_roles(settings: ElasticsearchSettings) -> list[str]:
    """Puts the three roles (idempotent: a PUT of the same body changes nothing); their names."""
    base = settings.url[0].rstrip("/")
    async with es_session(settings) as s:
        for name, body in roles(settings.index_prefix).items():
            status, answer = await _call(s, "PUT", f"{base}/_security/role/{name}", body)
            if status != 200:
                raise SecurityError(f"putting role {name} answered HTTP {status}: {str(answer)[:300]}")
    return list(roles(settings.index_prefix))


async def key_works(settings: ElasticsearchSettings, encoded: str) -> bool:
    """Does this encoded API key still authenticate (not expired, not invalidated)?"""
    from dataclasses import replace
    async with es_session(replace(settings, api_key=encoded, username="", password="")) as s:
        status, _ = await _call(s, "GET", settings.url[0].rstrip("/") + "/_security/_authenticate")
    return status == 200


async def ensure_shipper_key(settings: ElasticsearchSettings, path: Path, name: str) -> bool:
    """The shipper's API key in `path`: kept when it still authenticates, else a new one (older keys of
    the same name invalidated first). True when a new key was written."""
    if path.is_file() and (current := path.read_text().strip()) and await key_works(settings, current):
        return False
    base = settings.url[0].rstrip("/")
    async with es_session(settings) as s:
        await _call(s, "DELETE", f"{base}/_security/api_key", {"name": name})  # none yet: 404/200, both fine
        status, answer = await _call(s, "POST", f"{base}/_security/api_key", {
            "name": name, "role_descriptors": shipper_key_roles(settings.index_prefix),
            "metadata": {"managed_by": "logship"}})
    if status != 200 or not isinstance(answer, dict) or "encoded" not in answer:
        raise SecurityError(f"creating API key {name} answered HTTP {status}: {str(answer)[:300]}")
    write_secret(path, answer["encoded"])
    return True


def write_secret(path: Path, value: str) -> None:
    """`value` into `path`, readable by its owner only from the first byte, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (value + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
