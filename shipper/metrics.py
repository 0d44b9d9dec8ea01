"""Process-wide counters and gauges, rendered as Prometheus text.

Every drop, retry and rejection in the pipeline is counted here: nothing is lost
silently. Labels are few and bounded (source, reason, stream), never per line."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

LabelKey = tuple[tuple[str, str], ...]


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[LabelKey, float]] = defaultdict(lambda: defaultdict(float))
        self.gauges: dict[str, Callable[[], float]] = {}
        self.help: dict[str, str] = {}

    def count(self, name: str, value: float = 1, **labels: str) -> None:
        self.counters[name][tuple(sorted(labels.items()))] += value

    def get(self, name: str, **labels: str) -> float:
        return self.counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def total(self, name: str) -> float:
        return sum(self.counters.get(name, {}).values())

    def gauge(self, name: str, fn: Callable[[], float], help: str = "") -> None:
        self.gauges[name] = fn
        if help:
            self.help[name] = help

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(self.counters):
            if name in self.help:
                lines.append(f"# HELP {name} {self.help[name]}")
            lines.append(f"# TYPE {name} counter")
            for key, v in sorted(self.counters[name].items()):
                lab = ",".join(f'{k}="{_esc(val)}"' for k, val in key)
                lines.append(f"{name}{{{lab}}} {v:g}" if lab else f"{name} {v:g}")
        for name in sorted(self.gauges):
            if name in self.help:
                lines.append(f"# HELP {name} {self.help[name]}")
            lines.append(f"# TYPE {name} gauge")
            try:
                lines.append(f"{name} {float(self.gauges[name]()):g}")
            except Exception:  # a gauge must never break the scrape
                pass
        return "\n".join(lines) + "\n"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


METRICS = Metrics()
