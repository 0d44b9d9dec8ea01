"""The index names come from one module; the sink, dead letters, snapshots, templates and the
Kibana data view all spell them through it."""

from __future__ import annotations

from shipper.cli.kibana import data_view_title
from shipper.config import ElasticsearchSettings
from shipper.sinks.elasticsearch import indices
from shipper.sinks.elasticsearch.sink import ElasticsearchSink
from shipper.sinks.elasticsearch.snapshot_template import snapshot_index, snapshot_template
from shipper.sinks.elasticsearch.templates import index_templates

MIDNIGHT = 1_795_219_200_000_000_000  # 2026-11-21T00:00:00Z


def test_daily_names_by_utc_day():
    assert indices.daily_index("p", MIDNIGHT - 1) == "p-2026.11.20"
    assert indices.daily_index("p", MIDNIGHT) == "p-2026.11.21"
    assert indices.daily_index("p", MIDNIGHT, indices.DEADLETTER) == "p-deadletter-2026.11.21"
    assert snapshot_index("p", indices.day_of(MIDNIGHT)) == "p-snapshots-2026.11.21"


def test_every_user_agrees_with_the_module():
    s = ElasticsearchSettings(index_prefix="p")
    assert ElasticsearchSink(s).index_name(MIDNIGHT) == indices.daily_index("p", MIDNIGHT).encode()
    patterns = sorted(p for t in index_templates(s).values() for p in t["index_patterns"])
    assert patterns == sorted([indices.index_pattern("p"), indices.index_pattern("p", indices.DEADLETTER),
                               indices.index_pattern("p", indices.SNAPSHOTS)])
    assert snapshot_template(s)[1]["index_patterns"] == [indices.index_pattern("p", indices.SNAPSHOTS)]
    assert data_view_title("p") == "p-*,-p-deadletter-*,-p-snapshots-*"
