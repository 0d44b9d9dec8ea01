"""Waiting with a timeout without `asyncio.wait_for` / `asyncio.timeout`.

On Python 3.11 (Debian 12's, which bcc needs) both can swallow a cancellation that
coincides with the inner wait finishing or timing out; a stage cancelled at shutdown
then never ends and `logship run` hangs on SIGTERM. `asyncio.wait` leaves the caller's
cancellation alone, so these helpers are built on it."""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


async def get_within(queue: asyncio.Queue[T], timeout: float | None) -> T | None:
    """The next item, or None when none came within `timeout` seconds."""
    if timeout is None:
        return await queue.get()
    try:
        return queue.get_nowait()
    except asyncio.QueueEmpty:
        pass
    getter = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait((getter,), timeout=timeout)
    except asyncio.CancelledError:
        getter.cancel()
        raise
    if getter.done():
        return getter.result()
    getter.cancel()  # a Queue.get cancelled before it returned leaves the item in the queue
    return None


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """True when `event` is set within `timeout` seconds."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()
