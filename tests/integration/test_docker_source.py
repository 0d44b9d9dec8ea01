"""The Docker source against the real dockerd and Elasticsearch (log indices `<prefix>-2*`,
not the dead letters): streams, bad input,
filters, metadata, checkpoints across shipper restarts."""

from __future__ import annotations

import contextlib
import re

import asyncio
import time


from shipper.config import DockerSettings
from shipper.core.container import ContainerRegistry
from shipper.sources.docker.source import DockerSource

from tests.conftest import count_docs, search_all, wait_until
from tests.integration.test_fairness import free_port


def docs_of(es, prefix: str, cid: str) -> list[dict]:
    return search_all(es, f"{prefix}-2*", {"term": {"container.id": cid}})


def wait_docs(es, prefix: str, cid: str, n: int, timeout: float = 90) -> list[dict]:
    wait_until(lambda: count_docs(es, f"{prefix}-2*", {"term": {"container.id": cid}}) >= n, timeout,
               what=f"{n} documents of {cid[:12]}")
    time.sleep(0.5)  # anything extra (a duplicate) would show now
    return docs_of(es, prefix, cid)


def numbers(docs: list[dict], stream: str | None = None) -> list[int]:
    return sorted(int(d["message"].split()[-1]) for d in docs if stream is None or d["stream"] == stream)


def test_quick_exit_container_loses_nothing(es, index_prefix, shipper, containers, busybox):
    shipper()
    c = containers(busybox, ["sh", "-c", "echo a; echo b >&2; echo c"])  # exits within ms
    docs = wait_docs(es, index_prefix, c.id, 3)
    assert sorted((d["stream"], d["message"]) for d in docs) == [("stderr", "b"), ("stdout", "a"), ("stdout", "c")]


def test_long_lines_tty_and_bad_bytes(es, index_prefix, shipper, containers, busybox):
    shipper(LOGSHIP_DOCKER_MAX_LINE_BYTES="100000")
    script = (
        "printf 'x%.0s' $(seq 1 40000); echo;"  # 40000 bytes: three 16 KiB pieces, merged
        "head -c 5242880 /dev/zero | tr '\\0' y; echo;"  # 5 MiB, over the bound: cut and flagged
        "printf 'nul\\000byte\\n'; printf 'bad \\377\\376 utf8\\n'; printf 'cr\\rin\\n';"
        "seq 1 10000 | sed 's/^/burst /';"
        "printf 'no newline at the end'"
    )
    c = containers(busybox, ["sh", "-c", script])
    tty = containers(busybox, ["sh", "-c", "echo one; printf 'z%.0s' $(seq 1 20000); echo; printf last"], tty=True)
    docs = wait_docs(es, index_prefix, c.id, 10006, 120)
    assert len(docs) == 10006
    by_msg = {d["message"][:4]: d for d in docs}
    assert by_msg["xxxx"]["message"] == "x" * 40000 and by_msg["xxxx"]["logship.partial_merged"] is True
    assert "logship.truncated" not in by_msg["xxxx"]
    assert by_msg["yyyy"]["message"] == "y" * 100000 and by_msg["yyyy"]["logship.truncated"] is True
    assert by_msg["nul\x00"]["message"] == "nul\x00byte"
    assert by_msg["bad "]["message"] == "bad \ufffd\ufffd utf8"
    assert by_msg["cr\ri"]["message"] == "cr\rin"
    assert by_msg["no n"]["message"] == "no newline at the end"
    assert numbers([d for d in docs if d["message"].startswith("burst")]) == list(range(1, 10001))
    tdocs = wait_docs(es, index_prefix, tty.id, 3)
    assert sorted(d["message"][:5] for d in tdocs) == ["last", "one", "zzzzz"]
    assert [len(d["message"]) for d in tdocs if d["message"][0] == "z"] == [20000]


def test_filters_and_opt_outs(es, index_prefix, shipper, containers, busybox):
    s = shipper(LOGSHIP_DOCKER_EXCLUDE_LABEL="logspout.exclude:yes", LOGSHIP_DOCKER_EXCLUDE_LABELS="drop.me",
                LOGSHIP_DOCKER_EXCLUDE=f"skip-{index_prefix}*")
    cmd = ["sh", "-c", "echo hello"]
    dropped = [
        containers(busybox, cmd, labels={"logship.ignore": "true"}),
        containers(busybox, cmd, labels={"logspout.exclude": "yes"}),
        containers(busybox, cmd, labels={"drop.me": ""}),
        containers(busybox, cmd, name=f"skip-{index_prefix}"),
        containers(busybox, cmd, environment={"LOGSPOUT": "ignore"}),
    ]
    kept = containers(busybox, cmd, labels={"logspout.exclude": "no"})
    wait_docs(es, index_prefix, kept.id, 1)
    for c in dropped:
        c.wait(timeout=30)
    time.sleep(1)
    assert [count_docs(es, f"{index_prefix}-2*", {"term": {"container.id": c.id}}) for c in dropped] == [0] * 5
    assert s.log().count("not shipping") >= 5


def test_metadata_labels_and_rename(es, index_prefix, shipper, containers, busybox):
    shipper(LOGSHIP_DOCKER_LABELS="com.docker.compose.*,app.tier")
    labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web", "app.tier": "front",
              "secret": "s"}
    # "after" is printed only once the rename is done (a timed sleep raced it under load)
    c = containers(busybox,
                   ["sh", "-c", "echo before; until [ -e /tmp/go ]; do sleep 0.1; done; echo after; sleep 600"],
                   labels=labels, name=f"meta-{index_prefix}")
    wait_docs(es, index_prefix, c.id, 1)
    c.rename(f"renamed-{index_prefix}")
    c.exec_run(["touch", "/tmp/go"])
    docs = {d["message"]: d for d in wait_docs(es, index_prefix, c.id, 2)}
    d = docs["before"]
    assert d["container.labels.com_docker_compose_project"] == "shop"
    assert d["container.labels.com_docker_compose_service"] == "web"
    assert d["container.labels.app_tier"] == "front" and "container.labels.secret" not in d
    assert d["container.image.name"] == busybox and d["host.name"]
    assert d["container.name"] == f"meta-{index_prefix}"
    assert docs["after"]["container.name"] == f"renamed-{index_prefix}"


def test_restart_policy_and_restarted_container_each_line_once(es, index_prefix, shipper, containers, busybox):
    shipper()
    c = containers(busybox, ["sh", "-c", "for i in $(seq 1 50); do echo run $(date +%s%N) $i; done; sleep 1"],
                   restart_policy={"Name": "on-failure", "MaximumRetryCount": 0})
    c.wait(timeout=30)
    c.restart()  # a second run appends to the same log
    c.wait(timeout=30)
    docs = wait_docs(es, index_prefix, c.id, 100)
    assert len(docs) == 100 and len({d["message"] for d in docs}) == 100


def test_checkpoint_resume_after_kill_and_catch_up_of_stopped_containers(es, index_prefix, shipper, containers,
                                                                        busybox, tmp_path):
    s = shipper()
    a = containers(busybox, ["sh", "-c", "seq 1 500 | sed 's/^/a /'; sleep 4; seq 501 1000 | sed 's/^/a /'"])
    wait_docs(es, index_prefix, a.id, 500)
    state = tmp_path / "state" / "docker-checkpoints.json"
    wait_until(lambda: state.exists() and a.id in state.read_text(), 10, what="a's checkpoint")
    s.kill()  # no goodbye: the checkpoint on disk is all the next run has
    # while the shipper is down: a's second half, and a container that starts and stops
    b = containers(busybox, ["sh", "-c", "seq 1 300 | sed 's/^/b /'"])
    a.wait(timeout=30), b.wait(timeout=30)
    s2 = shipper()
    da, db = wait_docs(es, index_prefix, a.id, 1000), wait_docs(es, index_prefix, b.id, 300)
    assert numbers(da) == list(range(1, 1001)) and numbers(db) == list(range(1, 301))
    assert "catching up on" in s2.log()


def test_registry_add_precedes_first_line_with_init_pid(docker_client, containers, busybox, tmp_path):
    events: list[tuple[str, str, int]] = []

    class Listener:
        def container_added(self, c):
            events.append(("added", c.id, c.pid))

        def container_removed(self, c):
            events.append(("removed", c.id, c.pid))

    async def scenario() -> dict:
        registry = ContainerRegistry()
        registry.subscribe(Listener())

        async def emit(batch):
            for r in batch:
                events.append(("line", r.container.id, 0))

        src = DockerSource(DockerSettings(), emit, registry, state_dir=tmp_path)
        task = asyncio.create_task(src.run())
        await asyncio.wait_for(src.ready.wait(), 30)
        c = containers(busybox, ["sh", "-c", "echo first; sleep 2"])
        pid = docker_client.api.inspect_container(c.id)["State"]["Pid"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ("removed", c.id) not in [(e[0], e[1]) for e in events]:
            await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return {"id": c.id, "pid": pid}

    got = asyncio.run(scenario())
    mine = [e for e in events if e[1] == got["id"]]
    assert mine[0] == ("added", got["id"], got["pid"]) and got["pid"] > 0
    assert mine[1][0] == "line" and mine[-1][0] == "removed"


def _docker_run_rm(args: list[str]) -> int:
    import subprocess
    return subprocess.run(["docker", "run", "--rm", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=120).returncode


def test_auto_remove_containers_that_exit_at_once_lose_nothing(es, index_prefix, shipper, busybox):
    """`docker run --rm` of containers printing 5 numbered lines and exiting at once, 10 at a
    time (the CLI attaches before it starts them; one in ten runs detached, which does not):
    every line arrives, once."""
    from concurrent.futures import ThreadPoolExecutor
    s = shipper(LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}", LOGSHIP_LOG_LEVEL="debug")
    n = 100

    def run(i: int) -> int:
        script = f"for j in 1 2 3 4 5; do echo {index_prefix} {i} $j; done"
        return _docker_run_rm((["-d"] if i % 10 == 9 else []) + ["--name", f"{index_prefix}-rm-{i}", busybox,
                                                                  "sh", "-c", script])

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(run, range(n))) == [0] * n
    query = {"match_phrase": {"message": index_prefix}}
    with contextlib.suppress(AssertionError):  # judged below, by which lines are missing
        wait_until(lambda: count_docs(es, f"{index_prefix}-2*", query) >= 5 * n, 300, what=f"{5 * n} documents")
    time.sleep(1)
    got = sorted(tuple(int(x) for x in d["message"].split()[1:]) for d in search_all(es, f"{index_prefix}-2*", query))
    want = [(i, j) for i in range(n) for j in range(1, 6)]
    if got != want:
        short = sorted({i for i, _ in set(want) - set(got)})
        twice = sorted({i for i in {x for x in got if got.count(x) > 1}})
        said = [ln for ln in s.log().splitlines() if any(f"{index_prefix}-rm-{i} " in ln for i in short + twice)]
        raise AssertionError(f"{len(set(want) - set(got))} lines missing (containers {short}), duplicated: {twice}; "
                             "the shipper said:\n" + "\n".join(said[:60]))
    said, m = s.log(), s.metrics()
    files = re.search(r'^logship_docker_streams_total\{via="file"\} (\S+)$', m, re.M)
    print(f"paths: {said.count('lines from its json-file')} containers removed before their inspect from their "
          f"held json-file, {said.count('lines from its attach stream')} from their attach stream; "
          f"{files[1] if files else 0} file streams followed (the others' held files), the rest from their logs")
    assert "Traceback" not in s.log()


def test_auto_remove_jobs_writing_buffered_blocks_lose_nothing(es, index_prefix, shipper, busybox):
    """`docker run --rm` jobs that write the way programs do when stdout is not a terminal
    (awk's buffered blocks: many access-log lines per write()) and exit at once, 4 at a time:
    every line of every job, once."""
    from concurrent.futures import ThreadPoolExecutor
    shipper()
    jobs, lines = 8, 20_000
    prog = ('BEGIN { for (i = 1; i <= %d; i++) printf "10.1.%%d.%%d - - [02/Dec/2026:10:00:00 +0000] \\"GET '
            '/api/v1/items/%%d?page=2 HTTP/1.1\\" 200 %%d \\"-\\" \\"Mozilla/5.0 (X11; Linux x86_64)\\" %s '
            'job=%%d n=%%d\\n", i %% 255, i %% 7, i, 300 + i %% 900, J, i }' % (lines, index_prefix))

    def run(j: int) -> int:
        return _docker_run_rm([busybox, "awk", "-v", f"J={j}", prog])

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(run, range(jobs))) == [0] * jobs
    query = {"match_phrase": {"message": index_prefix}}
    with contextlib.suppress(AssertionError):  # judged below, by what is missing
        wait_until(lambda: count_docs(es, f"{index_prefix}-2*", query) >= jobs * lines, 300,
                   what=f"{jobs * lines} documents")
    time.sleep(1)  # anything extra (a duplicate) would show now
    got = [tuple(int(w.split("=")[1]) for w in d["message"].split()[-2:])
           for d in search_all(es, f"{index_prefix}-2*", query)]
    per_job = {j: sum(1 for g in got if g[0] == j) for j in range(jobs)}
    assert len(got) == len(set(got)) == jobs * lines, f"documents per job (of {lines}): {per_job}"


def test_one_unencodable_line_costs_no_other_line(es, index_prefix, shipper, containers, busybox):
    """A syslog line with a 20-digit pid among ordinary lines: every other line is delivered,
    that one shipped (repaired and flagged if its fields needed it; if Elasticsearch still refuses it,
    dead-lettered with the reason). The repair itself: tests/unit/test_enrich.py."""
    shipper()
    script = ("for i in $(seq 1 20); do echo line $i; done;"
              " echo '<13>Dec  1 10:00:00 host app[99999999999999999999]: big pid';"
              " for i in $(seq 21 40); do echo line $i; done")
    c = containers(busybox, ["sh", "-c", script])
    wait_until(lambda: count_docs(es, f"{index_prefix}-*", {"term": {"container.id": c.id}}) >= 41, 90,
               what="41 documents (logs and dead letters)")
    docs = docs_of(es, index_prefix, c.id)
    assert numbers([d for d in docs if d["message"].startswith("line")]) == list(range(1, 41))
    odd = [d for d in docs if "big pid" in d["message"]]
    dead = search_all(es, f"{index_prefix}-deadletter-*", {"term": {"container.id": c.id}})
    assert len(odd) + len(dead) == 1
    if odd:  # today's syslog parser keeps the pid as a string; a parser that made it an int is repaired
        assert odd[0].get("log.syslog.procid") == "99999999999999999999" or odd[0]["logship.repaired"] == ["big_int"]
    else:
        assert "big pid" in dead[0]["message"] and dead[0]["error.reason"]


def test_rotation_while_the_shipper_is_down_is_a_reported_gap(es, index_prefix, shipper, containers, busybox, tmp_path):
    """json-file with max-size 1k, max-file 2: the container writes while the shipper is
    stopped, far more than 2 KiB; the restarted shipper counts the gap and ships an event
    document naming the container and the time range."""
    s = shipper(LOGSHIP_HTTP_ADDR="127.0.0.1:0")
    c = containers(busybox, ["sh", "-c", "echo first; until [ -e /tmp/go ]; do sleep 0.1; done; "
                                         "for i in $(seq 1 400); do echo rotated away $i; done; "
                                         "echo after the gap; sleep 600"],
                   log_config={"type": "json-file", "config": {"max-size": "1k", "max-file": "2"}})
    wait_docs(es, index_prefix, c.id, 1)
    state = tmp_path / "state" / "docker-checkpoints.json"
    wait_until(lambda: state.exists() and c.id in state.read_text() and f'"{c.id}":0' not in state.read_text(), 30,
               what="the container's checkpoint")
    assert s.stop() == 0
    c.exec_run(["touch", "/tmp/go"])
    wait_until(lambda: b"after the gap" in c.logs(tail=1), 30, what="the container to write past the rotation")
    from tests.integration.test_tail import free_port
    s2 = shipper(LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}")
    query = {"bool": {"filter": [{"term": {"container.id": c.id}}, {"term": {"event.action": "log-gap"}}]}}
    wait_until(lambda: count_docs(es, f"{index_prefix}-2*", query) >= 1, 60, what="the gap event document")
    gap = search_all(es, f"{index_prefix}-2*", query)
    assert len(gap) == 1 and c.name in gap[0]["message"] and gap[0]["stream"] == "event"
    assert gap[0]["logship.gap.start"] < gap[0]["logship.gap.end"]
    assert "rotated by dockerd" in s2.log()
    after = {"bool": {"filter": [{"term": {"container.id": c.id}}, {"match_phrase": {"message": "after the gap"}}]}}
    wait_until(lambda: count_docs(es, f"{index_prefix}-2*", after) >= 1, 60, what="the line after the gap")
    assert int(float(next(line.split()[-1] for line in s2.metrics().splitlines()
                          if line.startswith("logship_docker_gaps_total")))) >= 1
