"""The json-file path against the real dockerd: one container read from its files and through
the API gives the same records (ids, bytes, flags), so checkpoints and exactly-once hold
whichever path a shipper takes; containers whose files are not usable go through the API."""

from __future__ import annotations

import asyncio
import dataclasses

from shipper.config import DockerSettings
from shipper.core.container import ContainerRegistry
from shipper.core.metrics import METRICS
from shipper.core.record import Record
from shipper.sources.docker.source import DockerSource
from tests.conftest import wait_until

SCRIPT = (
    "seq 1 3000 | sed 's/^/out /';"
    "seq 1 500 | sed 's/^/err \"quoted\" <b> & \\\\ /' >&2;"
    "printf 'x%.0s' $(seq 1 40000); echo;"  # three 16 KiB pieces, merged
    "printf 'caf\\303\\251 bad \\377 tab\\there\\n';"
    "sleep 3600"  # running: followed
)


def read_all(cid: str, tag: str, read_files: str, expect: int, log_config: dict | None = None) -> list[Record]:
    """Every record the source makes of the running container, from its first line."""
    got: list[Record] = []

    async def emit(batch: list[Record]) -> None:
        got.extend(batch)

    async def go() -> None:
        settings = dataclasses.replace(DockerSettings(), include_labels=(f"logship.jsonfile={tag}",),
                                       read_files=read_files)
        src = DockerSource(settings, emit, ContainerRegistry(), self_container_ids=set())
        task = asyncio.create_task(src.run())
        try:
            for _ in range(600):
                if len(got) >= expect or task.done():
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # anything extra would show now
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())
    return got


def shape(records: list[Record]) -> list[tuple]:
    return [(r.doc_id(), r.stream, r.time_ns, r.seq, r.message, r.truncated, r.partial_merged) for r in records]


def test_a_container_read_from_its_files_and_through_the_api_gives_the_same_records(containers, busybox):
    tag = "same-ids"
    c = containers(busybox, ["sh", "-c", SCRIPT], labels={"logship.jsonfile": tag})
    wait_until(lambda: c.logs().endswith(b"here\n"), 180, what="the container's lines")
    expect = 3000 + 500 + 2
    before = METRICS.get("logship_docker_streams_total", via="file")
    via_files = read_all(c.id, tag, "auto", expect)
    assert METRICS.get("logship_docker_streams_total", via="file") > before
    via_api = read_all(c.id, tag, "never", expect)
    assert len(via_api) == expect
    # per stream in order (stdout and stderr interleave differently on the two paths)
    for stream in ("stdout", "stderr"):
        assert shape([r for r in via_files if r.stream == stream]) == shape([r for r in via_api if r.stream == stream])
    assert any(r.partial_merged for r in via_files)


def test_another_log_driver_goes_through_the_api(containers, busybox):
    tag = "local-driver"
    c = containers(busybox, ["sh", "-c", "echo one; echo two; sleep 3600"], labels={"logship.jsonfile": tag},
                   log_config={"type": "local", "config": {}})
    wait_until(lambda: c.logs() == b"one\ntwo\n", 60, what="the container's lines")
    before = METRICS.get("logship_docker_streams_total", via="api")
    got = read_all(c.id, tag, "auto", 2)
    assert [r.message for r in got] == [b"one", b"two"]
    assert METRICS.get("logship_docker_streams_total", via="api") > before
