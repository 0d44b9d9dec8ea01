"""How logship talks to Elasticsearch and Kibana, in one place: auth (API key or user) and
TLS (CA file, verification) from the settings, for the bulk sink's session, the small admin
requests (`logship setup`, `logship check`, the /health probe, snapshots) and the
elasticsearch-py client that puts the index templates."""

from __future__ import annotations

import base64
import ssl as _ssl
from typing import Any

import aiohttp

from shipper.config import ElasticsearchSettings, KibanaSettings


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def ssl_context(s: ElasticsearchSettings) -> _ssl.SSLContext | bool:
    """For aiohttp: True (verify against the system store) unless a CA file or no verification is set."""
    if not s.ca_file and s.verify_certs:
        return True
    ctx = _ssl.create_default_context(cafile=s.ca_file or None)
    if not s.verify_certs:
        ctx.check_hostname = False
        ctx.verify_mode = _ssl.CERT_NONE
    return ctx


def auth_headers(s: ElasticsearchSettings) -> dict[str, str]:
    if s.api_key:
        return {"Authorization": f"ApiKey {s.api_key}"}
    if s.username:
        return {"Authorization": basic_auth(s.username, s.password)}
    return {}


def es_session(s: ElasticsearchSettings, timeout_s: float = 10.0, *, headers: dict[str, str] | None = None,
               limit: int = 100) -> aiohttp.ClientSession:
    """A session to Elasticsearch; `limit` bounds its connections (aiohttp's default 100)."""
    return aiohttp.ClientSession(headers={**auth_headers(s), **(headers or {})},
                                 connector=aiohttp.TCPConnector(ssl=ssl_context(s), limit=limit),
                                 timeout=aiohttp.ClientTimeout(total=timeout_s))


def es_client_kwargs(s: ElasticsearchSettings) -> dict[str, Any]:
    """The same auth and TLS for elasticsearch-py's client."""
    kw: dict[str, Any] = {"hosts": list(s.url), "request_timeout": s.timeout_s, "verify_certs": s.verify_certs}
    if s.api_key:
        kw["api_key"] = s.api_key
    elif s.username:
        kw["basic_auth"] = (s.username, s.password)
    if s.ca_file:
        kw["ca_certs"] = s.ca_file
    if not s.verify_certs:
        kw["ssl_show_warn"] = False
    return kw


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
                                 connector=aiohttp.TCPConnector(ssl=ssl_context(es)),
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
