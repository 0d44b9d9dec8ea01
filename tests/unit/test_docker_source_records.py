"""The source's record making: seq within equal timestamps, per stream; acks drive checkpoints."""

from __future__ import annotations

import asyncio

from shipper.config import DockerSettings
from shipper.core.container import Container, ContainerRegistry
from shipper.core.record import Record
from shipper.sources.docker.source import DockerSource
from shipper.sources.docker.stream import Line
from tests.fakes import ack

C = Container(id="c" * 64, name="n", image="i")


def test_seq_numbers_equal_timestamps_per_stream_and_checkpoint_follows_acks(tmp_path):
    emitted: list[Record] = []

    async def emit(batch: list[Record]) -> None:
        emitted.extend(batch)

    async def scenario() -> DockerSource:
        src = DockerSource(DockerSettings(), emit, ContainerRegistry(), state_dir=tmp_path, self_container_ids=set())
        window = src.acks.window(C.id)
        seq_state: dict = {}
        await src._emit_lines(C, window, [Line("stdout", 5, b"a"), Line("stdout", 5, b"b"), Line("stderr", 5, b"e"),
                                          Line("stdout", 0, b"no stamp"), Line("stdout", 6, b"c")], seq_state)
        await src._emit_lines(C, window, [Line("stdout", 6, b"d")], seq_state)
        return src

    src = asyncio.run(scenario())
    assert [(r.message, r.time_ns, r.seq) for r in emitted] == [
        (b"a", 5, 0), (b"b", 5, 1), (b"e", 5, 0), (b"no stamp", 5, 2), (b"c", 6, 0), (b"d", 6, 1)]
    assert len({r.doc_id() for r in emitted}) == 6
    assert src.checkpoints is not None
    for r in reversed(emitted[1:]):
        ack(r)
    assert src.checkpoints.get(C.id) == 0  # the first line is not delivered yet
    ack(emitted[0])
    assert src.checkpoints.get(C.id) == 6
    src.close()
    from shipper.core.checkpoints import CheckpointStore
    assert CheckpointStore(tmp_path).get(C.id) == 6


def test_a_resume_whose_oldest_line_is_past_the_checkpoint_reports_a_gap(tmp_path):
    """Checkpoint at t=1000: the first line read at 1001 (the next one) is no gap; one at
    5e9+1000 is: an event document of the container with the time range, counted."""
    from shipper.core.metrics import METRICS
    from shipper.core.record import EVENT

    def resume(first_ts: int) -> list[Record]:
        out: list[Record] = []

        async def emit(batch: list[Record]) -> None:
            out.extend(batch)

        async def scenario() -> None:
            src = DockerSource(DockerSettings(), emit, ContainerRegistry(), state_dir=tmp_path,
                               self_container_ids=set())
            src._resumed_at[C.id] = 1000
            window = src.acks.window(C.id, 1000)
            await src._emit_lines(C, window, [Line("stdout", first_ts, b"a"), Line("stdout", first_ts + 1, b"b")], {})
            # only the first read after the resume is looked at
            await src._emit_lines(C, window, [Line("stdout", first_ts + 5_000_000_000, b"c")], {})
        asyncio.run(scenario())
        return out

    before = METRICS.total("logship_docker_gaps_total")
    assert [r.message for r in resume(1001)] == [b"a", b"b", b"c"]
    got = resume(5_000_001_000)
    assert METRICS.total("logship_docker_gaps_total") - before == 1
    gap = got[0]
    assert gap.stream == EVENT and gap.time_ns == 1001 and [r.message for r in got[1:]] == [b"a", b"b", b"c"]
    assert gap.fields["event.action"] == "log-gap" and gap.fields["logship.gap.seconds"] == 5.0
    assert gap.fields["logship.gap.start"] == "1970-01-01T00:00:00.000001000Z"
    assert C.name in gap.fields["message"]
