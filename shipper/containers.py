"""Container metadata: what a record says about the container that wrote it,
and the decision whether a container is shipped at all."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from shipper.sources.docker_stream import parse_docker_time

IGNORE_LABEL = "logship.ignore"
COMPOSE_LABELS = ("com.docker.compose.project", "com.docker.compose.service")


def rfc3339_ns(text: str) -> int:
    """Docker's API times (`2026-11-20T23:34:59.049677385Z`) -> epoch ns; 0 for the zero time."""
    if not text or text.startswith("0001-"):
        return 0

    try:
        return parse_docker_time(text.encode())
    except ValueError:
        return 0


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
        )

    def ecs(self) -> dict[str, Any]:
        """The container.* fields of its records (computed once per container, not per line)."""
        out: dict[str, Any] = {"container.id": self.id, "container.name": self.name, "container.image.name": self.image}
        for key in sorted(self.labels):
            if any(fnmatch.fnmatchcase(key, g) for g in self.label_keys):
                out["container.labels." + key.replace(".", "_")] = self.labels[key]
        return out


def _label_matches(labels: dict[str, str], spec: str) -> bool:
    """`key` (present) or `key=value-glob`."""
    key, sep, want = spec.partition("=")
    return key in labels and (not sep or fnmatch.fnmatchcase(labels[key], want))


@dataclass(frozen=True, slots=True)
class Filters:
    """Which containers are shipped: opt-outs first, then the include/exclude globs."""
    include: tuple[str, ...] = ()  # name globs
    exclude: tuple[str, ...] = ()
    include_image: tuple[str, ...] = ()
    exclude_image: tuple[str, ...] = ()
    include_labels: tuple[str, ...] = ()  # `key` or `key=value-glob`
    exclude_labels: tuple[str, ...] = ()
    exclude_label: str = ""  # logspout's EXCLUDE_LABEL: `key` or `key:value`

    def reason(self, c: Container) -> str | None:
        """Why this container is not shipped, or None when it is."""
        if c.env.get("LOGSPOUT", "").lower() == "ignore":
            return "env LOGSPOUT=ignore"
        if c.labels.get(IGNORE_LABEL, "").lower() in ("true", "1", "yes"):
            return f"label {IGNORE_LABEL}=true"
        if self.exclude_label:
            key, sep, want = self.exclude_label.partition(":")
            if key in c.labels and (not sep or c.labels[key] == want):
                return f"label {self.exclude_label} (exclude_label)"
        checks = (
            ("name", c.name, self.include, self.exclude, fnmatch.fnmatchcase),
            ("image", c.image, self.include_image, self.exclude_image, fnmatch.fnmatchcase),
            ("labels", c.labels, self.include_labels, self.exclude_labels, _label_matches),
        )
        for what, value, inc, exc, match in checks:
            if inc and not any(match(value, g) for g in inc):
                return f"{what} matches no include pattern"
            if any(match(value, g) for g in exc):
                return f"{what} matches an exclude pattern"
        return None


def opt_out_reason(c: Container, *, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
                   exclude_label: str = "") -> str | None:
    """Why this container is not shipped, or None when it is (name filters only)."""
    return Filters(include=include, exclude=exclude, exclude_label=exclude_label).reason(c)


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
