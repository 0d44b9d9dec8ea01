"""In-container log files, every byte: writes longer than the probe's copy are read back
from the file, and per-file checkpoints carry a file across shipper restarts.
Real containers, the real kernel, the real Elasticsearch."""

from __future__ import annotations

import functools
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import count_docs, ebpf_notes, free_port, search_all, wait_until

EBPF = {"LOGSHIP_EBPF": "on"}

# 2,000 lines of 48 bytes through Python's buffered text writer (it flushes `buffering`
# bytes at a time: each write() syscall carries dozens of lines, cut mid-line).
BUFFERED = """
import sys
n, buffering = 2000, int(sys.argv[1])
with open("/var/log/app.log", "a", buffering=buffering) as f:
    for i in range(1, n + 1):
        f.write("line %06d " % i + "x" * 35 + "\\n")
"""

# A line every 50 ms, each appended by the shell (open, write, close), 1,400 in all.
PACED = "i=1; while [ $i -le 1400 ]; do echo \"paced $i\" >> /var/log/paced.log; i=$((i+1)); usleep 50000; done"


def _start(shipper: Any, **env: str) -> Any:
    s = shipper(**EBPF, **env)  # "following events" is said once the probe is attached
    assert "ebpf: probe attached" in s.log(), s.log()[-3000:]
    return s


def _docs(es: Any, prefix: str, container_id: str) -> list[dict]:
    return search_all(es, f"{prefix}-2*", {"bool": {"filter": [
        {"term": {"container.id": container_id}}, {"term": {"stream": "file"}}]}})


def _count(es: Any, prefix: str, container_id: str) -> int:
    return count_docs(es, f"{prefix}-2*", {"bool": {"filter": [
        {"term": {"container.id": container_id}}, {"term": {"stream": "file"}}]}})


@pytest.mark.parametrize("buffering", [8192, 65536])
def test_buffered_writer_every_line_whole_and_in_order(bpf_ready, es, index_prefix, shipper, containers,
                                                       debian_image, buffering):
    s = _start(shipper)
    c = containers(debian_image, ["sh", "-c", f"sleep 2; python3 -c '{BUFFERED}' {buffering}; sleep 600"],
                   network_mode="none")
    wait_until(lambda: _count(es, index_prefix, c.id) >= 2000, 90, what="2000 file lines")
    time.sleep(1.5)  # a duplicate or a piece would show up now
    docs = sorted(_docs(es, index_prefix, c.id), key=lambda d: d["log.offset"])
    want = ["line %06d " % i + "x" * 35 for i in range(1, 2001)]
    assert [d["message"] for d in docs] == want  # all, whole, in file order, once
    assert [d["log.offset"] for d in docs] == [48 * i for i in range(2000)]
    assert not [d for d in docs if d.get("logship.truncated")]
    assert {d["process.name"] for d in docs} == {"python3"}
    assert "truncated=" not in s.log()


def _each_once(es: Any, index_prefix: str, cid: str, n: int, timeout: float, context: Callable[[], Any]) -> list[Any]:
    """The container's documents once `n` arrived (or `timeout` passed), checked to hold lines
    1..n each exactly once; `context()` goes into the message of a failure."""
    try:
        wait_until(lambda: _count(es, index_prefix, cid) >= n, timeout, 1, what=f"{n} lines")
    except AssertionError:
        pass  # judged below, with what is missing
    time.sleep(2)  # a duplicate would show up now
    docs = _docs(es, index_prefix, cid)
    nums = Counter(int(d["message"].split()[1]) for d in docs)
    missing = sorted(set(range(1, n + 1)) - set(nums))
    assert not missing, (len(missing), missing[:20], missing[-10:], context())
    assert sum(nums.values()) == n, [k for k, m in nums.items() if m > 1][:10]
    return docs


def _restart_case(es: Any, index_prefix: str, shipper: Any, containers: Any, busybox: str, kill: bool) -> None:
    s = _start(shipper)
    c = containers(busybox, ["sh", "-c", "sleep 2; " + PACED + "; sleep 600"], network_mode="none")
    wait_until(lambda: _count(es, index_prefix, c.id) >= 200, 60, what="the first 200 lines")
    if kill:
        time.sleep(1.5)  # a checkpoint is written (at most once a second); lines go on after it
        s.kill()
    else:
        assert s.stop() == 0
    s2 = _start(shipper)
    wait_until(lambda: c.exec_run(["sh", "-c", "wc -l < /var/log/paced.log"]).output.strip() == b"1400", 300, 1,
               what="the writer's 1400 lines")
    _each_once(es, index_prefix, c.id, 1400, 60, lambda: s2.log()[-4000:])
    assert "caught up /var/log/paced.log" in s2.log(), s2.log()[-3000:]
    assert "gap in" not in s2.log()


def test_sigterm_restart_1400_of_1400_from_the_file(bpf_ready, es, index_prefix, shipper, containers, busybox):
    _restart_case(es, index_prefix, shipper, containers, busybox, kill=False)


def test_sigkill_restart_1400_of_1400_none_twice(bpf_ready, es, index_prefix, shipper, containers, busybox):
    _restart_case(es, index_prefix, shipper, containers, busybox, kill=True)


def test_health_says_starting_until_the_probe_is_attached(bpf_ready, es, shipper):
    import urllib.error
    import urllib.request
    s = shipper(start=False, LOGSHIP_EBPF="on", LOGSHIP_HTTP_ADDR="127.0.0.1:18931")
    s.start(wait_ready=False)

    def health() -> dict | None:
        try:
            with urllib.request.urlopen("http://127.0.0.1:18931/health", timeout=5) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())
        except OSError:
            return None

    first = wait_until(health, 60, 0.05, what="/health")
    s.wait_for_log("following events")
    assert first["stages"].get("ebpf-source") in ("starting", "running")
    seen = first["stages"].get("ebpf-source")
    after = wait_until(lambda: (h := health()) and h["stages"].get("ebpf-source") == "running" and h, 30,
                       what="ebpf-source running")
    assert after["stages"]["ebpf-source"] == "running"
    # The compile takes seconds: /health answered before it was done and said so.
    assert seen == "starting", first


# logrotate's two modes, done by the writing process itself between two lines (the same
# system calls logrotate makes): `create` renames the file and makes a new one, the writer
# reopens it (logging's WatchedFileHandler notices the new inode); `copytruncate` copies
# the file aside and truncates it under the writer's O_APPEND fd.
ROTATE_CREATE = """
import logging, logging.handlers, os, time
p = "/var/log/rot.log"
h = logging.handlers.WatchedFileHandler(p)
h.setFormatter(logging.Formatter("%(message)s"))
log = logging.getLogger("app"); log.addHandler(h); log.setLevel(logging.INFO)
for i in range(1, 3001):
    log.info("rot %d", i)
    if i % 1000 == 0 and i < 3000:
        if os.path.exists(p + ".1"):
            os.rename(p + ".1", p + ".2")
        os.rename(p, p + ".1")
        open(p, "a").close()
    time.sleep(0.001)
"""

ROTATE_COPYTRUNCATE = """
import os, shutil, time
p = "/var/log/rot.log"
f = open(p, "a", buffering=1)
for i in range(1, 3001):
    f.write("rot %d\\n" % i)
    if i % 1000 == 0 and i < 3000:
        shutil.copyfile(p, p + ".1")
        os.truncate(p, 0)
    time.sleep(0.001)
"""


@pytest.mark.parametrize("mode", ["create", "copytruncate"])
def test_logrotate_during_writing_every_line_once(bpf_ready, es, index_prefix, shipper, containers, debian_image,
                                                  mode):
    script = ROTATE_CREATE if mode == "create" else ROTATE_COPYTRUNCATE
    s = _start(shipper)
    c = containers(debian_image, ["sh", "-c", f"sleep 2; python3 -c '{script}'; sleep 600"], network_mode="none")
    docs = _each_once(es, index_prefix, c.id, 3000, 120,
                      lambda: c.exec_run(["sh", "-c", "wc -l /var/log/rot.log*"]).output)
    assert {d["log.file.path"] for d in docs} == {"/var/log/rot.log"}
    if mode == "copytruncate":  # each truncation starts a new generation of offsets from 0
        assert sorted(d["log.offset"] for d in docs if d["message"] in ("rot 1", "rot 1001", "rot 2001")) == [0, 0, 0]
    assert "truncated=" not in s.log()


def test_dev_log_bound_from_the_host_is_captured(bpf_ready, es, index_prefix, shipper, containers, busybox, tmp_path):
    """No syslog daemon in the container: the README's one-line fix, a /dev/log bound from
    the host (here a datagram socket the test keeps, standing in for the host's syslog)."""
    import socket
    path = tmp_path / "devlog"
    host_syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    host_syslog.bind(str(path))
    try:
        _start(shipper)
        c = containers(busybox, ["sh", "-c", "sleep 2; logger -t app -p local3.err 'via the host socket'; sleep 600"],
                       network_mode="none", volumes={str(path): {"bind": "/dev/log", "mode": "rw"}})
        q = {"bool": {"filter": [{"term": {"container.id": c.id}}, {"term": {"stream": "syslog"}}]}}
        wait_until(lambda: count_docs(es, f"{index_prefix}-2*", q) >= 1, 60, what="the syslog record")
        [d] = search_all(es, f"{index_prefix}-2*", q)
        assert d["message"] == "via the host socket" and d["log.syslog.appname"] == "app"
        assert host_syslog.recv(4096).endswith(b"via the host socket")  # the host got it too
    finally:
        host_syslog.close()


# A shell moving its stdout onto a log file and back (busybox sh, for a redirected compound
# command or builtin: open, fcntl(1, F_DUPFD) to save it, dup2 onto 1, the commands, dup2 back):
# first thousands of times a second, half the time redirected (the inner loops make no syscall),
# while the shipper looks at its fds for the first time (a container is scanned when Docker
# reports it); then 300 times a line to stdout and a line to the file. (A scan that reads fd 1
# redirected and acts after it moved back is hit by chance here; tests/unit/test_ebpf_fd_races.py
# goes through every such interleaving.)
SPIN = "j=0; while [ $j -lt 20 ]; do j=$((j+1)); done"
FLIP = ("i=0; while [ $i -lt {n} ]; do i=$((i+1)); {{ " + SPIN + "; }} >>/var/log/flip.log; " + SPIN + "; done; "
        "i=0; while [ $i -lt 300 ]; do i=$((i+1)); : >>/var/log/flip.log; echo \"out $i\"; "
        "echo \"file $i\" >>/var/log/flip.log; usleep 10000; done; sleep 600")


def test_stdout_moved_onto_a_log_file_and_back_stays_stdout(bpf_ready, es, index_prefix, shipper, containers,
                                                             busybox):
    n, k = 20000, 4
    s = _start(shipper, LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}")
    cs = [containers(busybox, ["sh", "-c", FLIP.format(n=n)], network_mode="none") for _ in range(k)]
    want = [f"file {i}" for i in range(1, 301)]

    def differences(cid: str) -> tuple[Any, ...]:
        got = Counter(d["message"] for d in _docs(es, index_prefix, cid))
        return (sorted(set(want) - set(got))[:10], sorted(m for m, n in got.items() if n > 1 or m not in want)[:10],
                ebpf_notes(s.metrics()))

    for c in cs:
        arrived = functools.partial(lambda cid: _count(es, index_prefix, cid) >= len(want), c.id)
        try:
            wait_until(arrived, 300, 1, what="the file lines")
        except AssertionError as e:
            raise AssertionError((str(e), c.name, "missing, extra, metrics:", differences(c.id))) from None
        time.sleep(2)  # a line shipped twice, or stdout taken for the file, would show up now
        assert sorted(d["message"] for d in _docs(es, index_prefix, c.id)) == sorted(want), differences(c.id)
        assert count_docs(es, f"{index_prefix}-2*", {"bool": {"filter": [
            {"term": {"container.id": c.id}}, {"term": {"stream": "stdout"}}]}}) == len(want)


# A Python parent holding its own log (fd 3) spawns children through subprocess: each child
# closes every fd above 2 (close_range), execs sh, and opens its own log, which is fd 3 again,
# within a millisecond or two; the shipper reads those events later (its poll is every 5 ms).
# The late close_range must not clear the child's new log (tests/unit/test_ebpf_fd_races.py):
# the lines a child writes after that (after its sleep) would not be captured.
SPAWNER = """
import subprocess
parent = open("/var/log/parent.log", "a", buffering=1)
for i in range(20):
    parent.write("spawning %d\\n" % i)
    subprocess.run(["sh", "-c", "exec 3>>/var/log/child%d.log; echo child %d line 1 >&3; sleep 0.05; j=1; "
                    "while [ $j -lt 10 ]; do j=$((j+1)); echo child %d line $j >&3; done" % (i, i, i)], check=True)
"""


def test_a_subprocess_childs_own_log_at_its_parents_fd(bpf_ready, es, index_prefix, shipper, containers,
                                                         debian_image):
    s = _start(shipper, LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}")
    c = containers(debian_image, ["sh", "-c", f"sleep 2; python3 -c '{SPAWNER}'; sleep 600"], network_mode="none")
    want = sorted([f"spawning {i}" for i in range(20)] + [f"child {i} line {j}" for i in range(20)
                                                          for j in range(1, 11)])
    try:
        wait_until(lambda: _count(es, index_prefix, c.id) >= len(want), 120, what="the parent's and children's lines")
    finally:
        got = Counter(d["message"] for d in _docs(es, index_prefix, c.id))
        missing = sorted(set(want) - set(got))
        assert not missing, f"{len(missing)} missing {missing[:10]}\n{ebpf_notes(s.metrics())}"
    time.sleep(1.5)
    assert sorted(d["message"] for d in _docs(es, index_prefix, c.id)) == want


def _jobs_lose_nothing(es: Any, index_prefix: str, s: Any, jobs: list[list[str]], lines: Callable[[int], int]) -> None:
    """Runs `docker run <args>` for each job, 10 at a time, each job's lines ending `job=<i> n=<j>`
    (j = 1..lines(i)) in a file; then every line of every job, once."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    def run(args: list[str]) -> int:
        return subprocess.run(["docker", "run", *args], timeout=120, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(run, jobs)) == [0] * len(jobs)
    n = len(jobs)
    want = sorted((i, j) for i in range(n) for j in range(1, lines(i) + 1))
    query = {"bool": {"filter": [{"match_phrase": {"message": index_prefix}}, {"term": {"stream": "file"}}]}}
    try:
        wait_until(lambda: count_docs(es, f"{index_prefix}-2*", query) >= len(want), 180, what=f"{len(want)} lines")
    finally:
        time.sleep(1.5)  # anything extra (a duplicate) would show now
        docs = search_all(es, f"{index_prefix}-2*", query)
        tags = [re.search(r"job=(\d+) n=(\d+)\W*$", d["message"]) for d in docs]
        got = sorted((int(m[1]), int(m[2])) for m in tags if m)
        per_job = Counter(i for i, _ in got)
        short = {i: per_job[i] for i in range(n) if per_job[i] != lines(i)}
        pieces = [d["message"][-80:] for d, m in zip(docs, tags, strict=True) if not m]
        twice = sum(Counter(got).values()) - len(set(got))
        assert not short and not pieces and not twice and len(got) == len(want), (
            f"lines per job where not all: {short}; {twice} twice; {len(pieces)} pieces {pieces[:3]}\n"
            f"{ebpf_notes(s.metrics())}")


def test_auto_remove_jobs_writing_log_files_lose_nothing(bpf_ready, es, index_prefix, shipper, busybox):
    """`docker run --rm` jobs that append to a log file and exit at once, 10 at a time: half
    append 5 lines with the shell (a write each), half write 3,000 access-log lines through
    awk's buffered stdio (blocks longer than the probe's copy: the rest is read from the file,
    which goes with the container). Every line of every job, once."""
    s = _start(shipper, LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}")
    big = 3000
    prog = ('BEGIN { for (i = 1; i <= %d; i++) printf "10.1.%%d.%%d - - [02/Dec/2026:10:00:00 +0000] \\"GET '
            '/api/v1/items/%%d HTTP/1.1\\" 200 %%d \\"-\\" \\"curl/8.5\\" %s job=%%d n=%%d\\n", i %% 255, i %% 7, '
            'i, 300 + i %% 900, J, i > "/var/log/job.log" }' % (big, index_prefix))
    jobs = [["--rm", "--network", "none", busybox,
             *(["awk", "-v", f"J={i}", prog] if i % 2 else
               ["sh", "-c", f"for j in 1 2 3 4 5; do echo {index_prefix} job={i} n=$j >> /var/log/job.log; done"])]
            for i in range(30)]
    _jobs_lose_nothing(es, index_prefix, s, jobs, lambda i: big if i % 2 else 5)


# A job as Python writes a log: the default buffered text file (8 KiB and more per write(),
# lines cut at any byte), realistic lines of 60-700 bytes, then exit at once.
APP_JOB = r"""
import json, sys
tag, job, lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open("/var/log/app.log", "a") as f:
    for n in range(1, lines + 1):
        k = n % 4
        if k == 0:
            f.write(json.dumps({"ts": "2026-12-03T10:00:%02d.%03dZ" % (n % 60, n % 1000), "level": "info",
                                "path": "/api/v1/orders/%d" % n, "status": 200,
                                "headers": {"user-agent": "Mozilla/5.0 (X11; Linux x86_64)" * (1 + n % 9)},
                                "msg": "request served %s job=%d n=%d" % (tag, job, n)}) + "\n")
        elif k == 1:
            f.write("10.0.%d.%d - - [03/Dec/2026:10:00:00 +0000] \"GET /static/app.%d.js HTTP/1.1\" 200 %d "
                    "\"-\" \"curl/8.5\" %s job=%d n=%d\n" % (n % 255, n % 7, n, 300 + n, tag, job, n))
        elif k == 2:
            f.write("time=2026-12-03T10:00:00Z level=warn took_ms=%d msg=\"slow query %s job=%d n=%d\"\n"
                    % (n % 900, tag, job, n))
        else:
            f.write("WARNING worker-%d retrying upstream connection (%s) %s job=%d n=%d\n"
                    % (n % 16, "connection reset by peer; " * (n % 5), tag, job, n))
"""


def test_python_jobs_exiting_at_once_lose_no_file_line(bpf_ready, es, index_prefix, shipper, debian_image):
    """Python jobs writing a log file the way Python does (8 KiB and more per write()) and
    exiting at once, half `--rm`, half kept: the whole of every write is captured, since the
    file cannot be read back once the writer is gone (and, for `--rm`, the container)."""
    s = _start(shipper, LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}")
    jobs = [[*(["--rm"] if i % 2 else []), "--network", "none", "--label", "logship.test=1", debian_image,
             "python3", "-c", APP_JOB, index_prefix, str(i), "3000"] for i in range(10)]
    try:
        _jobs_lose_nothing(es, index_prefix, s, jobs, lambda i: 3000)
    finally:
        import subprocess
        subprocess.run(["docker", "container", "prune", "-f", "--filter", "label=logship.test=1"],
                       capture_output=True, timeout=60)


def test_jobs_writing_past_their_budget_and_exiting_at_once_lose_no_file_line(bpf_ready, es, index_prefix, shipper,
                                                                             debian_image):
    """Four Python jobs (two `--rm`) each writing 60,000 lines (~13 MB) as fast as Python can
    and exiting at once: far past the kernel's per-container budget, so most write events are
    refused and the bytes must be read from the files, whose fds the shipper holds after the
    writers and (for `--rm`) the containers are gone."""
    s = _start(shipper, LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}")
    big = 60000
    jobs = [[*(["--rm"] if i % 2 else []), "--network", "none", "--label", "logship.test=1", debian_image,
             "python3", "-c", APP_JOB, index_prefix, str(i), str(big)] for i in range(4)]
    try:
        _jobs_lose_nothing(es, index_prefix, s, jobs, lambda i: big)
    finally:
        import subprocess
        subprocess.run(["docker", "container", "prune", "-f", "--filter", "label=logship.test=1"],
                       capture_output=True, timeout=60)
