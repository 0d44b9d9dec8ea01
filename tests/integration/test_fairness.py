"""Fairness on the real dockerd, Elasticsearch and kernel: one container flooding as fast as it
can beside quiet ones writing 10 lines/s; the quiet ones lose nothing and nothing is stored
twice. The flooder's lines may wait (its Docker stream pauses, its log file is read at the
pipeline's pace) or be dropped, but only counted (logship_pipeline_dropped_total /
logship_ebpf_drops_total). No timing
assertions: the waits are bounds for a loaded 2-core machine. bench/fairness.py measures."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import count_docs, ebpf_notes, free_port, search_hits, wait_until

QUIET, LINES = 8, 150  # 15 s of 10 lines/s each
FLOOD = ("(while :; do echo 'flood file line GET /api/items/42 200 0.003'; done) >>/var/log/flood.log & "
         "while :; do echo 'flood stdout line GET /api/items/42 200 0.003'; done")
QUIET_CMD = ("i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo \"quiet $i\"; echo \"quiet file $i\" >>/var/log/q.log; "
             "sleep 0.1; done; sleep 3600")


def twice(es: Any, index: str, query: dict[str, Any]) -> list[Any]:
    """How the documents differ from one per line: the distinct messages, and the documents of
    each line stored more than once."""
    by_message: dict[str, list[dict[str, Any]]] = {}
    for h in search_hits(es, index, query):
        by_message.setdefault(h["_source"].get("message", ""), []).append(h)
    seen = [(m, len(hs)) for m, hs in sorted(by_message.items())]
    out: list[Any] = [("distinct messages", len(seen), "first", seen[:3], "last", seen[-3:])]
    for m, hs in sorted(by_message.items()):
        if len(hs) > 1 and len(out) < 6:
            out.append((m, [(h["_index"], h["_id"], h["_source"].get("log.offset"), h["_source"].get("@timestamp"),
                             h["_source"].get("process.pid", h["_source"].get("process"))) for h in hs]))
    return out


def metric_sum(text: str, name: str) -> float:
    return sum(float(m[1]) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def run_flood(es: Any, index_prefix: str, shipper: Any, containers: Any, busybox: str, ebpf: str) -> None:
    name = f"fair-{index_prefix}"
    addr = f"127.0.0.1:{free_port()}"
    s = shipper(LOGSHIP_DOCKER_INCLUDE=f"{name}-*", LOGSHIP_HTTP_ADDR=addr, LOGSHIP_EBPF=ebpf,
                LOGSHIP_SNAPSHOT_ENABLED="false", LOGSHIP_LOG_LEVEL="info")
    if ebpf == "on":
        s.wait_for_log("ebpf: probe attached", 300)
    flood = containers(busybox, ["sh", "-c", FLOOD], name=f"{name}-flood")
    logs = f"{index_prefix}-*"
    wait_until(lambda: count_docs(es, logs, {"term": {"container.id": flood.id}}) > 1000, 300,
               what="the flood flowing")
    quiet = [containers(busybox, ["sh", "-c", QUIET_CMD.format(n=LINES)], name=f"{name}-q{k}") for k in range(QUIET)]
    streams = ("stdout", "file") if ebpf == "on" else ("stdout",)

    def short() -> list[tuple[str, str, int]]:
        return [(c.name, st, n) for c in quiet for st in streams
                if (n := count_docs(es, logs, {"bool": {"filter": [{"term": {"container.id": c.id}},
                                                                   {"term": {"stream": st}}]}})) < LINES]
    # 15 s of writing; the rest is a bound for a loaded machine with a flood in it
    try:
        wait_until(lambda: not short(), 600, interval=2, what="every quiet line in Elasticsearch")
    except AssertionError:
        text = s.metrics()
        said = [ln for ln in s.log().splitlines() if "WARNING" in ln or "ERROR" in ln]
        raise AssertionError(f"short (container, stream, documents): {short()}; "
                             f"drops: {[ln for ln in text.splitlines() if 'drop' in ln and not ln.startswith('#')]}; "
                             "the shipper warned:\n" + "\n".join(said[-30:])) from None
    flood.kill()
    for c in quiet:
        for st in streams:
            q = {"bool": {"filter": [{"term": {"container.id": c.id}}, {"term": {"stream": st}}]}}
            n = count_docs(es, logs, q)
            assert n == LINES, f"{c.name} {st}: {n}, {twice(es, logs, q)}\n{ebpf_notes(s.metrics())}"  # all, once each
    text = s.metrics()
    assert metric_sum(text, "logship_lines_in_total") > QUIET * LINES * len(streams)
    dropped = metric_sum(text, "logship_pipeline_dropped_total")
    assert "fair-" not in "".join(re.findall(r'logship_pipeline_dropped_total\{[^}]*container="([^"]*q\d)"', text))
    if dropped:  # dropped lines are counted per container and said in the log
        assert "byte budget" in s.log()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_quiet_containers_lose_nothing_beside_a_docker_flood(es, index_prefix, shipper, containers, busybox):
    run_flood(es, index_prefix, shipper, containers, busybox, "off")


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_quiet_containers_lose_nothing_beside_a_stdout_and_file_flood(es, index_prefix, shipper, containers,
                                                                       busybox, bpf_ready):
    run_flood(es, index_prefix, shipper, containers, busybox, "on")
