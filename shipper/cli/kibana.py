"""Kibana saved objects (kibana/*.ndjson): load, adapt to this deployment, import.

The import goes through Kibana's saved-objects API (`POST /api/saved_objects/_import
?overwrite=true`, multipart `file` field, `kbn-xsrf` header), which is idempotent with
overwrite: a second run rewrites the same ids. Kibana answers 503 (or refuses the
connection) for a while after start, so the import first waits for `GET /api/status`."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp

from shipper.sinks.elasticsearch.indices import DEADLETTER, SNAPSHOTS, index_pattern
from shipper.core.masking import error_text

log = logging.getLogger("logship.kibana")

# An installed package carries a copy (setup.py); a checkout (or an editable install) has kibana/ at its top.
_PACKAGED = Path(__file__).resolve().with_name("kibana_objects")
OBJECTS_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "kibana"
DATA_VIEW_ID = "logship-logs"
DEFAULT_SHIPPER_URL = "http://127.0.0.1:8080"
SNAPSHOT_FIELD = "logship.snapshot.id"


class KibanaError(RuntimeError):
    pass


def load_objects(directory: Path = OBJECTS_DIR) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.ndjson")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    objects.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise KibanaError(f"{path}:{n}: not JSON: {exc}") from None
    return objects


def data_view_title(index_prefix: str) -> str:
    """The log indices minus the dead letters and snapshots (Kibana's `-pattern` exclusion)."""
    p = index_prefix
    return f"{index_pattern(p)},-{index_pattern(p, DEADLETTER)},-{index_pattern(p, SNAPSHOTS)}"


def adapt(objects: list[dict[str, Any]], *, shipper_url: str, index_prefix: str) -> list[dict[str, Any]]:
    """The objects for this deployment: the data view's index pattern follows the index
    prefix, and the snapshot links point at the shipper as the browser reaches it."""
    out = json.loads(json.dumps(objects))  # deep copy: callers keep the originals
    for obj in out:
        if obj.get("type") == "index-pattern" and obj.get("id") == DATA_VIEW_ID:
            attrs = obj["attributes"]
            attrs["title"] = data_view_title(index_prefix)
            formats = json.loads(attrs.get("fieldFormatMap") or "{}")
            fmt = formats.get(SNAPSHOT_FIELD)
            if fmt:
                fmt["params"]["urlTemplate"] = fmt["params"]["urlTemplate"].replace(
                    DEFAULT_SHIPPER_URL, shipper_url.rstrip("/"))
            attrs["fieldFormatMap"] = json.dumps(formats, separators=(",", ":"))
    return out


def to_ndjson(objects: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(o, separators=(",", ":")).encode() + b"\n" for o in objects)


async def wait_ready(session: aiohttp.ClientSession, url: str, timeout_s: float) -> None:
    """Until `GET /api/status` says available; raises KibanaError with the last answer."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    delay = 1.0
    while True:
        try:
            async with session.get(url.rstrip("/") + "/api/status") as r:
                body = await r.json(content_type=None) if r.status == 200 else None
                level = ((body or {}).get("status") or {}).get("overall", {}).get("level")
                if r.status == 200 and level in ("available", None):
                    return
                last = f"HTTP {r.status}, status {level or '?'}"
                if r.status in (401, 403):
                    raise KibanaError(f"Kibana at {url} refused the credentials ({last})")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            last = error_text(exc)
        if time.monotonic() + delay > deadline:
            raise KibanaError(f"Kibana at {url} not available after {timeout_s:.0f}s: {last}")
        log.info("kibana: waiting for %s (%s)", url, last)
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 10.0)


async def import_objects(session: aiohttp.ClientSession, url: str, ndjson: bytes) -> int:
    """One `_import` with overwrite; returns Kibana's successCount."""
    form = aiohttp.FormData()
    form.add_field("file", ndjson, filename="logship.ndjson", content_type="application/ndjson")
    async with session.post(url.rstrip("/") + "/api/saved_objects/_import", params={"overwrite": "true"},
                            data=form, headers={"kbn-xsrf": "true"}) as r:
        text = await r.text()
        if r.status != 200:
            raise KibanaError(f"import answered HTTP {r.status}: {text[:500]}")
    body = json.loads(text)
    if not body.get("success"):
        errors = [f"{e.get('type')}/{e.get('id')}: {e.get('error')}" for e in body.get("errors", [])]
        raise KibanaError("import failed: " + ("; ".join(errors) or text[:500]))
    return int(body.get("successCount", 0))
