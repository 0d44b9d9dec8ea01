"""A model of the exactly-once design across a SIGKILL, in any timing: lines (stdout and
stderr interleaved, equal timestamps allowed) are read by the real DockerSource from a
fake engine whose responses end early or are cut inside a frame at random points; a random
subset of what was emitted is acknowledged out of order (and Elasticsearch may hold more
than was acknowledged: a bulk in flight); the process dies; a second source resumes from
the checkpoint file. Every line must end up under exactly one `_id`, and no id may stand
for two lines."""

from __future__ import annotations

import asyncio
import random
from typing import Any, cast
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.config import DockerSettings
from shipper.core.container import ContainerRegistry
from shipper.core.record import Record
from shipper.core.timefmt import iso_ns
from shipper.sources.docker import source as source_mod
from shipper.sources.docker.source import DockerSource
from tests.fakes import ScriptedDockerAPI as FakeDocker
from tests.fakes import raw_frame as frame

CID = "m" * 64
BASE = 1_764_583_200_000_000_000
SKEW_NS = 900  # the most one stream's stamps lag the other's, in the model


class ModelDocker(FakeDocker):
    """logs(since) answers the lines at or after `since`, cut where `cuts` says."""

    def __init__(self, lines: list[tuple[int, int, bytes]], rng: random.Random) -> None:
        super().__init__()
        self.lines, self.rng = lines, rng
        self.cuts_left = 6  # per run: then the responses are whole (a real stream is not cut forever)
        self.container(CID, status="exited", auto_remove=False)

    def logs(self, cid: str, *, since_ns: int = 0, follow: bool = True):
        frames = [frame(k, iso_ns(t).encode() + b" " + d + b"\n") for k, t, d in self.lines if t >= since_ns]
        body = b"".join(frames)
        self.cuts_left -= 1
        if frames and self.cuts_left >= 0 and self.rng.random() < 0.5:
            # Cut inside a frame (what was seen under load). An early end exactly at a frame
            # boundary looks like the end of the log: only the final reads defend against it.
            i = self.rng.randrange(len(frames))
            start = len(b"".join(frames[:i]))
            body = body[:start + self.rng.randrange(1, len(frames[i]))]
        chunks, pos = [], 0
        while pos < len(body):
            step = self.rng.choice((7, 19, 64, 4096))
            chunks.append(body[pos:pos + step])
            pos += step
        self.answer = chunks
        self.logs_answers[cid] = [(200, chunks)]
        return super().logs(cid, since_ns=since_ns, follow=follow)


def read_all(docker: ModelDocker, state: Path, ack) -> list[Record]:
    out: list[Record] = []

    async def emit(batch: list[Record]) -> None:
        out.extend(batch)

    async def scenario() -> None:
        settings = DockerSettings(resume_overlap_s=SKEW_NS / 1e9 + 1e-9)
        src = DockerSource(settings, emit, ContainerRegistry(), state_dir=state,
                           self_container_ids=set())
        await asyncio.wait_for(src._ship(cast(Any, docker), CID, False), 60)
        ack(out)
        src.close()  # the checkpoint as the acks left it (a SIGKILL after the last periodic save)

    asyncio.run(scenario())
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.large_base_example,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40),
       st.randoms(use_true_random=False), st.floats(0, 1), st.floats(0, 1))
def test_every_line_under_exactly_one_id_across_a_kill(tmp_path_factory, monkeypatch, steps, rng, acked, extra):
    monkeypatch.setattr(source_mod, "FINAL_READ_DELAY_S", 0)  # the model needs no real time
    monkeypatch.setattr(source_mod, "TORN_RETRY_S", 0)
    # One clock for the log's order, each stream's stamp behind it by up to SKEW (less than
    # the overlap: the design's assumption), nondecreasing per stream; equal times happen.
    clock, last, lines = BASE, {1: 0, 2: 0}, []
    for i, (k, step, lag) in enumerate(steps):
        clock += step * 300
        last[k] = max(last[k], clock - lag * 300)
        lines.append((k, last[k], b"line %d" % i))
    docker = ModelDocker(lines, rng)
    state = tmp_path_factory.mktemp("state")
    stored: dict[str, bytes] = {}

    def first_run_acks(records: list[Record]) -> None:
        chosen = [r for r in records if rng.random() < acked]
        rng.shuffle(chosen)
        for r in chosen:  # out of order, each once
            stored[r.doc_id()] = r.message
            assert r.on_delivered is not None
            r.on_delivered(r)
        for r in records:  # in Elasticsearch but never acknowledged: a bulk in flight at the kill
            if r.doc_id() not in stored and rng.random() < extra:
                stored[r.doc_id()] = r.message

    first = read_all(docker, state, first_run_acks)

    def second_run_acks(records: list[Record]) -> None:
        for r in records:
            if stored.setdefault(r.doc_id(), r.message) != r.message:
                raise AssertionError(f"id {r.doc_id()} stands for two lines")
            assert r.on_delivered is not None
            r.on_delivered(r)

    docker.cuts_left = 6
    second = read_all(docker, state, second_run_acks)
    for r in first + second:
        assert stored.get(r.doc_id()) == r.message, "one id, two lines"
    messages = sorted(stored.values())
    assert messages == sorted(d for _, _, d in lines), "a line lost or stored twice"
