"""Which containers keep syscall windows: only those that ask (opt-in).

A container is in scope when it carries the label (`logship.snapshots=true`), when its
name or id matches LOGSHIP_SNAPSHOT_CONTAINERS, or while a rule armed at run time names
it (`container=web and ...`). Only shipped containers (the registry's) can be in scope.
Triggers fire only for containers in scope, armed rules included; the kernel keeps rings
only for their processes (ring.py's scope map, kept from `pids_in_scope()`)."""

from __future__ import annotations

from typing import Any, Callable

from shipper.config import SnapshotSettings
from shipper.transforms.trigger_rules import name_matches

TRUTHY = frozenset({"true", "1", "yes", "on"})


class SnapshotScope:
    def __init__(self, s: SnapshotSettings, armed: Callable[[], dict[int, Any]] = dict) -> None:
        self.label = s.scope_label
        self.globs = s.containers
        self.armed = armed  # rule id -> Rule (Triggers.armed): rules naming containers bring them in
        self.known: dict[str, Any] = {}  # shipped containers (the registry's)
        self.why: dict[str, str] = {}  # container id in scope -> why
        self.on_change: Callable[[], None] = lambda: None

    def reason(self, c: Any) -> str | None:
        """Why this container is in scope, or None."""
        if self.label and (c.labels.get(self.label) or "").strip().lower() in TRUTHY:
            return f"label {self.label}"
        if self.globs and name_matches(c, self.globs):
            return "LOGSHIP_SNAPSHOT_CONTAINERS"
        for rid, rule in self.armed().items():
            conds = rule.container_conditions()
            if conds and all(cond.matches_container(c) for cond in conds):
                return f"armed rule #{rid}"
        return None

    def __contains__(self, container_id: str) -> bool:
        return container_id in self.why

    def __len__(self) -> int:
        return len(self.why)

    # ---- the registry's listener (event loop thread) -----------------------------------
    def container_added(self, c: Any) -> None:
        self.known[c.id] = c
        self._judge(c)

    def container_removed(self, c: Any) -> None:
        self.known.pop(c.id, None)
        if self.why.pop(c.id, None) is not None:
            self.on_change()

    def refresh(self) -> None:
        """After a rule was armed or disarmed."""
        for c in list(self.known.values()):
            self._judge(c)

    def _judge(self, c: Any) -> None:
        why = self.reason(c)
        if why == self.why.get(c.id):
            return
        if why is None:
            del self.why[c.id]
        else:
            self.why[c.id] = why
        self.on_change()

    def pids_in_scope(self, pids_of: Callable[[str], list[int]]) -> set[int]:
        out: set[int] = set()
        for cid in self.why:
            out.update(pids_of(cid))
        return out
