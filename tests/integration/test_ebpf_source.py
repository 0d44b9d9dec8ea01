"""The eBPF source against real containers: log files and /dev/log written inside a
container arrive in Elasticsearch with the in-container path and the right container."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from tests.conftest import count_docs, search_all, wait_until

EBPF = {"LOGSHIP_EBPF": "on"}


def _start(shipper: Any, **env: str) -> Any:
    s = shipper(**EBPF, **env)
    wait_until(lambda: "ebpf: probe attached" in s.log() or s.proc.poll() is not None, 60, what="the probe")
    assert s.proc.poll() is None, s.log()[-3000:]
    return s


def _ebpf_docs(es: Any, prefix: str, container_id: str, stream: str = "file") -> list[dict]:
    return search_all(es, f"{prefix}-*", {"bool": {"filter": [
        {"term": {"container.id": container_id}}, {"term": {"stream": stream}}]}})


def _count(es: Any, prefix: str, container_id: str, stream: str = "file") -> int:
    return count_docs(es, f"{prefix}-*", {"bool": {"filter": [
        {"term": {"container.id": container_id}}, {"term": {"stream": stream}}]}})


def _run(containers, image: str, script: str, **kw: Any) -> Any:
    """A container that writes after the shipper has registered it (and its cgroup): it
    sleeps first. No network: none of these containers needs one."""
    return containers(image, ["sh", "-c", "sleep 2; " + script + "; sleep 600"], network_mode="none", **kw)


def test_shell_appends_1000_lines_to_a_log_file(bpf_ready, es, index_prefix, shipper, containers, busybox):
    _start(shipper)
    c = _run(containers, busybox, (
        "i=1; while [ $i -le 1000 ]; do echo \"line $i\" >> /var/log/app.log; i=$((i+1)); done"))
    wait_until(lambda: _count(es, index_prefix, c.id) >= 1000, 60, what="1000 file lines")
    docs = _ebpf_docs(es, index_prefix, c.id)
    assert len(docs) == 1000
    assert sorted(int(d["message"].split()[1]) for d in docs) == list(range(1, 1001))
    assert {d["log.file.path"] for d in docs} == {"/var/log/app.log"}
    assert {d["container.name"] for d in docs} == {c.name}
    assert all(d["process.pid"] > 0 and d["process.name"] == "sh" for d in docs)


def test_one_line_in_three_pieces_is_one_record(bpf_ready, es, index_prefix, shipper, containers, busybox):
    _start(shipper)
    c = _run(containers, busybox, (
        "{ printf 'first-'; sleep 0.1; printf 'second-'; sleep 0.1; printf 'third\\n'; } >> /tmp/pieces.log"))
    wait_until(lambda: _count(es, index_prefix, c.id) >= 1, 30, what="the line")
    time.sleep(1.5)  # past the partial-line timeout: a split line would have shown up as more records
    docs = _ebpf_docs(es, index_prefix, c.id)
    assert [d["message"] for d in docs] == ["first-second-third"]
    assert docs[0]["log.file.path"] == "/tmp/pieces.log"


def test_ten_processes_append_concurrently(bpf_ready, es, index_prefix, shipper, containers, busybox):
    _start(shipper)
    writer = ("j=1; while [ $j -le 200 ]; do echo \"w$k-$j-padding-padding-padding\" >> /var/log/shared.log; "
              "j=$((j+1)); done")
    c = _run(containers, busybox, (
        "for k in 0 1 2 3 4 5 6 7 8 9; do (k=$k; " + writer + ") & done; wait"))
    wait_until(lambda: _count(es, index_prefix, c.id) >= 2000, 90, what="2000 lines")
    docs = _ebpf_docs(es, index_prefix, c.id)
    got = sorted(d["message"] for d in docs)
    want = sorted(f"w{k}-{j}-padding-padding-padding" for k in range(10) for j in range(1, 201))
    assert got == want  # every line, none garbled or merged
    assert len({d["process.pid"] for d in docs}) == 10


def test_syslog_to_dev_log(bpf_ready, es, index_prefix, shipper, containers, busybox):
    _start(shipper)
    # busybox syslogd makes the /dev/log datagram socket; its own output goes to a file
    # that is no log by the default path filter.
    c = _run(containers, busybox, (
        "syslogd -n -O /tmp/messages.txt & sleep 0.5; logger -t app -p local3.err 'disk almost full'"))
    wait_until(lambda: _count(es, index_prefix, c.id, "syslog") >= 1, 30, what="the syslog record")
    docs = _ebpf_docs(es, index_prefix, c.id, "syslog")
    assert len(docs) == 1
    d = docs[0]
    # local3 (19) * 8 + err (3) = 155: the datagram goes through the syslog parser as one message
    assert d["log.syslog.facility.code"] == 19 and d["log.syslog.severity.code"] == 3
    assert d["log.syslog.appname"] == "app" and d["message"] == "disk almost full"
    assert d["event.original"].startswith("<155>")
    assert d.get("process.name") == "logger"
    assert "log.file.path" not in d


def test_nothing_from_ignored_containers_gz_files_or_the_shipper(bpf_ready, es, index_prefix, shipper, containers,
                                                                  busybox):
    s = _start(shipper)
    ignored = _run(containers, busybox, "echo secret >> /var/log/app.log", environment={"LOGSPOUT": "ignore"})
    c = _run(containers, busybox, (
        "echo zipped >> /var/log/app.log.gz; echo plain >> /data.txt; echo marker >> /var/log/app.log"))
    wait_until(lambda: _count(es, index_prefix, c.id) >= 1, 30, what="the marker line")
    docs = search_all(es, f"{index_prefix}-*", {"term": {"stream": "file"}})
    assert [d["message"] for d in docs if d["container.id"] == c.id] == ["marker"]
    assert not [d for d in docs if d["container.id"] == ignored.id]
    # Neither the shipper's own log file nor dockerd's json-file writes come back as file lines.
    paths = {d["log.file.path"] for d in docs}
    assert str(s.log_path) not in paths
    assert not any(p.endswith("-json.log") for p in paths)
    # (other tests' containers may be shipped into this index too: judge by pid, not by name)
    dockerd = {int(x) for x in subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True,
                                              text=True).stdout.split()}
    assert not {d.get("process.pid") for d in docs} & (dockerd | {s.proc.pid})


def test_lines_written_before_docker_reports_the_container(bpf_ready, es, index_prefix, shipper, containers, busybox):
    _start(shipper)
    # No sleep: the lines are written (and the container is gone) before the shipper hears of it.
    c = containers(busybox,
                   ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo \"early $i\" >> /var/log/early.log; done"],
                   network_mode="none")
    wait_until(lambda: _count(es, index_prefix, c.id) >= 10, 30, what="the early lines")
    docs = _ebpf_docs(es, index_prefix, c.id)
    assert sorted(d["message"] for d in docs) == sorted(f"early {i}" for i in range(1, 11))
    assert {d["log.file.path"] for d in docs} == {"/var/log/early.log"}


def test_log_file_linked_to_stdout_is_shipped_once(bpf_ready, es, index_prefix, shipper, containers, busybox):
    """nginx's images link /var/log/nginx/access.log to /dev/stdout: the Docker source ships
    those lines; the eBPF source must not ship them a second time as a file."""
    _start(shipper)
    c = _run(containers, busybox, "mkdir -p /var/log/nginx; ln -sf /dev/stdout /var/log/nginx/access.log; "
                                  "echo 'GET / 200' >> /var/log/nginx/access.log; echo real >> /var/log/real.log")
    wait_until(lambda: _count(es, index_prefix, c.id) >= 1, 30, what="the real file line")
    wait_until(lambda: _count(es, index_prefix, c.id, "stdout") >= 1, 30, what="the stdout line")
    time.sleep(1.5)
    assert [d["message"] for d in _ebpf_docs(es, index_prefix, c.id)] == ["real"]
    assert [d["message"] for d in _ebpf_docs(es, index_prefix, c.id, "stdout")] == ["GET / 200"]
