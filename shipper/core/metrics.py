"""Process-wide counters, gauges and histograms, rendered as Prometheus text.

Every drop, retry and rejection in the pipeline is counted here: nothing is lost
silently. Labels are few and bounded (source, reason, stream), never per line.

- `count(name, n, **labels)`: a monotonically growing counter.
- `set(name, value, **labels)`: a gauge someone updates (e.g. spool bytes, checkpoint lag).
- `gauge(name, fn)`: a gauge read at scrape time (e.g. a queue's qsize).
- `observe(name, value, **labels)`: a histogram sample (buckets from `histogram()`, else DEFAULT_BUCKETS).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Callable

LabelKey = tuple[tuple[str, str], ...]

# Seconds: a bulk request takes milliseconds on a healthy cluster, tens of seconds when it struggles.
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Names that several modules share (the sink writes them, /health and /metrics read them).
BULK_LATENCY = "logship_es_bulk_latency_seconds"
LAST_BULK_OK = "logship_es_last_bulk_success_timestamp_seconds"
SPOOL_BYTES = "logship_spool_bytes"
CHECKPOINT_LAG = "logship_checkpoint_lag_seconds"


class _Histogram:
    __slots__ = ("bounds", "buckets", "sum", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * len(bounds)  # non-cumulative; rendered cumulatively
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        if i < len(self.buckets):
            self.buckets[i] += 1
        self.sum += value
        self.count += 1


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[LabelKey, float]] = defaultdict(lambda: defaultdict(float))
        self.gauges: dict[str, Callable[[], float]] = {}
        self.values: dict[str, dict[LabelKey, float]] = defaultdict(dict)
        self.histograms: dict[str, dict[LabelKey, _Histogram]] = defaultdict(dict)
        self.bounds: dict[str, tuple[float, ...]] = {}
        self.help: dict[str, str] = {}

    # ---- counters ----
    def count(self, name: str, value: float = 1, **labels: str) -> None:
        self.counters[name][tuple(sorted(labels.items()))] += value

    def get(self, name: str, **labels: str) -> float:
        return self.counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def total(self, name: str) -> float:
        return sum(self.counters.get(name, {}).values())

    # ---- gauges ----
    def gauge(self, name: str, fn: Callable[[], float], help: str = "") -> None:
        self.gauges[name] = fn
        self.describe(name, help)

    def set(self, name: str, value: float, **labels: str) -> None:
        self.values[name][tuple(sorted(labels.items()))] = value

    def value(self, name: str, default: float | None = None, **labels: str) -> float | None:
        return self.values.get(name, {}).get(tuple(sorted(labels.items())), default)

    # ---- histograms ----
    def histogram(self, name: str, buckets: tuple[float, ...] = DEFAULT_BUCKETS, help: str = "") -> None:
        self.bounds[name] = tuple(sorted(buckets))
        self.describe(name, help)

    def observe(self, name: str, value: float, **labels: str) -> None:
        series = self.histograms[name]
        key = tuple(sorted(labels.items()))
        h = series.get(key)
        if h is None:
            h = series[key] = _Histogram(self.bounds.get(name, DEFAULT_BUCKETS))
        h.observe(value)

    def describe(self, name: str, help: str) -> None:
        if help:
            self.help[name] = help

    # ---- exposition ----
    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(self.counters):
            self._head(lines, name, "counter")
            for key, v in sorted(self.counters[name].items()):
                lines.append(f"{name}{_labels(key)} {v:g}")
        gauge_names = sorted(set(self.gauges) | set(self.values))
        for name in gauge_names:
            samples: list[str] = []
            if name in self.gauges:
                try:
                    samples.append(f"{name} {float(self.gauges[name]()):g}")
                except Exception:  # noqa: BLE001 - a gauge must never break the scrape
                    pass
            for key, v in sorted(self.values.get(name, {}).items()):
                samples.append(f"{name}{_labels(key)} {v:g}")
            if samples:
                self._head(lines, name, "gauge")
                lines.extend(samples)
        for name in sorted(self.histograms):
            self._head(lines, name, "histogram")
            for key, h in sorted(self.histograms[name].items()):
                cumulative = 0
                for bound, n in zip(h.bounds, h.buckets, strict=True):
                    cumulative += n
                    lines.append(f"{name}_bucket{_labels(key + (('le', repr(float(bound))),))} {cumulative}")
                lines.append(f"{name}_bucket{_labels(key + (('le', '+Inf'),))} {h.count}")
                lines.append(f"{name}_sum{_labels(key)} {h.sum:g}")
                lines.append(f"{name}_count{_labels(key)} {h.count}")
        return "\n".join(lines) + "\n"

    def _head(self, lines: list[str], name: str, kind: str) -> None:
        if name in self.help:
            lines.append(f"# HELP {name} {_esc_help(self.help[name])}")
        lines.append(f"# TYPE {name} {kind}")


def _labels(key: LabelKey) -> str:
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in key) + "}" if key else ""


def _esc(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _esc_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


METRICS = Metrics()
METRICS.histogram(BULK_LATENCY, help="Duration of one bulk request to Elasticsearch (seconds).")
METRICS.describe(LAST_BULK_OK, "Unix time of the last bulk request Elasticsearch answered 200.")
METRICS.describe(SPOOL_BYTES, "Bytes held in the disk spool.")
METRICS.describe(CHECKPOINT_LAG, "Age of the oldest container checkpoint behind its newest read line (seconds).")
