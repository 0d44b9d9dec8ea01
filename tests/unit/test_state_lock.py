"""One shipper per state dir."""

from __future__ import annotations

import os

import pytest

from shipper.config import ConfigError
from shipper.runtime.state_lock import lock_state_dir


def test_a_second_shipper_on_the_same_state_dir_is_refused_by_name(tmp_path):
    state = tmp_path / "state"
    fd = lock_state_dir(state)  # made if missing
    try:
        with pytest.raises(ConfigError, match=rf"another logship \(pid {os.getpid()}\) is running with it"):
            lock_state_dir(state)  # flock is per open file: refused within one process too
    finally:
        os.close(fd)
    os.close(lock_state_dir(state))  # free again once the holder is gone


def test_an_unusable_state_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="LOGSHIP_STATE_DIR=.*cannot use it"):
        lock_state_dir(blocker / "state")
