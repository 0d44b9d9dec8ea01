"""Which log lines get a snapshot: level >= min_level, a message regex, rules armed at
run time (`logship snapshot --arm`), only for containers in snapshot scope (every kind,
armed rules too: snapshots/scope.py) and rate-limited per container. Called for every
record: the no-trigger path is a set lookup. Regexes are RE2 (safe_regex.py)."""

from __future__ import annotations

import itertools
import time
from collections import deque
from typing import Any, Callable

from shipper.config import SnapshotSettings
from shipper.transforms.safe_regex import RegexError, SafeRegex
from shipper.transforms.trigger_rules import Rule, RuleError, parse_rule

MAX_ARMED_RULES = 32

LEVELS = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")
SEVERITY = {name: i for i, name in enumerate(LEVELS)}


class RateLimiter:
    """At most `per_minute` events per key in any sliding 60 s."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        q = self._seen.setdefault(key, deque())
        while q and now - q[0] >= 60.0:
            q.popleft()
        if len(q) >= self.per_minute:
            return False
        q.append(now)
        return True

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)


class Triggers:
    def __init__(self, s: SnapshotSettings, in_scope: Callable[[str], bool] = lambda _cid: True) -> None:
        self.max_severity = SEVERITY.get(s.min_level)  # None: no level trigger ("off")
        try:
            self.message = SafeRegex(s.message_regex) if s.message_regex else None
        except RegexError as exc:
            raise ValueError(f"LOGSHIP_SNAPSHOT_MESSAGE_REGEX={s.message_regex!r}: {exc}") from None
        self.in_scope = in_scope  # container id -> in snapshot scope (SnapshotScope.__contains__)
        self.armed: dict[int, Rule] = {}
        self.on_change: Callable[[], None] = lambda: None  # the scope follows the armed rules
        self._ids = itertools.count(1)

    def arm(self, text: str) -> tuple[int, Rule]:
        """Add a run-time rule (RuleError when it does not parse or too many are armed); returns its id."""
        if len(self.armed) >= MAX_ARMED_RULES:
            raise RuleError(f"{MAX_ARMED_RULES} rules are armed already: disarm one first")
        rule = parse_rule(text)
        rid = next(self._ids)
        self.armed[rid] = rule
        self.on_change()
        return rid, rule

    def disarm(self, rid: int) -> bool:
        gone = self.armed.pop(rid, None) is not None
        if gone:
            self.on_change()
        return gone

    def match(self, record: Any) -> str | None:
        """Why this record triggers a snapshot (the rule, for the document), or None."""
        if not self.in_scope(record.container.id):
            return None
        for rid, rule in self.armed.items():
            if rule.matches(record):
                return f"armed#{rid}: {rule.text}"
        if self.max_severity is not None:
            level = record.fields.get("log.level")
            sev = SEVERITY.get(level) if level else None
            if sev is not None and sev <= self.max_severity:
                return f"log.level={level}"
        if self.message is not None and self.message.search(record.message.decode("utf-8", "replace")):
            return f"message~{self.message.pattern}"
        return None
