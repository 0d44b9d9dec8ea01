"""METRICS renders valid Prometheus text (checked with prometheus_client's own parser)."""

from __future__ import annotations

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from shipper.core.metrics import BULK_LATENCY, Metrics


def _families(m: Metrics) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(m.render())}


def test_counters_gauges_histograms_parse() -> None:
    m = Metrics()
    m.count("logship_lines_in_total", 3, source="docker")
    m.count("logship_lines_in_total", 2, source="ebpf")
    m.count("logship_drops_total", reason='odd "quote"\\ and\nnewline')
    m.gauge("logship_queue_records_batches", lambda: 7, "Batches waiting.")
    m.set("logship_spool_bytes", 4096)
    m.set("logship_checkpoint_lag_seconds", 1.5, container="abc")
    m.histogram(BULK_LATENCY, (0.1, 1.0), help="Bulk latency.")
    for v in (0.05, 0.5, 0.7, 3.0):
        m.observe(BULK_LATENCY, v)
    fams = _families(m)
    lines_in = {s.labels["source"]: s.value for s in fams["logship_lines_in"].samples}
    assert lines_in == {"docker": 3, "ebpf": 2}
    drop = fams["logship_drops"].samples[0]
    assert drop.labels["reason"] == 'odd "quote"\\ and\nnewline'
    assert fams["logship_queue_records_batches"].samples[0].value == 7
    assert fams["logship_spool_bytes"].type == "gauge"
    h = fams[BULK_LATENCY]
    assert h.type == "histogram"
    got = {(s.name, s.labels.get("le")): s.value for s in h.samples}
    assert got[(BULK_LATENCY + "_bucket", "0.1")] == 1
    assert got[(BULK_LATENCY + "_bucket", "1.0")] == 3  # cumulative
    assert got[(BULK_LATENCY + "_bucket", "+Inf")] == 4
    assert got[(BULK_LATENCY + "_count", None)] == 4
    assert abs(got[(BULK_LATENCY + "_sum", None)] - 4.25) < 1e-9


def test_existing_api_unchanged_and_a_broken_gauge_never_breaks_the_scrape() -> None:
    m = Metrics()
    m.count("x_total")
    m.count("x_total", 2)
    assert m.get("x_total") == 3 and m.total("x_total") == 3
    m.gauge("bad", lambda: 1 / 0)
    m.gauge("good", lambda: 1)
    fams = _families(m)
    assert "good" in fams and "bad" not in fams
    assert m.value("nothing") is None and m.value("nothing", 0.0) == 0.0


def test_the_global_registry_renders() -> None:
    from shipper.core.metrics import METRICS
    METRICS.observe(BULK_LATENCY, 0.02)
    assert BULK_LATENCY in _families(METRICS)


def test_values_are_rendered_exactly():
    from shipper.core.metrics import Metrics
    m = Metrics()
    m.count("big_total", 123_456_789)
    m.count("big_total", 1)
    m.set("ts_seconds", 1_764_626_000.123456)
    m.set("nan_value", float("nan"))
    m.gauge("inf_value", lambda: float("inf"), "x")
    out = m.render()
    assert "big_total 123456790\n" in out and "ts_seconds 1764626000.123456\n" in out
    assert "nan_value NaN\n" in out and "inf_value +Inf\n" in out


def test_every_metric_family_in_the_code_has_help():
    import importlib
    import pkgutil
    import re
    from pathlib import Path

    import shipper
    from shipper.core.metrics import METRICS
    root = Path(shipper.__file__).parent
    for mod in pkgutil.walk_packages([str(root)], "shipper."):
        if "ebpf" not in mod.name and not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    names: set[str] = set()
    inline: set[str] = set()  # METRICS.gauge("name", fn, "help"): described where it is registered
    for path in root.rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'"(logship_[a-z_]+)"', text))
        inline |= set(re.findall(r'METRICS\.gauge\("(logship_[a-z_]+)",[^\n]*,\s*"', text))
        inline |= set(re.findall(r'METRICS\.gauge\("(logship_[a-z_]+)",[^\n]*,\n\s*"', text))
    names -= {"logship_hash"}
    missing = sorted(n for n in names if n not in METRICS.help and n not in inline)
    assert not missing, missing
