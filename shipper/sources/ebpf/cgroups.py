"""Container <-> cgroup id: bpf_get_current_cgroup_id() in the kernel is the inode
number of the container's cgroup v2 directory, which user space can stat."""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path(os.environ.get("LOGSHIP_CGROUP_ROOT_OVERRIDE", "/sys/fs/cgroup"))


def candidate_dirs(container_id: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Where the container's v2 cgroup lives, by host layout."""
    return [
        root / "unified" / "docker" / container_id,  # cgroup v1 + unified hierarchy (hybrid)
        root / "system.slice" / f"docker-{container_id}.scope",  # systemd driver, cgroup v2
        root / "docker" / container_id,  # cgroupfs driver, cgroup v2
        root / "unified" / "system.slice" / f"docker-{container_id}.scope",
    ]


def cgroup_id(container_id: str, root: Path = CGROUP_ROOT) -> int | None:
    """The container's cgroup id, or None when no layout matches (container gone)."""
    for d in candidate_dirs(container_id, root):
        try:
            return os.stat(d).st_ino
        except OSError:
            continue
    return None
