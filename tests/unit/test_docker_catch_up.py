"""DockerSource's choices on canned engine answers (tests/fakes.FakeDockerAPI): which stopped
containers a restart catches up on and from where, and what Docker's event sequences do."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

from shipper.config import DockerSettings
from shipper.core.checkpoints import FILE_NAME
from shipper.core.container import ContainerRegistry
from shipper.core.record import Record
from shipper.core.timefmt import rfc3339_ns
from shipper.sources.docker.source import ALIVE_MARGIN_NS, DockerSource
from tests.fakes import FakeDockerAPI, docker_frames, inspect_body

CID, OWN = "a" * 64, "f" * 64
STOPPED_AT = "2026-11-21T00:00:10Z"
LOG = docker_frames(("stdout", "2026-11-21T00:00:01.000000001Z", b"one\n"),
                    ("stderr", "2026-11-21T00:00:02.000000002Z", b"two\n"))


def previous_run(state: Path, *, alive: str, containers: dict[str, int] | None = None,
                 ends: dict[str, list[int]] | None = None) -> None:
    """The checkpoint file an earlier shipper left behind."""
    state.mkdir(parents=True, exist_ok=True)
    (state / FILE_NAME).write_text(json.dumps({"alive_ns": rfc3339_ns(alive), "containers": containers or {},
                                               "ends": ends or {}}))


def source(state: Path, emitted: list[Record]) -> DockerSource:
    async def emit(batch: list[Record]) -> None:
        emitted.extend(batch)
    return DockerSource(DockerSettings(), emit, ContainerRegistry(), state_dir=state, self_container_ids={OWN})


def ship(src: DockerSource, api: FakeDockerAPI, cid: str = CID, follow: bool = False) -> None:
    async def go() -> None:
        await src._ship(cast(Any, api), cid, follow)
    asyncio.run(go())


def final_reads_only(calls: list[tuple[str, int, bool]]) -> bool:
    """After the catch-up read: the final read (from the newest line less the overlap, not
    following) that finds nothing new; a response can end early, so one is always made."""
    newest = rfc3339_ns("2026-11-21T00:00:02.000000002Z")
    return calls == [(CID, newest - int(DockerSettings().resume_overlap_s * 1e9), False)]


def stopped_api(**kw: Any) -> FakeDockerAPI:
    return FakeDockerAPI({CID: inspect_body(CID, "web", finished=STOPPED_AT, **kw)}, {CID: LOG})


def test_stopped_before_the_last_run_ended_and_never_listed_is_not_read(tmp_path):
    previous_run(tmp_path, alive="2026-11-21T00:05:00Z")  # alive long after the stop (beyond the margin)
    api = stopped_api()
    emitted: list[Record] = []
    ship(source(tmp_path, emitted), api)
    assert api.logs_calls == [] and emitted == []


def test_stopped_while_the_shipper_was_down_is_read_from_the_start(tmp_path):
    previous_run(tmp_path, alive="2026-11-21T00:00:05Z")  # died before the container stopped
    api = stopped_api()
    emitted: list[Record] = []
    src = source(tmp_path, emitted)
    ship(src, api)
    assert api.logs_calls[0] == (CID, 0, False) and final_reads_only(api.logs_calls[1:])
    assert [r.message for r in emitted] == [b"one", b"two"]
    assert src.checkpoints is not None and CID in src.checkpoints  # registered before its lines go out


def test_stopped_within_the_alive_margin_is_read(tmp_path):
    alive_ns = rfc3339_ns(STOPPED_AT) + ALIVE_MARGIN_NS - 1  # dockerd may still have been copying its output
    previous_run(tmp_path, alive="2026-11-21T00:00:00Z")
    data = json.loads((tmp_path / FILE_NAME).read_text()) | {"alive_ns": alive_ns}
    (tmp_path / FILE_NAME).write_text(json.dumps(data))
    api = stopped_api()
    ship(source(tmp_path, []), api)
    assert api.logs_calls[0] == (CID, 0, False) and final_reads_only(api.logs_calls[1:])


def test_read_to_the_end_of_this_very_stop_and_delivered_is_not_read_again(tmp_path):
    last = rfc3339_ns("2026-11-21T00:00:02.000000002Z")
    previous_run(tmp_path, alive="2026-11-21T00:05:00Z", containers={CID: last},
                 ends={CID: [rfc3339_ns(STOPPED_AT), last]})
    api = stopped_api()
    ship(source(tmp_path, []), api)
    assert api.logs_calls == []


def test_a_checkpoint_behind_the_end_resumes_just_before_it(tmp_path):
    ckpt = rfc3339_ns("2026-11-21T00:00:01.000000001Z")
    previous_run(tmp_path, alive="2026-11-21T00:05:00Z", containers={CID: ckpt},
                 ends={CID: [rfc3339_ns(STOPPED_AT), rfc3339_ns("2026-11-21T00:00:02.000000002Z")]})
    api = stopped_api()
    ship(source(tmp_path, []), api)
    assert api.logs_calls[0] == (CID, ckpt - int(DockerSettings().resume_overlap_s * 1e9), False)
    assert final_reads_only(api.logs_calls[1:])


def test_a_container_still_exiting_is_read(tmp_path):
    previous_run(tmp_path, alive="2026-11-21T00:05:00Z")
    api = FakeDockerAPI({CID: inspect_body(CID, "web")}, {CID: LOG})  # FinishedAt still the zero time
    ship(source(tmp_path, []), api)
    assert api.logs_calls[0] == (CID, 0, False) and final_reads_only(api.logs_calls[1:])


def test_opted_out_and_own_containers_are_never_read(tmp_path):
    api = FakeDockerAPI({CID: inspect_body(CID, "web", running=True, env=["LOGSPOUT=ignore"]),
                         OWN: inspect_body(OWN, "logship", running=True)})
    src = source(tmp_path, [])
    ship(src, api, CID, follow=True)
    ship(src, api, OWN, follow=True)
    assert api.logs_calls == []


def test_nothing_to_catch_up_on_without_an_earlier_run(tmp_path):
    src = source(tmp_path, [])
    assert not src._may_hold_unshipped(CID)
    previous_run(tmp_path / "again", alive="2026-11-21T00:05:00Z")
    assert source(tmp_path / "again", [])._may_hold_unshipped(CID)


def test_event_sequence_start_rename_destroy(tmp_path):
    api = FakeDockerAPI({CID: inspect_body(CID, "web", finished=STOPPED_AT)}, {CID: LOG})
    emitted: list[Record] = []
    src = source(tmp_path, emitted)

    async def go() -> None:
        fake = cast(Any, api)
        src._on_event(fake, {"Action": "start", "id": CID, "Actor": {"ID": CID}})
        src._on_event(fake, {"Action": "start", "id": CID, "Actor": {"ID": CID}})  # while streaming: no second
        assert len(src._streams) == 1 and CID in src._started_again
        for _ in range(500):  # the stream task inspects the container and registers it
            if src.containers.get(CID) is not None:
                break
            await asyncio.sleep(0.01)
        src._on_event(fake, {"Action": "rename", "id": CID, "Actor": {"ID": CID, "Attributes": {"name": "/shop"}}})
        renamed = src.containers.get(CID)
        assert renamed is not None and renamed.name == "shop"
        await asyncio.wait_for(src._streams[CID], 10)
        src._on_event(fake, {"Action": "destroy", "id": CID, "Actor": {"ID": CID}})

    asyncio.run(go())
    assert api.logs_calls[0] == (CID, 0, True)
    assert [r.message for r in emitted][:2] == [b"one", b"two"]
    assert src.checkpoints is not None and CID not in src.checkpoints and src.containers.get(CID) is None
