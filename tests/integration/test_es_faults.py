"""The shipper through Elasticsearch faults, counted exactly: sequence-numbered lines,
0 lost, 0 duplicates. Tests that stop ES use a private one (tests/integration/private_es.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import count_docs, search_hits, wait_until


def sequence_numbers(es: Any, index: str, container_id: str) -> list[int]:
    """The number of every stored line of the container (duplicates kept)."""
    return [n for n, _ in stored_lines(es, index, container_id)]


def stored_lines(es: Any, index: str, container_id: str) -> list[tuple[int, str]]:
    """(number, where: index/_id/@timestamp) of every stored line of the container."""
    hits = search_hits(es, index, {"term": {"container.id": container_id}},
                       source=["message", "@timestamp", "stream"])
    return [(int(h["_source"]["message"].split()[-1]),
             f'{h["_index"]}/{h["_id"]} {h["_source"]["@timestamp"]} {h["_source"].get("stream")}') for h in hits]


def assert_exactly_once(es: Any, index: str, container_id: str, n: int) -> None:
    lines = stored_lines(es, index, container_id)
    nums = [k for k, _ in lines]
    missing = n - len(set(nums))
    dups = len(nums) - len(set(nums))
    seen: dict[int, list[str]] = {}
    for k, where in lines:
        seen.setdefault(k, []).append(where)
    detail = [w for ws in seen.values() if len(ws) > 1 for w in ws][:10]
    assert (missing, dups) == (0, 0), f"{missing} lost, {dups} duplicated of {n}: {detail}"
    assert set(nums) == set(range(1, n + 1))


def dockerd_kept(c: Any) -> str:
    """What dockerd's json-file holds of the container (the lines it kept, its last entry): under CPU
    load dockerd can drop the tail of a container that exits while it is behind copying its output
    (its log then says "stream copy error: ... file already closed" and ends inside a line), which no
    shipper can ship. Tells such a loss from the shipper's."""
    c.reload()
    try:
        data = Path(c.attrs["LogPath"]).read_bytes()
    except (OSError, KeyError) as exc:
        return f"json-file unreadable: {exc}"
    entries = data.splitlines()
    whole = sum(1 for e in entries if b'\\n","stream"' in e)
    return f"dockerd's json-file: {len(entries)} entries, {whole} whole lines; last: {entries[-1][:200]!r}" \
        if entries else "dockerd's json-file is empty"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# 500 lines every 0.1 s: ~5k lines/s, numbered 1..n
def writer(seconds: int) -> tuple[list[str], int]:
    rounds = seconds * 10
    return ["sh", "-c", f"for r in $(seq 0 {rounds - 1}); do seq $((r*500+1)) $((r*500+500)) | sed 's/^/seq /'; "
                        "sleep 0.1; done; sleep 3"], rounds * 500  # up until dockerd copied it all


@pytest.mark.slow
def test_es_down_60s_at_5k_lines_per_s(es_private, index_prefix, shipper, containers, busybox):
    from elasticsearch import Elasticsearch
    es = Elasticsearch(es_private.url, request_timeout=120)
    name = f"outage-{index_prefix}"  # only this container is shipped: others' tests must not load this one
    s = shipper(LOGSHIP_ES_URL=es_private.url, LOGSHIP_SPOOL_AFTER_S="2", LOGSHIP_DOCKER_INCLUDE=name)
    cmd, n = writer(80)
    c = containers(busybox, cmd, name=name)
    q = {"term": {"container.id": c.id}}
    try:
        wait_until(lambda: count_docs(es, f"{index_prefix}-*", q) > 20_000, 60, what="lines flowing")
        es_private.stop()
        down_at = time.monotonic()
        wait_until(lambda: "spooling to disk" in s.log(), 30, what="the shipper to spool")
        time.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
        es_private.start()
        c.wait(timeout=300)
        wait_until(lambda: count_docs(es, f"{index_prefix}-*", q) >= n, 300, interval=2, what=f"{n} lines")
        rss = peak_rss_mib(s.proc.pid)
        print(f"peak RSS of the shipper: {rss:.0f} MiB for {n} lines with a 60 s outage")
        time.sleep(2)  # anything late would be a duplicate
        assert_exactly_once(es, f"{index_prefix}-*", c.id, n)
        assert rss < 1024, f"peak RSS {rss:.0f} MiB"
    finally:
        if not es_private.healthy():
            es_private.start()
        es.options(ignore_status=404).indices.delete(index=f"{index_prefix}-*")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{index_prefix}-*")


@pytest.mark.slow
def test_shipper_sigkilled_mid_bulk(es, index_prefix, shipper, containers, busybox):
    name = f"sigkill-{index_prefix}"
    s = shipper(LOGSHIP_DOCKER_INCLUDE=name)
    n = 200_000
    # The sleep keeps the container up until dockerd has copied all it wrote: under CPU load dockerd drops
    # what is still in the pipe ~2 s after a container exits (its log: "stream copy error ... file already
    # closed"), a loss before any shipper sees the line (kept as dockerd_kept's report on a failure).
    c = containers(busybox, ["sh", "-c", f"seq 1 {n} | sed 's/^/seq /'; sleep 5"], name=name)
    q = {"term": {"container.id": c.id}}
    wait_until(lambda: count_docs(es, f"{index_prefix}-*", q) > 30_000, 120, interval=0.1, what="lines flowing")
    s.kill()  # SIGKILL: bulks in flight, acks and checkpoints not written
    killed_at = count_docs(es, f"{index_prefix}-*", q)
    assert killed_at < n, "the kill came too late to test anything"
    again = shipper(LOGSHIP_DOCKER_INCLUDE=name)
    c.wait(timeout=120)
    try:
        wait_until(lambda: count_docs(es, f"{index_prefix}-*", q) >= n, 180, interval=1, what=f"{n} lines")
    except AssertionError:
        print(again.log()[-4000:])  # what the restarted shipper said
        print(dockerd_kept(c))  # lines dockerd itself never wrote cannot be shipped
        assert_exactly_once(es, f"{index_prefix}-*", c.id, n)  # names the missing lines
        raise
    time.sleep(2)
    assert_exactly_once(es, f"{index_prefix}-*", c.id, n)
