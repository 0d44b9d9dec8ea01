"""The real shipper's control plane (shipper/runtime/http.py): every control route refuses an
unauthenticated, wrong-token, wrong-Host, cross-origin or text/plain request and changes
nothing; /health and /metrics stay open on TCP (Host-checked); the unix socket serves
`logship tail`/`logship snapshot` (test_tail.py), and run-time arming is off by default."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from tests.conftest import ROOT
from tests.integration.test_tail import free_port

TOKEN = "integration-test-token"
CONTROL = [("GET", "/logs"), ("GET", "/snapshots/abc"), ("GET", "/snapshots/rules"), ("POST", "/snapshots/arm"),
           ("DELETE", "/snapshots/rules/1")]


def call(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> int:
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def rules_via_socket(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipper", "snapshot", "--rules"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_every_control_route_refuses_and_changes_nothing(shipper: Callable[..., Any], bpf_ready: None) -> None:
    port = free_port()
    # eBPF on: the /snapshots routes exist (the probe compiling in the background does not matter here).
    s = shipper(LOGSHIP_HTTP_ADDR=f"127.0.0.1:{port}", LOGSHIP_HTTP_TOKEN=TOKEN, LOGSHIP_EBPF="on")
    base = f"http://127.0.0.1:{port}"
    good = {"Authorization": f"Bearer {TOKEN}"}
    js = {"Content-Type": "application/json"}
    arm_body = json.dumps({"rule": "container=x"}).encode()
    for method, path in CONTROL:
        body = arm_body if method != "GET" else None
        for headers in ({}, {"Authorization": "Bearer nope"},
                        {"Authorization": "Basic " + base64.b64encode(b"admin:nope").decode()}):
            assert call(method, base + path, {**headers, **js}, body) == 401, (method, path, headers)
        assert call(method, base + path, {**good, **js, "Host": "rebound.example:8080"}, body) == 421, (method, path)
        if method != "GET":
            assert call(method, base + path, {**good, **js, "Origin": "http://evil.example"}, body) == 403, path
            assert call(method, base + path, {**good, "Content-Type": "text/plain"}, body) == 415, path
    for path in ("/health", "/metrics"):
        assert call("GET", base + path) in (200, 503), path
        assert call("GET", base + path, {"Host": "rebound.example"}) == 421, path
    # With the token, over TCP, a read works; arming is refused because it is off by default.
    assert call("GET", base + "/snapshots/rules", good) == 200
    assert call("POST", base + "/snapshots/arm", {**good, **js}, arm_body) == 403
    # Through the unix socket (the CLI's default): nothing was armed by any of the above, and arming stays off.
    listed = rules_via_socket(s.env)
    assert listed.returncode == 0 and listed.stdout == "", listed
    armed = subprocess.run([sys.executable, "-m", "shipper", "snapshot", "--arm", "level=error"], cwd=ROOT, env=s.env,
                           capture_output=True, text=True, timeout=60)
    assert armed.returncode == 1 and "LOGSHIP_SNAPSHOT_ARMING" in armed.stderr, armed
    metrics = s.metrics()
    for reason in ("token", "host", "origin", "content_type"):
        assert f'logship_http_refused_total{{reason="{reason}"}}' in metrics, reason


def test_without_a_token_tcp_has_no_control_routes(shipper: Callable[..., Any]) -> None:
    port = free_port()
    s = shipper(LOGSHIP_HTTP_ADDR=f"127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}"
    for method, path in CONTROL:
        assert call(method, base + path, {"Authorization": "Bearer anything", "Content-Type": "application/json"},
                    b"{}" if method != "GET" else None) == 403, (method, path)
    assert call("GET", base + "/metrics") == 200
    sock = ROOT / s.env["LOGSHIP_STATE_DIR"] / "control.sock"
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
