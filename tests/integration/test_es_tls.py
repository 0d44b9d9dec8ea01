"""HTTPS + basic auth, through a REAL TLS proxy (nginx, a CA made with openssl) in front
of the test Elasticsearch: lines arrive; bad credentials and an unknown CA stop the
shipper at start with a clear message; the password never appears in the shipper's log."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import count_docs, infra_missing, wait_until

PASSWORD = "s3cret-Pa55-in-no-log"


def _run(*cmd: str, cwd: Path) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(d: Path) -> None:
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=logship test CA",
         "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
         "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)


@pytest.fixture
def tls_proxy(tmp_path: Path, es_url: str) -> Iterator[dict[str, Any]]:
    for tool in ("nginx", "openssl"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            infra_missing(tool, "run scripts/provision.sh packages")
    d = tmp_path / "proxy"
    d.mkdir()
    make_certs(d)
    (d / "htpasswd").write_text("shipper:" + _run("openssl", "passwd", "-apr1", PASSWORD, cwd=d))
    port = _free_port()
    upstream = es_url.split("://", 1)[1]
    (d / "nginx.conf").write_text(f"""
user root; daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {d}/server.pem; ssl_certificate_key {d}/server.key;
    client_max_body_size 200m;
    location / {{
      auth_basic "elasticsearch"; auth_basic_user_file {d}/htpasswd;
      proxy_pass http://{upstream}; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_set_header Authorization "";
    }}
  }}
}}
""")
    proc = subprocess.Popen(["nginx", "-p", str(d), "-c", str(d / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(lambda: listening() or proc.poll() is not None, 15, what="nginx")
        assert proc.poll() is None, (d / "error.log").read_text()
        yield {"url": f"https://127.0.0.1:{port}", "ca": str(d / "ca.pem")}
    finally:
        proc.terminate()
        proc.wait(10)


def _failed_start(shipper: Any, **env: str) -> str:
    s = shipper(start=False, **env)
    s.start(wait_ready=False)
    wait_until(lambda: s.proc.poll() is not None, 60, what="the shipper to give up")
    assert s.proc.returncode != 0
    return s.log()


def test_tls_basic_auth_ships_and_never_logs_the_password(es, index_prefix, shipper, containers, busybox, tls_proxy):
    s = shipper(LOGSHIP_ES_URL=tls_proxy["url"], LOGSHIP_ES_CA_FILE=tls_proxy["ca"],
                LOGSHIP_ES_USERNAME="shipper", LOGSHIP_ES_PASSWORD=PASSWORD)
    c = containers(busybox, ["sh", "-c", "seq 1 500"])
    c.wait(timeout=60)
    q = {"term": {"container.id": c.id}}
    wait_until(lambda: count_docs(es, f"{index_prefix}-*", q) >= 500, 60, what="500 lines through the proxy")
    assert count_docs(es, f"{index_prefix}-*", q) == 500
    assert es.indices.exists_index_template(name=f"{index_prefix}-logs")
    assert PASSWORD not in s.log()


def test_bad_credentials_stop_the_start_clearly(shipper, tls_proxy):
    log = _failed_start(shipper, LOGSHIP_ES_URL=tls_proxy["url"], LOGSHIP_ES_CA_FILE=tls_proxy["ca"],
                        LOGSHIP_ES_USERNAME="shipper", LOGSHIP_ES_PASSWORD=PASSWORD + "-wrong")
    assert "answered 401" in log and "LOGSHIP_ES_PASSWORD" in log
    assert PASSWORD not in log


def test_unknown_certificate_authority_stops_the_start_clearly(shipper, tls_proxy):
    log = _failed_start(shipper, LOGSHIP_ES_URL=tls_proxy["url"],
                        LOGSHIP_ES_USERNAME="shipper", LOGSHIP_ES_PASSWORD=PASSWORD)
    assert "certificate verification failed" in log and "LOGSHIP_ES_CA_FILE" in log
    assert PASSWORD not in log
