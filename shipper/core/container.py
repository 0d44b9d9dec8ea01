"""Container metadata (what a record says about the container that wrote it) and the
registry of the containers being shipped."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from shipper.core.timefmt import rfc3339_ns

COMPOSE_LABELS = ("com.docker.compose.project", "com.docker.compose.service")


@dataclass(slots=True)
class Container:
    id: str
    name: str
    image: str
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    pid: int = 0  # host pid of the container's init, 0 when not running
    label_keys: tuple[str, ...] = COMPOSE_LABELS  # which labels become container.labels.* fields
    finished_ns: int = 0  # State.FinishedAt of a stopped container, epoch ns (0 = running / never)
    running: bool = False
    log_driver: str = ""  # HostConfig.LogConfig.Type, e.g. json-file
    auto_remove: bool = False  # HostConfig.AutoRemove (`docker run --rm`): its log is gone once it exits
    status: str = ""  # State.Status: created, running, exited, removing, ...
    log_path: str = ""  # LogPath: the json-file dockerd writes (set once it started; "" for other drivers)

    @classmethod
    def from_inspect(cls, data: dict[str, Any], label_keys: tuple[str, ...] = COMPOSE_LABELS) -> "Container":
        cfg = data.get("Config") or {}
        state = data.get("State") or {}
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
            pid=int(state.get("Pid") or 0),
            label_keys=label_keys,
            finished_ns=rfc3339_ns(state.get("FinishedAt") or ""),
            running=bool(state.get("Running")),
            log_driver=((data.get("HostConfig") or {}).get("LogConfig") or {}).get("Type") or "",
            auto_remove=bool((data.get("HostConfig") or {}).get("AutoRemove")),
            status=str(state.get("Status") or ""),
            log_path=str(data.get("LogPath") or ""),
        )

    def ecs(self) -> dict[str, Any]:
        """The container.* fields of its records (computed once per container, not per line)."""
        out: dict[str, Any] = {"container.id": self.id, "container.name": self.name, "container.image.name": self.image}
        for key in sorted(self.labels):
            if any(fnmatch.fnmatchcase(key, g) for g in self.label_keys):
                out["container.labels." + key.replace(".", "_")] = self.labels[key]
        return out


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

    def decline(self, container_id: str) -> None:
        """Docker's source decided not to ship the container (filters, opt-out, the shipper's
        own): a listener holding what it did before it was reported (`container_declined`,
        optional) lets that go now instead of waiting out its hold."""
        for lst in self._listeners:
            declined = getattr(lst, "container_declined", None)
            if declined is not None:
                declined(container_id)

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
