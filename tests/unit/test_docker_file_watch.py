"""inotify for json-file followers: a follower at the end of its file wakes when the file is
written, not at its next poll; bytes written before the watch was set are not waited for."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from shipper.sources.docker.file_watch import FileWatch


def test_a_write_wakes_the_follower_at_once(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    path.write_bytes(b"old\n")

    async def go() -> float:
        w = FileWatch()
        with open(path, "rb") as f:
            f.read()

            async def later() -> None:
                await asyncio.sleep(0.1)
                with open(path, "ab") as g:
                    g.write(b"new\n")
            writer = asyncio.create_task(later())
            t = time.monotonic()
            await w.written(f, 10)
            took = time.monotonic() - t
            await writer
            assert f.read() == b"new\n"
            return took
    assert asyncio.run(go()) < 5  # woken by the write (0.1 s), not the 10 s timeout


def test_bytes_already_there_and_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    path.write_bytes(b"a\n")

    async def go() -> tuple[float, float]:
        w = FileWatch()
        with open(path, "rb") as f:
            t = time.monotonic()
            await w.written(f, 10)  # unread bytes: no wait
            ready = time.monotonic() - t
            f.read()
            t = time.monotonic()
            await w.written(f, 0.2)  # nothing written: the timeout
            return ready, time.monotonic() - t
    ready, idle = asyncio.run(go())
    assert ready < 5 and 0.15 <= idle < 5
