"""Syscall windows against the real kernel: an app container connects to a MySQL-like
server on port 3306 that answers `Access denied ...`, then appends `Database error` to
its PHP error log. The snapshot of that log line shows, in order, the connect to 3306,
the read of the reply, the open of php_error.log and the write of the line, and no
syscall of any other thread. The app opts in with the label logship.snapshots=true; a
twin container without it writes the same line and never gets a snapshot.

test_window_from_rings drives the ring program (its own BPF object) through the
manager (ring, scope, decode logic, no shipper); test_snapshot_through_the_shipper runs
`logship run` with the eBPF source and finds the document in Elasticsearch."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

import pytest

from tests.conftest import ROOT, search_all, wait_until

pytestmark = [pytest.mark.bpf, pytest.mark.docker]

REPLY = b"Access denied for user 'root'@'localhost' (using password: YES)\n"
APP = r"""
import socket, sys, time
gw = None
for line in open('/proc/net/route').read().splitlines()[1:]:
    f = line.split()
    if f[1] == '00000000':
        gw = socket.inet_ntoa(bytes.fromhex(f[2])[::-1])
time.sleep(float(sys.argv[2]))
s = socket.create_connection((gw, int(sys.argv[1])))
reply = s.recv(4096)
s.close()
with open('/var/log/app/php_error.log', 'a') as log:
    log.write('PHP Warning: Database error: ' + reply.decode().strip() + '\n')
time.sleep(30)
"""


class DeniedServer:
    """Answers every connection with MySQL's `Access denied` text and closes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind(("0.0.0.0", 3306))
        except OSError:
            self.sock.bind(("0.0.0.0", 0))  # 3306 taken on this host: any port shows the same
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(REPLY)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def denied_server() -> Iterator[DeniedServer]:
    s = DeniedServer()
    yield s
    s.close()


OPT_IN = {"logship.snapshots": "true"}


def start_app(containers: Any, image: str, port: int, delay: float, opt_in: bool = True) -> Any:
    return containers(image, ["python3", "-c", APP, str(port), str(delay)], tmpfs={"/var/log/app": ""},
                      labels=OPT_IN if opt_in else {})


def assert_scenario(doc: dict[str, Any], tid: int, port: int) -> None:
    events = doc["events"]
    text = doc["text"]
    assert {e["tid"] for e in events} == {tid}, f"events of other threads:\n{text}"

    def first(pred: Any, after: int, what: str) -> int:
        for i, e in enumerate(events[after:], after):
            if pred(e):
                return i
        raise AssertionError(f"no {what} after event {after} in the snapshot:\n{text}")

    i = first(lambda e: e["syscall"] == "connect" and str(e["args"].get("addr", "")).endswith(f":{port}"), 0,
              f"connect to port {port}")
    i = first(lambda e: e["syscall"] in ("recvfrom", "read") and "Access denied" in e.get("data", ""), i + 1,
              "read of the Access denied reply")
    i = first(lambda e: e["syscall"] in ("openat", "open") and e["args"].get("name", "").endswith("php_error.log"),
              i + 1, "open of php_error.log")
    first(lambda e: e["syscall"] == "write" and "Database error" in e.get("data", "")
          and "php_error.log" in e["args"].get("fd", ""), i + 1, "write of the log line to php_error.log")
    assert "< connect fd=" in text and "Access denied" in text


def test_window_from_rings(bpf_ready, containers, debian_image, denied_server, monkeypatch):
    """The ring program + SnapshotManager: the before half of the log line's write."""
    from shipper.sources.ebpf.cgroups import cgroup_id
    from shipper.config import load
    from shipper.core.container import Container
    from shipper.core.record import FILE, Record
    from shipper.snapshots.manager import SnapshotManager
    from shipper.snapshots.ring import RingProgram

    cfg = load({"LOGSHIP_SNAPSHOT_MESSAGE_REGEX": "Database error", "LOGSHIP_SNAPSHOT_WINDOW_AFTER_MS": "300"})
    mgr = SnapshotManager(cfg)
    program = RingProgram(mgr.geometry)
    try:
        mgr.attach(program)
        assert not program.attached  # nothing in scope: nothing attached
        stored: list[dict[str, Any]] = []

        async def put(doc: dict[str, Any], ts_ns: int) -> bool:
            stored.append(doc)
            return True

        monkeypatch.setattr(mgr.store, "put", put)
        monkeypatch.setattr(mgr.store, "put_template", lambda: asyncio.sleep(0))
        c = start_app(containers, debian_image, denied_server.port, 1.5)
        wait_until(lambda: cgroup_id(c.id), 10, what="the container's cgroup")
        c.reload()
        container = Container(c.id, c.name, debian_image, labels=dict(c.labels))
        mgr.scope.container_added(container)
        mgr.sync_scope()
        assert program.attached and mgr.processes_in_scope >= 1

        maps = mgr.maps
        assert maps is not None

        def writer() -> tuple[int, int] | None:  # the thread that wrote the line, and when
            for key in list(program.bpf["rings"].keys()):
                for sc in maps.read(key.value).entries:
                    if sc.nr == 1 and b"Database error" in sc.data:
                        return key.value, sc.ts_ns
            return None

        tid, ts = wait_until(writer, 30, what="the log line's write in a ring")
        record = Record(message=b"PHP Warning: Database error: Access denied", time_ns=ts, stream=FILE,
                        container=container, source="ebpf", pid=tid, tid=tid,
                        comm="python3", path="/var/log/app/php_error.log")
        sid = mgr.consider(record)
        assert sid and record.snapshot_id == sid

        async def finish() -> None:
            task = asyncio.create_task(mgr.run())
            deadline = time.monotonic() + 10
            while not stored and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(finish())
        assert stored, "no snapshot document was built"
        doc = stored[0]
        print(doc["text"])
        assert doc["logship.snapshot.id"] == sid and doc["process.thread.id"] == tid
        assert_scenario(doc, tid, denied_server.port)
        mgr.scope.container_removed(container)
        mgr.sync_scope()
        assert not program.attached  # the last container left: detached again
    finally:
        program.close()


@pytest.mark.slow
def test_snapshot_through_the_shipper(bpf_ready, containers, debian_image, denied_server, shipper, es, index_prefix):
    s = shipper(LOGSHIP_EBPF="on", LOGSHIP_SNAPSHOT_MESSAGE_REGEX="Database error", LOGSHIP_HTTP_ADDR="127.0.0.1:0")
    s.wait_for_log("probe attached", 240)  # compiles take tens of seconds on a loaded 2-core machine
    s.wait_for_log("syscall rings:", 240)  # the ring program is loaded (not attached: nothing in scope)
    c = start_app(containers, debian_image, denied_server.port, 3.0)
    twin = start_app(containers, debian_image, denied_server.port, 3.0, opt_in=False)
    query = {"bool": {"filter": [{"term": {"container.id": c.id}}, {"exists": {"field": "logship.snapshot.id"}}]}}
    # (dockerd with the vfs driver takes up to minutes to start a container on a loaded machine)
    lines = wait_until(lambda: search_all(es, f"{index_prefix}-*,-{index_prefix}-snapshots-*", query), 240,
                       what=f"the log line with a snapshot id\n{s.log()[-2000:]}")
    sid = lines[0]["logship"]["snapshot"]["id"] if "logship" in lines[0] else lines[0]["logship.snapshot.id"]
    snaps = wait_until(lambda: search_all(es, f"{index_prefix}-snapshots-*", {"ids": {"values": [sid]}}), 30,
                       what="the snapshot document")
    doc = snaps[0]
    assert_scenario(doc, doc["process.thread.id"], denied_server.port)
    out = subprocess.run([sys.executable, "-m", "shipper", "snapshot", sid], cwd=ROOT, env=s.env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Access denied" in out.stdout and " < connect " in out.stdout
    assert "syscall rings attached" in s.log()
    wait_until(lambda: any("Database error" in str(d) for d in search_all(
        es, f"{index_prefix}-*,-{index_prefix}-snapshots-*", {"term": {"container.id": twin.id}})), 240,
        what="the twin's line shipped (without a snapshot)")
    assert not search_all(es, f"{index_prefix}-snapshots-*", {"term": {"container.id": twin.id}}), \
        "a container not in scope got a snapshot"
