"""Short-lived (auto-remove) containers, on canned event sequences: exactly one path ships
each container's lines (its json-file if open here, else the logs endpoint, else what
attach held), and the json-file path gives the same ids as the logs endpoint."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, cast
from pathlib import Path

import pytest

from shipper.config import DockerSettings
from shipper.core.container import ContainerRegistry
from shipper.core.record import Record
from shipper.sources.docker.held_logs import Held
from shipper.sources.docker.source import DockerSource
from shipper.sources.docker.stream import AttachDecoder
from tests.fakes import ScriptedDockerAPI as FakeDocker
from tests.fakes import raw_frame as frame

CID = "a" * 64
T0 = "2026-12-01T10:00:00.000000001Z"
T1 = "2026-12-01T10:00:00.000000002Z"


def logs_stream(lines: list[tuple[int, str, bytes]]) -> bytes:
    return b"".join(frame(k, t.encode() + b" " + d) for k, t, d in lines)


def _json_file(path: Path) -> Path:
    path.write_text("".join(json.dumps({"log": d, "stream": s, "time": t}) + "\n"
                            for d, s, t in [("one\n", "stdout", T0), ("two\n", "stdout", T0), ("err\n", "stderr", T1)]))
    return path


def run(docker: FakeDocker, events: list, tmp_path: Path, held: Any = None, registry: ContainerRegistry | None = None,
        on_emit: Callable[[list[Record]], None] | None = None) -> tuple[list[Record], DockerSource]:
    """Feeds the events (("create"|"start"|"exit"|"removed"|"sleep", arg)) to a source; returns what it emitted."""
    out: list[Record] = []

    async def emit(batch: list[Record]) -> None:
        if on_emit is not None:
            on_emit(batch)
        out.extend(batch)

    async def scenario() -> DockerSource:
        src = DockerSource(DockerSettings(), emit, ContainerRegistry() if registry is None else registry,
                           state_dir=tmp_path, self_container_ids=set())
        src.held = held
        for what, arg in events:
            await asyncio.sleep(0.01)
            if what == "sleep":
                await asyncio.sleep(arg)
            elif what in ("create", "start"):
                src._on_event(cast(Any, docker), {"Action": what, "id": CID})
            elif what == "status":
                docker.set_status(CID, arg)
            elif what == "call":
                arg()
            elif what == "attach_end":
                docker.attach_end[CID].set()
        for _ in range(200):
            if all(t.done() for t in src._streams.values()):
                break
            await asyncio.sleep(0.05)
        await src._stop_streams()
        return src

    return out, asyncio.run(scenario())


def quick_exit(docker: FakeDocker, logs_status: int, log_path: str = "") -> list:
    """create -> start -> (exits, removed at once): the logs endpoint answers logs_status."""
    docker.container(CID, status="created", log_path=log_path)
    docker.attach_chunks[CID] = [frame(1, b"one\ntw"), frame(1, b"o\n"), frame(2, b"err\n")]
    docker.logs_answers[CID] = [(logs_status, [logs_stream([(1, T0, b"one\n"), (1, T0, b"two\n"),
                                                            (2, T1, b"err\n")])])]
    return [("create", None), ("sleep", 0.05), ("status", "running"), ("start", None), ("attach_end", None),
            ("status", "removing")]


def test_logs_endpoint_ships_when_it_opens_and_attach_is_dropped(tmp_path):
    """Also: the final read after the stop returns the same lines again; none is emitted twice."""
    docker = FakeDocker()
    out, _ = run(docker, quick_exit(docker, 200), tmp_path)
    assert [(r.stream, r.message, r.time_ns % 10) for r in out] == [("stdout", b"one", 1), ("stdout", b"two", 1),
                                                                    ("stderr", b"err", 2)]
    assert ("attach", CID) in docker.calls


def test_a_readable_json_file_is_the_path_with_the_logs_ids(tmp_path):
    """Nothing held (another data root), its LogPath readable: opened once it runs, read to its end."""
    path = _json_file(tmp_path / "c-json.log")
    docker = FakeDocker()
    via_file, _ = run(docker, quick_exit(docker, 409, str(path)), tmp_path / "a")
    assert ("logs", CID) not in docker.calls
    docker = FakeDocker()
    via_logs, _ = run(docker, quick_exit(docker, 200), tmp_path / "b")
    assert [r.message for r in via_file] == [b"one", b"two", b"err"]
    assert [r.doc_id() for r in via_file] == [r.doc_id() for r in via_logs]


def test_refused_logs_without_file_ship_what_attach_held(tmp_path):
    docker = FakeDocker()
    out, _ = run(docker, quick_exit(docker, 409, str(tmp_path / "gone.log")), tmp_path)
    assert [(r.stream, r.message) for r in out] == [("stdout", b"one"), ("stdout", b"two"), ("stderr", b"err")]
    assert len({r.doc_id() for r in out}) == 3
    assert all(r.on_delivered is None for r in out)  # never re-read: nothing to checkpoint


def test_removed_before_inspect_ships_what_attach_held(tmp_path):
    docker = FakeDocker()
    events = quick_exit(docker, 409)
    events[-1] = ("status", "removed")
    events.insert(2, ("status", "removed"))  # gone before the start is handled
    out, _ = run(docker, events[:3] + [("start", None), ("attach_end", None)], tmp_path)
    assert [r.message for r in out] == [b"one", b"two", b"err"]


class CannedHolder:
    """held_logs.LogHolder as the source sees it: a json-file held since the container's creation."""

    def __init__(self, path: Path, config: dict[str, Any] | None) -> None:
        self.held: dict[str, Held] = {CID: Held(open(path, "rb"), config)}
        self.released: list[str] = []

    def take(self, cid: str) -> Held | None:
        return self.held.pop(cid, None)

    def release(self, cid: str) -> None:
        self.released.append(cid)
        h = self.take(cid)
        if h is not None:
            h.file.close()


def test_a_late_attach_ships_the_file_held_since_creation_with_the_logs_ids(tmp_path):
    """Attach joined it already being removed (its create event came late) and its LogPath is
    gone: the file held since its creation has every line, with the ids the logs path gives."""
    docker = FakeDocker()
    docker.container(CID, status="removing", log_path=str(tmp_path / "gone.log"))
    docker.logs_answers[CID] = [(409, [])]
    holder = CannedHolder(_json_file(tmp_path / "held.log"), None)
    late, _ = run(docker, [("create", None), ("start", None), ("attach_end", None)], tmp_path / "a", holder)
    docker = FakeDocker()
    via_logs, _ = run(docker, quick_exit(docker, 200), tmp_path / "b")
    assert [r.message for r in late] == [b"one", b"two", b"err"]
    assert [r.doc_id() for r in late] == [r.doc_id() for r in via_logs]
    assert not holder.held


def test_removed_before_any_inspect_ships_its_held_file_as_its_configuration_allows(tmp_path):
    def config(env: list[str]) -> dict[str, Any]:
        return {"Id": CID, "Name": "/job", "Config": {"Image": "img", "Env": env}, "State": {},
                "HostConfig": {"AutoRemove": True, "LogConfig": {"Type": "json-file"}}}

    events = [("create", None), ("start", None), ("attach_end", None)]
    path = _json_file(tmp_path / "held.log")
    out, _ = run(FakeDocker(), events, tmp_path / "a", CannedHolder(path, config([])))
    assert [(r.message, r.container.name) for r in out] == [(b"one", "job"), (b"two", "job"), (b"err", "job")]
    ignored, _ = run(FakeDocker(), events, tmp_path / "b", CannedHolder(path, config(["LOGSPOUT=ignore"])))
    assert ignored == []


def test_the_held_file_ships_even_where_the_logs_endpoint_would_open_empty(tmp_path):
    """Seen in a full `make test`: attach joined a --rm container running, the logs endpoint
    opened and ended empty, and the held file was released unread. The file is the path."""
    docker = FakeDocker()
    events = quick_exit(docker, 200)
    docker.logs_answers[CID] = [(200, [])] * 60
    holder = CannedHolder(_json_file(tmp_path / "held.log"), None)
    out, _ = run(docker, events, tmp_path / "a", holder)
    assert [r.message for r in out] == [b"one", b"two", b"err"] and not holder.held
    assert ("logs", CID) not in docker.calls
    docker = FakeDocker()
    via_logs, _ = run(docker, quick_exit(docker, 200), tmp_path / "b")
    assert [r.doc_id() for r in out] == [r.doc_id() for r in via_logs]


def test_a_running_auto_remove_container_is_followed_in_its_held_file_until_it_is_gone(tmp_path):
    """`docker run --rm -d` of a server: the held file is followed while it runs (lines
    written after the start arrive), and read to its end once the container is removed."""
    path = _json_file(tmp_path / "held.log")
    docker = FakeDocker()
    docker.container(CID, status="created", log_path=str(path))
    holder = CannedHolder(path, None)

    def more() -> None:
        with open(path, "a") as f:
            f.write(json.dumps({"log": "later\n", "stream": "stdout", "time": "2026-12-01T10:00:01Z"}) + "\n")
        path.unlink()  # removed: only the held descriptor still reads it
    events = [("create", None), ("sleep", 0.05), ("status", "running"), ("start", None), ("sleep", 0.3),
              ("call", more), ("sleep", 0.3), ("status", "removed")]
    out, _ = run(docker, events, tmp_path / "a", holder)
    assert [r.message for r in out] == [b"one", b"two", b"err", b"later"]
    assert ("logs", CID) not in docker.calls
    # its attach stream closed once the file opened: an attach nobody reads blocks the container's writes
    assert docker.attached[CID].closed


def test_not_auto_remove_drops_attach_and_ships_through_logs_after_start(tmp_path):
    docker = FakeDocker()
    docker.container(CID, status="created", auto_remove=False)
    docker.attach_chunks[CID] = [frame(1, b"ignored\n")]
    docker.logs_answers[CID] = [(200, [logs_stream([(1, T0, b"one\n")])])]
    out, _ = run(docker, [("create", None), ("sleep", 0.1), ("status", "running"), ("start", None),
                          ("sleep", 0.1), ("status", "exited")], tmp_path)
    assert [r.message for r in out] == [b"one"]


def test_a_running_auto_remove_container_found_after_a_restart_is_read_from_its_file(tmp_path):
    """The shipper restarted while a `--rm -d` container ran (nothing held: its creation was
    before): its file is opened when its log is, and read to its end after the removal."""
    path = _json_file(tmp_path / "c-json.log")
    docker = FakeDocker()
    docker.container(CID, status="running", log_path=str(path))

    def more() -> None:
        with open(path, "a") as f:
            f.write(json.dumps({"log": "last\n", "stream": "stdout", "time": "2026-12-01T10:00:01Z"}) + "\n")
        path.unlink()
    out, _ = run(docker, [("start", None), ("sleep", 0.3), ("call", more), ("status", "removed")], tmp_path / "a")
    assert [r.message for r in out] == [b"one", b"two", b"err", b"last"]
    assert ("logs", CID) not in docker.calls


def test_attach_decoder_splits_writes_into_lines_per_stream():
    d = AttachDecoder(max_bytes=5)
    raw = frame(1, b"ab\ncd") + frame(2, b"x\n") + frame(1, b"e\n1234567\n") + frame(1, b"tail")
    got = d.feed(raw[:7]) + d.feed(raw[7:])
    assert got == [("stdout", b"ab", False), ("stderr", b"x", False), ("stdout", b"cde", False),
                   ("stdout", b"12345", True)]
    assert d.flush() == [("stdout", b"tail", False)] and d.truncated_bytes == 2
    tty = AttachDecoder(tty=True)
    assert tty.feed(b"a\r\nb") == [("stdout", b"a", False)] and tty.flush() == [("stdout", b"b", False)]


def test_a_logs_response_cut_mid_frame_is_read_again_not_taken_for_the_end(tmp_path):
    """Seen under CPU load: a catch-up read of a stopped container ended inside a frame; the
    torn piece became a line of its own (a duplicate with another id) and the rest of the
    log was never read. Now the cut is a torn stream: read again from the newest line, and
    the final reads go on until one brings nothing new."""
    t = [f"2026-12-01T10:00:00.00000000{i}Z" for i in range(1, 8)]
    lines = [(1, t[i], b"seq %d\n" % (i + 1)) for i in range(7)]
    cut = logs_stream(lines[:3]) + logs_stream(lines[3:4])[:12]  # line 4's frame cut after its header
    docker = FakeDocker()
    docker.container(CID, status="exited", auto_remove=False)
    docker.logs_answers[CID] = [(200, [cut]), (200, [logs_stream(lines[2:5])]),  # re-read: ends early, at a frame
                                (200, [logs_stream(lines[4:])])]  # the rest; then again the same: nothing new
    out: list[Record] = []

    async def emit(batch: list[Record]) -> None:
        out.extend(batch)

    async def scenario() -> None:
        src = DockerSource(DockerSettings(), emit, ContainerRegistry(), state_dir=tmp_path, self_container_ids=set())
        await asyncio.wait_for(src._ship(cast(Any, docker), CID, False), 30)

    asyncio.run(scenario())
    assert [r.message for r in out] == [b"seq %d" % i for i in range(1, 8)]
    assert len({r.doc_id() for r in out}) == 7



@pytest.mark.parametrize("path", ["attach", "held file"])
def test_a_container_removed_before_its_logs_were_read_is_reported_while_its_lines_ship(tmp_path, path):
    """Its file lines are held by the eBPF source until the registry reports it (a job that
    appends to a log file and exits at once lost all of them, released as never reported):
    in the registry while its lines from attach or from its held json-file are emitted, gone after."""
    docker, registry = FakeDocker(), ContainerRegistry()
    if path == "attach":
        held, events = None, quick_exit(docker, 409, str(tmp_path / "gone.log"))
    else:
        docker.container(CID, status="removing", log_path=str(tmp_path / "gone.log"))
        docker.logs_answers[CID] = [(409, [])]
        held = CannedHolder(_json_file(tmp_path / "held.log"), None)
        events = [("create", None), ("start", None), ("attach_end", None)]
    reported: list[bool] = []
    out, _ = run(docker, events, tmp_path / "state", held, registry,
                 on_emit=lambda batch: reported.extend(registry.get(CID) is not None for _ in batch))
    assert [r.message for r in out] == [b"one", b"two", b"err"]
    assert reported == [True] * 3 and registry.get(CID) is None
