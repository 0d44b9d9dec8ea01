"""Which container, if any, the shipper itself runs in: its own lines must never be
shipped (each shipped line would make the shipper log, which it would ship...)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")
# Docker bind-mounts these three files from /var/lib/docker/containers/<id>/ into every
# container. Only these mount points count: on the host, mountinfo lists other
# containers' shm mounts, which must not be mistaken for our own.
_DOCKER_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def ids_in_cgroup(text: str) -> set[str]:
    """`/proc/self/cgroup`: `/docker/<id>` or `docker-<id>.scope` (host cgroup namespace)."""
    return set(_ID.findall(text))


def ids_in_mountinfo(text: str) -> set[str]:
    out: set[str] = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 4 and parts[4] in _DOCKER_FILES and "/containers/" in parts[3]:
            out.update(_ID.findall(parts[3]))
    return out


def own_container_ids(proc: Path = Path("/proc/self"), hostname: str = "",
                      dockerenv: Path = Path("/.dockerenv")) -> tuple[set[str], str]:
    """(full ids found, hostname prefix to match against container ids or ""). Outside a
    container both are empty: nothing to exclude."""
    ids: set[str] = set()
    for name, parse in (("cgroup", ids_in_cgroup), ("mountinfo", ids_in_mountinfo)):
        try:
            ids |= parse((proc / name).read_text(errors="replace"))
        except OSError:
            pass
    prefix = ""
    if not ids and dockerenv.exists() and re.fullmatch(r"[0-9a-f]{12,64}", hostname or ""):
        prefix = hostname  # Docker's default hostname is the id's first 12 characters
    return ids, prefix


def resolve(ids: set[str], prefix: str, known_ids: Iterable[str]) -> set[str]:
    """The shipper's container ids among those Docker knows."""
    if ids or not prefix:
        return ids
    return {c for c in known_ids if c.startswith(prefix)}
