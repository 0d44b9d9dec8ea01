"""The CLI's answers to a refusing Elasticsearch and a read-only state dir: one clear line
and a distinct exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from shipper.cli.exit_codes import EXIT_REFUSED

ROOT = Path(__file__).resolve().parents[2]


class _Refuse(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = b'{"error":{"type":"security_exception","reason":"unable to authenticate user [x]"},"status":401}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-elastic-product", "Elasticsearch")
        self.send_header("WWW-Authenticate", 'Basic realm="security"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_es() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _logship(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGSHIP_")}
    return subprocess.run([sys.executable, "-m", "shipper", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["run", "setup"])
def test_wrong_credentials_one_line_and_exit_refused(refusing_es, tmp_path, command):
    p = _logship([command, "--skip-kibana"] if command == "setup" else [command],
                 {"LOGSHIP_ES_URL": refusing_es, "LOGSHIP_ES_USERNAME": "x", "LOGSHIP_ES_PASSWORD": "pw-s3cr3t",
                  "LOGSHIP_STATE_DIR": str(tmp_path / "state"), "LOGSHIP_EBPF": "off", "LOGSHIP_HTTP_ADDR": ""})
    assert p.returncode == EXIT_REFUSED, p.stderr
    assert "Traceback" not in p.stderr and "unreachable" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if "401" in line]
    assert errors and "LOGSHIP_ES_USERNAME" in errors[-1] and "pw-s3cr3t" not in p.stderr
