"""Test stand-in for the official Kibana image (no image registry is reachable here): only what
docker-compose.yml and `logship setup` use, as tests/contracts/kibana_import.json records it.

- Like Kibana, it logs in to Elasticsearch as ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD
  (kibana_system, whose password the setup service sets) and serves nothing until that works:
  `/` answers 503 before, 302 to /login after (the compose health check greps the 302).
- /api/* checks the caller's Basic credentials against Elasticsearch (security is on).
- GET /api/status and POST /api/saved_objects/_import answer per the contract and check what
  they are sent (kbn-xsrf, multipart `file` ending in .ndjson, NDJSON objects with type/id/attributes).
- Imported objects are kept in /usr/share/kibana/data/objects.json (the kibanadata volume) and
  served by GET /_standin/objects for the test.
Standard library only: the image is local/debian (python3) and nothing else.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import os
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONTRACT = json.loads((Path(__file__).with_name("kibana_import.json")).read_text())
ES = os.environ["ELASTICSEARCH_HOSTS"].split(",")[0].rstrip("/")
STORE = Path(os.environ.get("STANDIN_DATA", "/usr/share/kibana/data")) / "objects.json"
_lock = threading.Lock()
_ready = threading.Event()


def _es_auth(header: str | None) -> bool:
    """Whether Elasticsearch accepts these Basic credentials."""
    if not header:
        return False
    req = urllib.request.Request(ES + "/_security/_authenticate", headers={"Authorization": header})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _connect_loop() -> None:
    """Kibana's start-up: retry as kibana_system until Elasticsearch accepts it."""
    creds = f"{os.environ['ELASTICSEARCH_USERNAME']}:{os.environ['ELASTICSEARCH_PASSWORD']}"
    header = "Basic " + base64.b64encode(creds.encode()).decode()
    while not _es_auth(header):
        print("standin-kibana: Elasticsearch refuses", os.environ["ELASTICSEARCH_USERNAME"], "(yet)", flush=True)
        time.sleep(3)
    print("standin-kibana: logged in to Elasticsearch as", os.environ["ELASTICSEARCH_USERNAME"], flush=True)
    _ready.set()


def _load() -> dict[str, Any]:
    return json.loads(STORE.read_text()) if STORE.exists() else {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the compose health check greps 'HTTP/1.1 302 Found'

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _gate(self) -> bool:
        """False (answered) unless Kibana would serve this request."""
        if not _ready.is_set():
            self._send(503, {"statusCode": 503, "error": "Service Unavailable",
                             "message": "Kibana server is not ready yet"})
            return False
        if self.path.startswith("/api/") and not _es_auth(self.headers.get("Authorization")):
            self._send(401, {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"})
            return False
        return True

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._gate():
            return
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(302, None, {"Location": "/login"})
        elif path == CONTRACT["status"]["request"]["path"]:
            self._send(200, CONTRACT["status"]["response_available"]["body"])
        elif path == "/_standin/objects":
            with _lock:
                self._send(200, _load())
        else:
            self._send(404, {"statusCode": 404, "error": "Not Found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self._gate():
            return
        c = CONTRACT["import"]
        path, _, query = self.path.partition("?")
        if path != c["request"]["path"]:
            return self._send(404, {"statusCode": 404, "error": "Not Found"})
        if "kbn-xsrf" not in self.headers:
            return self._send(400, c["response_missing_xsrf"]["body"])
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith(c["request"]["content_type"]):
            return self._send(415, {"statusCode": 415, "error": "Unsupported Media Type",
                                    "message": "expected multipart"})
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
        parts = [p for p in msg.iter_parts() if p.get_param("name", header="content-disposition")
                 == c["request"]["multipart_field"]]
        filename = parts[0].get_filename() if parts else None
        if not filename or not filename.endswith(c["request"]["filename_suffix"]):
            return self._send(415, c["response_bad_file"]["body"])
        payload = parts[0].get_payload(decode=True)
        if not isinstance(payload, bytes):
            return self._send(415, c["response_bad_file"]["body"])
        try:
            objects = [json.loads(line) for line in payload.decode().splitlines() if line.strip()]
        except ValueError as exc:
            return self._send(400, {"statusCode": 400, "error": "Bad Request", "message": f"bad NDJSON: {exc}"})
        bad = [o for o in objects if not isinstance(o, dict) or not {"type", "id", "attributes"} <= set(o)]
        if bad:
            return self._send(400, {"statusCode": 400, "error": "Bad Request",
                                    "message": "an object without type, id or attributes"})
        overwrite = "overwrite=true" in query.split("&")
        with _lock:
            stored = _load()
            conflicts = [o for o in objects if f"{o['type']}/{o['id']}" in stored and not overwrite]
            if conflicts:
                return self._send(200, {"success": False, "successCount": 0, "errors": [
                    {"id": o["id"], "type": o["type"], "error": {"type": "conflict"}} for o in conflicts]})
            for o in objects:
                stored[f"{o['type']}/{o['id']}"] = o
            STORE.parent.mkdir(parents=True, exist_ok=True)
            STORE.write_text(json.dumps(stored))
        self._send(200, {"success": True, "successCount": len(objects),
                         "successResults": [{"type": o["type"], "id": o["id"], "meta": {}} for o in objects]})

    def log_message(self, fmt: str, *args: Any) -> None:
        print("standin-kibana:", fmt % args, flush=True)


if __name__ == "__main__":
    threading.Thread(target=_connect_loop, daemon=True).start()
    ThreadingHTTPServer(("0.0.0.0", 5601), Handler).serve_forever()
