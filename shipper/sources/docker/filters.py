"""Which containers are shipped: the opt-outs (LOGSPOUT=ignore, the ignore label,
logspout's EXCLUDE_LABEL) and the include/exclude globs."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Callable

from shipper.core.container import Container

IGNORE_LABEL = "logship.ignore"


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
        checks: tuple[tuple[str, Any, tuple[str, ...], tuple[str, ...], Callable[[Any, str], bool]], ...] = (
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
