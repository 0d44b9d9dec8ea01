"""One shipper per state dir: two would overwrite each other's checkpoints and spool."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from shipper.config import ConfigError

LOCK_NAME = "lock"


def lock_state_dir(state_dir: Path) -> int:
    """Takes `<state_dir>/lock` (flock, released by the kernel when the process ends, even
    on SIGKILL) and writes our pid in it; returns the fd to keep open. A clear error if
    another process holds it or the directory cannot be made."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"LOGSHIP_STATE_DIR={state_dir}: cannot use it: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(f"LOGSHIP_STATE_DIR={state_dir}: another logship (pid {holder}) is running with it; "
                          "stop it or give each shipper its own state dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
