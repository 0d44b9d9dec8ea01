"""Container metadata: what a record says about the container that wrote it,
and the decision whether a container is shipped at all."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

IGNORE_LABEL = "logship.ignore"


@dataclass(slots=True)
class Container:
    id: str
    name: str
    image: str
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    pid: int = 0  # host pid of the container's init, 0 when not running

    @classmethod
    def from_inspect(cls, data: dict[str, Any]) -> "Container":
        cfg = data.get("Config") or {}
        env = {}
        for item in cfg.get("Env") or ():
            key, _, value = item.partition("=")
            env[key] = value
        return cls(
            id=data["Id"],
            name=(data.get("Name") or "").lstrip("/"),
            image=cfg.get("Image") or data.get("Image", ""),
            labels=dict(cfg.get("Labels") or {}),
            env=env,
            tty=bool(cfg.get("Tty")),
            pid=int((data.get("State") or {}).get("Pid") or 0),
        )

    def ecs(self) -> dict[str, Any]:
        """The container.* fields of its records (computed once per container, not per line)."""
        out: dict[str, Any] = {"container.id": self.id, "container.name": self.name, "container.image.name": self.image}
        project = self.labels.get("com.docker.compose.project")
        if project:
            out["container.labels.com_docker_compose_project"] = project
            out["container.labels.com_docker_compose_service"] = self.labels.get("com.docker.compose.service", "")
        return out


def opt_out_reason(c: Container, *, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
                   exclude_label: str = "") -> str | None:
    """Why this container is not shipped, or None when it is."""
    if c.env.get("LOGSPOUT", "").lower() == "ignore":
        return "env LOGSPOUT=ignore"
    if c.labels.get(IGNORE_LABEL, "").lower() in ("true", "1", "yes"):
        return f"label {IGNORE_LABEL}=true"
    if exclude_label:
        key, sep, want = exclude_label.partition(":")
        if key in c.labels and (not sep or c.labels[key] == want):
            return f"label {exclude_label} (exclude_label)"
    if include and not any(fnmatch.fnmatchcase(c.name, g) for g in include):
        return "name matches no include glob"
    if any(fnmatch.fnmatchcase(c.name, g) for g in exclude):
        return "name matches an exclude glob"
    return None


class ContainerRegistry:
    """The containers being shipped, kept by the Docker source. Other parts (the eBPF
    source's cgroup filter, enrichment) subscribe instead of asking Docker again."""

    def __init__(self) -> None:
        self._by_id: dict[str, Container] = {}
        self._listeners: list[Any] = []

    def subscribe(self, listener: Any) -> None:
        """listener.container_added(c) / listener.container_removed(c); called synchronously
        on the event loop, so they must not block."""
        self._listeners.append(listener)
        for c in self._by_id.values():
            listener.container_added(c)

    def add(self, c: Container) -> None:
        self._by_id[c.id] = c
        for lst in self._listeners:
            lst.container_added(c)

    def remove(self, container_id: str) -> None:
        c = self._by_id.pop(container_id, None)
        if c is not None:
            for lst in self._listeners:
                lst.container_removed(c)

    def get(self, container_id: str) -> Container | None:
        return self._by_id.get(container_id)

    def __iter__(self) -> Any:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)
