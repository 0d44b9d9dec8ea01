"""The pipeline's shutdown order, with the Docker source and the sink faked: on stop, sources
stop first; every line they read is still parsed, encoded and handed to the sink; then the
sink stops and closes (sending or spooling what it holds); the final checkpoints are written
last, once the sink has delivered what it could."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, cast

from shipper.config import load
from shipper.core.container import Container
from shipper.core.record import Record
from shipper.runtime.pipeline import Pipeline
from shipper.sinks.elasticsearch.sink import Item

C = Container(id="e" * 64, name="web", image="i")


class FakeDocker:
    def __init__(self, emit: Callable[[list[Record]], Any], steps: list[str], lines: int) -> None:
        self.emit, self.steps, self.lines = emit, steps, lines

    async def run(self) -> None:
        try:
            for i in range(0, self.lines, 10):
                await self.emit([Record(f"line {j}".encode(), 1_795_219_200_000_000_000 + j, "stdout", C)
                                 for j in range(i, min(i + 10, self.lines))])
            self.steps.append("docker.read")
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.steps.append("docker.cancelled")
            raise

    def close(self) -> None:
        self.steps.append("docker.close")


class FakeSink:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps
        self.got: list[Item] = []

    async def start(self) -> None:
        self.steps.append("sink.start")

    def encode(self, r: Record, doc: dict[str, Any]) -> bytes:
        return r.message

    def encode_batch(self, records: list[Record], docs: list[bytes]) -> list[bytes]:
        return [r.message for r in records]

    async def run(self, queue: asyncio.Queue[list[Item]], express: asyncio.Queue[list[Item]]) -> None:
        async def drain(q: asyncio.Queue[list[Item]]) -> None:
            while True:
                self.got += await q.get()
        try:
            await asyncio.gather(drain(queue), drain(express))
        except asyncio.CancelledError:
            self.steps.append("sink.cancelled")
            raise

    async def close(self) -> None:
        self.steps.append("sink.close")


def test_stop_flushes_what_was_read_then_stops_the_sink_then_checkpoints(tmp_path):
    config = load({"LOGSHIP_EBPF": "off", "LOGSHIP_HTTP_ADDR": "", "LOGSHIP_STATE_DIR": str(tmp_path),
                   "LOGSHIP_MEMORY_LIMIT_MB": "46"})
    steps: list[str] = []

    async def go() -> FakeSink:
        p = Pipeline(config)
        sink = FakeSink(steps)
        p.sink = cast(Any, sink)  # the pipeline's view of a sink: start, run, encode, close
        p.docker = cast(Any, FakeDocker(p.emit, steps, 95))  # and of a source: run, close
        stop = asyncio.Event()
        running = asyncio.create_task(p.run(stop))
        for _ in range(1000):
            if "docker.read" in steps:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(running, 30)
        return sink

    sink = asyncio.run(go())
    assert steps == ["sink.start", "docker.read", "docker.cancelled", "sink.cancelled", "sink.close", "docker.close"]
    assert sorted(d for _, d in sink.got) == sorted(f"line {j}".encode() for j in range(95))
