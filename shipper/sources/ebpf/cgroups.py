"""Container <-> cgroup id: bpf_get_current_cgroup_id() in the kernel is the inode
number of the container's cgroup v2 directory, which user space can stat."""

from __future__ import annotations

import os
import re
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


_LAYOUTS = re.compile(r"(?:.*/)?(?:docker/([0-9a-f]{64})|system\.slice/docker-([0-9a-f]{64})\.scope)")


def container_of_path(path: str) -> str | None:
    """The container id a cgroup v2 path (as the cgroup_mkdir tracepoint gives it, from the
    hierarchy's root) names in one of candidate_dirs' layouts; None for any other cgroup."""
    m = _LAYOUTS.fullmatch(path.rstrip("/"))
    return (m[1] or m[2]) if m else None
