"""aiohttp sessions for the small admin requests to Elasticsearch and Kibana
(`logship setup`, `logship check`, the /health probe): auth and TLS from the settings."""

from __future__ import annotations

import base64
import ssl as _ssl
from typing import Any

import aiohttp

from shipper.config import ElasticsearchSettings, KibanaSettings


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _ssl_context(ca_file: str, verify: bool) -> Any:
    if not ca_file and verify:
        return None  # aiohttp's default: verify against the system store
    ctx = _ssl.create_default_context(cafile=ca_file or None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = _ssl.CERT_NONE
    return ctx


def es_session(s: ElasticsearchSettings, timeout_s: float = 10.0) -> aiohttp.ClientSession:
    headers: dict[str, str] = {}
    if s.api_key:
        headers["Authorization"] = f"ApiKey {s.api_key}"
    elif s.username:
        headers["Authorization"] = basic_auth(s.username, s.password)
    return aiohttp.ClientSession(headers=headers,
                                 connector=aiohttp.TCPConnector(ssl=_ssl_context(s.ca_file, s.verify_certs)),
                                 timeout=aiohttp.ClientTimeout(total=timeout_s))


def kibana_session(k: KibanaSettings, es: ElasticsearchSettings, timeout_s: float = 30.0) -> aiohttp.ClientSession:
    """Kibana takes the same users as Elasticsearch: its own user if set, else the ES one.
    `kbn-xsrf` is required by every Kibana API call that changes something."""
    user, password = (k.username, k.password) if k.username else (es.username, es.password)
    headers = {"kbn-xsrf": "true"}
    if user:
        headers["Authorization"] = basic_auth(user, password)
    elif es.api_key:
        headers["Authorization"] = f"ApiKey {es.api_key}"
    return aiohttp.ClientSession(headers=headers,
                                 connector=aiohttp.TCPConnector(ssl=_ssl_context(es.ca_file, es.verify_certs)),
                                 timeout=aiohttp.ClientTimeout(total=timeout_s))


async def es_version(session: aiohttp.ClientSession, url: str) -> str:
    """The version of the node answering at `url`. Uses `_nodes/_local` rather than `GET /`:
    the integration-test distribution has no root endpoint."""
    async with session.get(url.rstrip("/") + "/_nodes/_local", params={"filter_path": "nodes.*.version"}) as r:
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {(await r.text())[:200]}")
        body = await r.json(content_type=None)
    nodes = (body or {}).get("nodes") or {}
    for node in nodes.values():
        return str(node.get("version", "?"))
    raise RuntimeError(f"no node in the answer: {body!r}"[:200])
