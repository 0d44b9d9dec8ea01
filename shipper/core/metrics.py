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
                lines.append(f"{name}{_labels(key)} {_num(v)}")
        gauge_names = sorted(set(self.gauges) | set(self.values))
        for name in gauge_names:
            samples: list[str] = []
            if name in self.gauges:
                try:
                    samples.append(f"{name} {_num(float(self.gauges[name]()))}")
                except Exception:  # noqa: BLE001 - a gauge must never break the scrape
                    pass
            for key, v in sorted(self.values.get(name, {}).items()):
                samples.append(f"{name}{_labels(key)} {_num(v)}")
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
                lines.append(f"{name}_sum{_labels(key)} {_num(h.sum)}")
                lines.append(f"{name}_count{_labels(key)} {h.count}")
        return "\n".join(lines) + "\n"

    def _head(self, lines: list[str], name: str, kind: str) -> None:
        if name in self.help:
            lines.append(f"# HELP {name} {_esc_help(self.help[name])}")
        lines.append(f"# TYPE {name} {kind}")


def _num(v: float) -> str:
    """A sample value exactly: integers in full (a counter past a million, `{:g}` rounded
    to 6 digits), other floats as their shortest round-trip form (timestamps keep their
    fraction), and Prometheus' spellings of the non-finite values."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    if float(v).is_integer() and abs(v) < 2**63:
        return str(int(v))
    return repr(float(v))


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
# The counters' descriptions, one place for all (tests/unit/test_metrics.py: every family in the code has one).
for _name, _help in {
    "logship_lines_in_total": "Lines the sources handed to the pipeline (by source).",
    "logship_encoded_bytes_total": "Bytes of bulk items encoded for Elasticsearch (by source).",
    "logship_parse_errors_total": "Lines a parser failed on: shipped unparsed, flagged logship.parse_error.",
    "logship_records_repaired_total": "Records whose fields JSON cannot hold as they were (big integers, odd keys, "
                                      "bytes): repaired and flagged logship.repaired (by reason).",
    "logship_multiline_joined_lines_total": "Lines joined into a multi-line record (stack traces).",
    "logship_truncated_lines_total": "Lines cut at the line length bound (flagged logship.truncated).",
    "logship_truncated_bytes_total": "Bytes dropped from lines cut at the line length bound.",
    "logship_checkpoint_writes_total": "Checkpoint file writes.",
    "logship_checkpoint_errors_total": "Checkpoint files that could not be written or read (by reason).",
    "logship_docker_reconnects_total": "Reconnections to the Docker engine (event stream ended or failed).",
    "logship_docker_stream_errors_total": "Container log streams torn by an error and re-read from their newest line.",
    "logship_docker_stream_refused_total": "Log streams the engine refused (409: removed; or logging driver none).",
    "logship_docker_streams_total": "Log streams opened, by where the bytes came from "
                                    "(via: file = the json-file read directly, api = the logs endpoint).",
    "logship_docker_reattach_total": "Log streams of running containers that ended and were opened again.",
    "logship_docker_bad_entries_total": "Log entries without a Docker timestamp (kept, next to their neighbour).",
    "logship_docker_attach_late_total": "Auto-remove containers that were already running when attach joined them.",
    "logship_docker_attach_lines_total": "Lines of removed auto-remove containers shipped from their attach stream.",
    "logship_docker_attach_dropped_lines_total": "Lines of a removed container lost over the attach hold bound.",
    "logship_docker_json_file_reads_total": "Removed auto-remove containers shipped from their (still open) json-file.",
    "logship_docker_logs_held_total": "Container json-files opened the moment dockerd created them (read if the "
                                      "container is removed before its log is opened).",
    "logship_docker_held_unused_total": "Held json-files closed unread, by reason (expired: not needed within the "
                                        "hold time; over_bound: more held than the bound).",
    "logship_docker_hold_missed_total": "Containers whose json-file could not be held at its creation, by reason "
                                        "(watch_limit, queue_overflow, open_failed).",
    "logship_docker_unread_containers_total": "Containers removed before their log could be read, or (auto-remove, "
                                              "attach joined late) read from their attach stream only: lines lost.",
    "logship_docker_gaps_total": "Resumes that found lines rotated away by dockerd before they were read (each also "
                                 "an event document, event.action log-gap).",
    "logship_docker_gap_seconds_total": "Seconds of log history lost to such gaps (checkpoint to oldest line left).",
    "logship_es_delivered_total": "Documents Elasticsearch holds (2xx or 409 already held).",
    "logship_es_rejected_total": "Documents Elasticsearch refused (4xx), dead-lettered (by reason).",
    "logship_es_deadletter_failed_total": "Dead letters Elasticsearch refused too.",
    "logship_es_item_retries_total": "Bulk items Elasticsearch answered 429/5xx, retried (by status).",
    "logship_es_retried_items_total": "Bulk items sent again after a failed attempt.",
    "logship_es_request_errors_total": "Bulk requests that failed as a whole (transport, 5xx; by reason).",
    "logship_es_spooled_total": "Bulk items written to the disk spool while Elasticsearch failed.",
    "logship_es_spooled_busy_total": "Bulk items spooled because every request slot stayed busy.",
    "logship_es_replayed_total": "Bulk items replayed from the disk spool.",
    "logship_spool_written_total": "Frames written to the disk spool.",
    "logship_spool_full_waits_total": "Times the full spool paused the input.",
    "logship_spool_quarantined_total": "Spool segments set aside as unreadable.",
    "logship_http_start_errors_total": "Times the HTTP server could not listen (shipping went on without it).",
    "logship_es_blocked_items_total":
        "Bulk items refused for a cluster reason (block, 429 on all); never dead-lettered.",
    "logship_es_bulk_requests_total": "Bulk requests sent, by Elasticsearch host.",
    "logship_es_retention_deleted_indices_total": "Expired daily indices deleted by the shipper's retention (no ILM).",
    "logship_es_retention_errors_total": "Retention checks that failed (retried at the next interval).",
    "logship_ebpf_drops_total": "eBPF events lost (ring buffer full, by reason).",
    "logship_ebpf_probe_mechanism": "What the eBPF write-capture probe runs on (label mechanism: tracepoint).",
    "logship_ebpf_dropped_total":
        "eBPF write events refused in the kernel, per container and reason (budget: over its ring budget).",
    "logship_ebpf_file_events_total": "Log-file events of the eBPF source, by kind (read_back, caught_up, ...).",
    "logship_ebpf_unclaimed_events_total": "eBPF events of processes in no shipped container.",
    "logship_snapshots_store_failed_total": "Snapshots that could not be stored.",
    "logship_snapshots_stored_total": "Snapshots stored in Elasticsearch.",
}.items():
    METRICS.describe(_name, _help)
