"""Exactly once across the failures users of logspout/Filebeat complain about: a shipper
killed mid-stream, a Docker daemon restart, a storm of short-lived containers."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import TEST_LABEL, count_docs, search_all, wait_until
from tests.integration.private_dockerd import IMAGE

pytestmark = pytest.mark.slow


def ids_query(ids: list[str]) -> dict:
    return {"terms": {"container.id": ids}}


def assert_no_dead_letters(es, prefix: str, query: dict) -> None:
    """Dead letters live in `<prefix>-deadletter-*`; the log indices are `<prefix>-2*`."""
    dead = search_all(es, f"{prefix}-deadletter-*", query)
    assert not dead, Counter(d.get("error.type") for d in dead)


@pytest.mark.slow
def test_sigkill_mid_stream_then_restart_every_line_once(es, index_prefix, shipper, containers, busybox):
    name = f"killed-{index_prefix}"  # only this container: on a shared engine others' floods would compete
    s = shipper(LOGSHIP_DOCKER_INCLUDE=name)
    # printed in four bursts, partly while the shipper is dead
    script = "; ".join(f"seq {a} {a + 24999} | sed 's/^/n /'; sleep 2" for a in (1, 25001, 50001, 75001))
    c = containers(busybox, ["sh", "-c", script], name=name)
    q = {"term": {"container.id": c.id}}
    wait_until(lambda: count_docs(es, f"{index_prefix}-2*", q) >= 20000, 120, what="a first part of the lines")
    s.kill()
    time.sleep(3)  # the container goes on printing while nobody ships
    shipper(LOGSHIP_DOCKER_INCLUDE=name)
    wait_until(lambda: count_docs(es, f"{index_prefix}-2*", q) >= 100000, 300, 1, what="100000 documents")
    c.wait(timeout=60)
    time.sleep(2)  # a duplicate would show up now
    assert_no_dead_letters(es, index_prefix, q)
    nums = Counter(int(d["message"].split()[1]) for d in search_all(es, f"{index_prefix}-2*", q))
    assert len(nums) == 100000 and set(nums) == set(range(1, 100001))
    assert sum(nums.values()) == 100000, [n for n, k in nums.items() if k > 1][:10]


@pytest.mark.slow
def test_a_running_rm_job_across_a_shipper_kill_and_its_removal_every_line_once(es, index_prefix, shipper,
                                                                              busybox):
    """`docker run --rm -d` printing numbered lines in blocks: the shipper is SIGKILLed mid-stream
    and started again while it runs (the job waits for that, not for a clock: a restart on a loaded
    machine takes seconds); the job then prints the rest, ends and is removed at once."""
    import subprocess
    name = f"rmjob-{index_prefix}"
    s = shipper(LOGSHIP_DOCKER_INCLUDE=name)
    blocks = [f"seq {a} {a + 9999} | sed 's/^/n /'; sleep 1" for a in range(1, 60001, 10000)]
    script = "; ".join(blocks[:3] + ["while [ ! -e /tmp/go ]; do sleep 0.1; done"] + blocks[3:])
    cid = subprocess.run(["docker", "run", "--rm", "-d", "--name", name, busybox, "sh", "-c", script],
                         capture_output=True, text=True, check=True, timeout=120).stdout.strip()
    q = {"term": {"container.id": cid}}
    wait_until(lambda: count_docs(es, f"{index_prefix}-2*", q) >= 10000, 120, what="a first part of the lines")
    s.kill()
    time.sleep(1.5)  # it goes on printing while nobody ships
    shipper(LOGSHIP_DOCKER_INCLUDE=name).wait_for_log(f"attached to {name}")
    subprocess.run(["docker", "exec", cid, "touch", "/tmp/go"], capture_output=True, check=True, timeout=60)
    subprocess.run(["docker", "wait", cid], capture_output=True, timeout=300)  # ended, and removed at once
    with contextlib.suppress(AssertionError):  # judged below, by what is missing
        wait_until(lambda: count_docs(es, f"{index_prefix}-2*", q) >= 60000, 300, 1, what="60000 documents")
    time.sleep(2)  # a duplicate would show up now
    nums = Counter(int(d["message"].split()[1]) for d in search_all(es, f"{index_prefix}-2*", q))
    missing = sorted(set(range(1, 60001)) - set(nums))
    assert not missing and sum(nums.values()) == 60000, (
        f"{len(missing)} missing (first {missing[:5]}), duplicated {[n for n, k in nums.items() if k > 1][:10]}")


@pytest.mark.slow
def test_200_short_lived_containers_give_20000_documents(es, index_prefix, shipper, docker_client, busybox):
    shipper()
    made: list = []

    def run(k: int):
        c = docker_client.containers.run(busybox, ["sh", "-c", f"seq 1 100 | sed 's/^/{k} /'"], detach=True,
                                         labels={TEST_LABEL: "1"}, network_mode="none")
        made.append(c)
        return c

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(run, range(200)))
        print(f"200 containers started in {time.monotonic() - started:.1f}s")
        ids = [c.id for c in made]
        wait_until(lambda: count_docs(es, f"{index_prefix}-2*", ids_query(ids)) >= 20000, 300, 1,
                   what="20000 documents")
        time.sleep(2)
        docs = search_all(es, f"{index_prefix}-2*", ids_query(ids))
        per = Counter((d["container.id"], d["message"]) for d in docs)
        assert len(docs) == 20000 and len(per) == 20000  # no gap, no duplicate
        by_container = Counter(d["container.id"] for d in docs)
        assert set(by_container.values()) == {100} and len(by_container) == 200
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda c: c.remove(force=True), made))


@pytest.mark.slow
def test_dockerd_restart_loses_nothing_the_json_file_holds(es, index_prefix, shipper, private_dockerd):
    d = private_dockerd
    client = d.client()
    s = shipper(LOGSHIP_DOCKER_HOST=d.host, LOGSHIP_DOCKER_RECONNECT_MAX_S="1")
    script = "i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo \"$(date +%s%N) $i\"; usleep 5000; done"
    cs = [client.containers.run(IMAGE, ["sh", "-c", script], detach=True, network_mode="none",
                                restart_policy={"Name": "always"}) for _ in range(3)]
    ids = [c.id for c in cs]
    wait_until(lambda: count_docs(es, f"{index_prefix}-2*", ids_query(ids)) >= 300, 60, what="lines before the kill")
    d.kill()
    time.sleep(2)
    d.start()  # restart policy: the containers run again, appending to their json-files
    time.sleep(4)
    for c in cs:
        c.reload()
        c.update(restart_policy={"Name": "no"})
    for c in cs:
        c.stop(timeout=1)
    expected: Counter[tuple[str, str]] = Counter()
    for c in cs:
        for line in c.logs(stdout=True, stderr=True).decode().splitlines():
            expected[(c.id, line)] += 1
    wait_until(lambda: count_docs(es, f"{index_prefix}-2*", ids_query(ids)) >= sum(expected.values()), 120, 1,
               what=f"{sum(expected.values())} documents")
    time.sleep(2)
    got = Counter((doc["container.id"], doc["message"]) for doc in search_all(es, f"{index_prefix}-2*", ids_query(ids)))
    assert got == expected
    assert "reconnecting" in s.log()
