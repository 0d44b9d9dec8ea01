"""Checkpoint store: atomic, coalesced, survives a restart, tolerates a corrupt file."""

from __future__ import annotations

import asyncio
import json

from shipper.core.checkpoints import FILE_NAME, CheckpointStore
from shipper.core.metrics import METRICS


def test_saved_positions_come_back(tmp_path):
    s = CheckpointStore(tmp_path)
    assert s.alive_ns == 0 and s.get("a") == 0
    s.advance("a", 10)
    s.advance("a", 5)  # never backwards
    s.advance("b", 7)
    s.save()
    again = CheckpointStore(tmp_path)
    assert again.get("a") == 10 and again.get("b") == 7 and "b" in again and again.alive_ns > 0
    again.forget("b")
    again.save()
    assert CheckpointStore(tmp_path).ids() == {"a"}
    assert not (tmp_path / (FILE_NAME + ".tmp")).exists()


def test_state_dir_is_created(tmp_path):
    s = CheckpointStore(tmp_path / "deep" / "er")
    s.advance("a", 1)
    s.save()
    assert json.loads((tmp_path / "deep" / "er" / FILE_NAME).read_text())["containers"] == {"a": 1}


def test_corrupt_file_is_reported_and_ignored(tmp_path):
    (tmp_path / FILE_NAME).write_text("{not json")
    before = METRICS.get("logship_checkpoint_errors_total", reason="corrupt")
    s = CheckpointStore(tmp_path)
    assert s.ids() == set()
    assert METRICS.get("logship_checkpoint_errors_total", reason="corrupt") == before + 1


def test_writes_are_coalesced(tmp_path):
    async def scenario() -> int:
        s = CheckpointStore(tmp_path, interval_s=0.2)
        task = asyncio.create_task(s.run())
        before = METRICS.get("logship_checkpoint_writes_total")
        for i in range(1, 2001):  # a burst of acks
            s.advance("a", i)
            if i % 100 == 0:
                s.flush_soon()
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        task.cancel()
        writes = METRICS.get("logship_checkpoint_writes_total") - before
        assert CheckpointStore(tmp_path).get("a") == 2000
        return int(writes)

    writes = asyncio.run(scenario())
    assert 1 <= writes <= 4


def test_a_container_is_on_disk_before_its_first_line_is_read(tmp_path):
    """A shipper killed before its first periodic save must still know, after a restart,
    which containers it had started reading (else a stopped one is never caught up)."""
    store = CheckpointStore(tmp_path)
    assert store.register("c1") and not store.register("c1")

    async def both() -> None:  # two attaches in one loop iteration share one write
        await asyncio.gather(store.persist(), store.persist())
    asyncio.run(both())
    again = CheckpointStore(tmp_path)
    assert "c1" in again and again.get("c1") == 0
    assert again.alive_ns == 0  # persist() is no sign of life: see CheckpointStore.save


def test_fully_shipped_only_after_this_stop_was_read_to_its_end_and_held(tmp_path):
    s = CheckpointStore(tmp_path)
    s.register("c")
    assert not s.fully_shipped("c", 100)  # read by an earlier run, never to its end
    s.ended("c", finished_ns=100, last_line_ns=150)  # dockerd stamped lines after FinishedAt
    s.advance("c", 120)
    assert not s.fully_shipped("c", 100)  # lines up to 150 were read, only 120 is held
    s.advance("c", 150)
    s.save()
    again = CheckpointStore(tmp_path)
    assert again.fully_shipped("c", 100)
    assert not again.fully_shipped("c", 300)  # it ran and stopped again since
    assert not again.fully_shipped("c", 0)  # still exiting
    again.forget("c")
    assert not again.fully_shipped("c", 100)
