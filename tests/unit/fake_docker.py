"""A canned Docker Engine API for the source's decisions: containers with a state, attach
and logs streams given as bytes, and logs answers (200 or a refusal) chosen per test."""

from __future__ import annotations

import asyncio
import struct
from typing import Any


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(payload)) + payload


class _Content:
    def __init__(self, chunks: list[bytes], hold: asyncio.Event | None = None) -> None:
        self.chunks = list(chunks)
        self.hold = hold  # the stream stays open (a live container) until this is set

    async def read(self, n: int = -1) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.hold is not None:
            await self.hold.wait()
        return b""


class _Response:
    def __init__(self, status: int, chunks: list[bytes] = (), hold: asyncio.Event | None = None,
                 text: str = "") -> None:
        self.status = status
        self.content = _Content(list(chunks), hold)
        self._text = text

    async def text(self) -> str:
        return self._text

    async def __aenter__(self) -> "_Response":
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


class FakeDocker:
    def __init__(self) -> None:
        self.inspects: dict[str, dict[str, Any]] = {}
        self.attach_chunks: dict[str, list[bytes]] = {}
        self.attach_end: dict[str, asyncio.Event] = {}
        self.logs_answers: dict[str, list[tuple[int, list[bytes]]]] = {}  # popped per logs call
        self.calls: list[tuple[str, str]] = []

    def container(self, cid: str, *, status: str = "created", auto_remove: bool = True, log_path: str = "",
                  tty: bool = False) -> None:
        self.inspects[cid] = {"Id": cid, "Name": "/" + cid[:6], "Config": {"Image": "img", "Tty": tty},
                              "State": {"Status": status, "Running": status == "running"},
                              "HostConfig": {"AutoRemove": auto_remove}, "LogPath": log_path}

    def set_status(self, cid: str, status: str) -> None:
        if status == "removed":
            self.inspects.pop(cid, None)
        else:
            st = self.inspects[cid]["State"]
            st["Status"], st["Running"] = status, status == "running"

    async def inspect(self, cid: str) -> dict[str, Any]:
        self.calls.append(("inspect", cid))
        if cid not in self.inspects:
            raise LookupError(cid)
        return self.inspects[cid]

    def attach(self, cid: str) -> _Response:
        self.calls.append(("attach", cid))
        hold = self.attach_end.setdefault(cid, asyncio.Event())
        return _Response(200, self.attach_chunks.get(cid, []), hold)

    def logs(self, cid: str, *, since_ns: int = 0, follow: bool = True) -> _Response:
        self.calls.append(("logs", cid))
        answers = self.logs_answers.get(cid) or [(404, [])]
        status, chunks = answers.pop(0) if len(answers) > 1 else answers[0]
        return _Response(status, chunks, text="refused")
