"""Checkpoint store: atomic, coalesced, survives a restart, tolerates a corrupt file."""

from __future__ import annotations

import asyncio
import json

from shipper.checkpoints import FILE_NAME, CheckpointStore
from shipper.metrics import METRICS


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
