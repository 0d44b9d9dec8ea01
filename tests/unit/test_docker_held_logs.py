"""held_logs.LogHolder on a directory laid out as dockerd's `<data-root>/containers`
(inotify is the real kernel's): a json-file is held from its creation and stays readable
after the container's directory is removed; bounds close what is not needed."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from shipper.core.metrics import METRICS
from shipper.sources.docker import held_logs
from shipper.sources.docker.held_logs import LogHolder
from tests.conftest import wait_until


def _cid(i: int) -> str:
    return f"{i:064x}"


def _create(root: Path, cid: str, *, env: list[str] | None = None, config: bool = True) -> Path:
    d = root / cid
    d.mkdir()
    if config:
        (d / "config.v2.json").write_text(json.dumps({"ID": cid, "Name": "/job", "Config": {
            "Image": "busybox", "Env": env or [], "Labels": {"team": "a"}}, "State": {"Pid": 0}}))
        (d / "hostconfig.json").write_text(json.dumps({"AutoRemove": True, "LogConfig": {"Type": "json-file"}}))
    return d


def _start(root: Path, holder: LogHolder, cid: str) -> None:
    """The container starts: dockerd creates its json-file; until it is held."""
    (_create(root, cid) / f"{cid}-json.log").write_bytes(b"")
    wait_until(lambda: cid in holder._held, 10, what="the file held")


@pytest.fixture
def holder(tmp_path):
    h = LogHolder(tmp_path)
    assert h.start()
    yield h
    h.stop()


def test_a_removed_containers_file_stays_readable_with_its_configuration(tmp_path, holder):
    cid = _cid(1)
    d = _create(tmp_path, cid, env=["LOGSPOUT=ignore"])
    with open(d / f"{cid}-json.log", "wb") as f:
        f.write(b'{"log":"one\\n","stream":"stdout","time":"2026-12-02T04:00:00.000000001Z"}\n')
    wait_until(lambda: len(holder) == 1, 10, what="the file held")
    shutil.rmtree(d)  # the auto-remove
    got = holder.take(cid)
    assert got is not None and b'"one\\n"' in got.file.read()
    assert got.config is not None and got.config["Id"] == cid and got.config["HostConfig"]["AutoRemove"]
    assert got.config["Config"]["Env"] == ["LOGSPOUT=ignore"]
    got.file.close()
    assert holder.take(cid) is None  # handed over once


def test_released_files_are_closed_and_other_files_are_not_held(tmp_path, holder):
    cid = _cid(2)
    d = _create(tmp_path, cid)
    (d / "resolv.conf").write_text("")  # not its log
    (tmp_path / "not-a-container").mkdir()
    (d / f"{cid}-json.log").write_bytes(b"")
    wait_until(lambda: len(holder) == 1, 10, what="the file held")
    held = holder._held[cid]
    holder.release(cid)
    assert held.file.closed and len(holder) == 0


def test_a_container_that_is_not_auto_remove_is_not_held(tmp_path, holder):
    keep, gone = _cid(4), _cid(5)
    d = _create(tmp_path, keep)
    (d / "hostconfig.json").write_text(json.dumps({"AutoRemove": False, "LogConfig": {"Type": "json-file"}}))
    (d / f"{keep}-json.log").write_bytes(b"")
    _start(tmp_path, holder, gone)  # (events are handled in order: the first one was looked at by now)
    assert keep not in holder._held


def test_unreadable_configuration_still_holds_the_file(tmp_path, holder):
    cid = _cid(3)
    d = _create(tmp_path, cid, config=False)
    (d / f"{cid}-json.log").write_bytes(b"")
    wait_until(lambda: len(holder) == 1, 10, what="the file held")
    got = holder.take(cid)
    assert got is not None and got.config is None
    got.file.close()


def test_bounds_close_the_oldest_and_the_expired(tmp_path, holder, monkeypatch):
    monkeypatch.setattr(held_logs, "MAX_HELD", 2)
    before = METRICS.get("logship_docker_held_unused_total", reason="over_bound")
    for i in range(10, 13):
        _start(tmp_path, holder, _cid(i))
    assert set(holder._held) == {_cid(11), _cid(12)}
    assert METRICS.get("logship_docker_held_unused_total", reason="over_bound") == before + 1
    for h in holder._held.values():
        h.since = time.monotonic() - held_logs.HOLD_S - 1
    _start(tmp_path, holder, _cid(13))
    assert set(holder._held) == {_cid(13)}


def test_an_unwatchable_directory_holds_nothing(tmp_path):
    assert not LogHolder(tmp_path / "missing").start()
