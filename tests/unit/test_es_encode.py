"""Bulk item encoding, dead letters, template set (plain values, no Elasticsearch)."""

from __future__ import annotations

import orjson

from shipper.config import ElasticsearchSettings
from shipper.sinks.elasticsearch.deadletter import deadletter_item
from shipper.sinks.elasticsearch.templates import TEMPLATE_PROVIDERS, index_templates
from shipper.sinks.elasticsearch import sink as sink_module
from shipper.sinks.elasticsearch.sink import ElasticsearchSink, _Hosts, redact_url

ITEM = (b'{"create":{"_index":"pfx-2026.11.20","_id":"abc"}}\n'
        b'{"@timestamp":"2026-11-20T10:00:00.000000001Z","message":"hello","log.level":{"a":1},"container.id":"c1"}\n')


def test_deadletter_keeps_original_as_string_same_id_and_day():
    out = deadletter_item(ITEM, {"type": "document_parsing_exception", "reason": "bad level"}, "pfx")
    action, doc, end = out.split(b"\n")
    assert end == b""
    assert orjson.loads(action) == {"create": {"_index": "pfx-deadletter-2026.11.20", "_id": "abc"}}
    d = orjson.loads(doc)
    assert d["error.type"] == "document_parsing_exception" and d["error.reason"] == "bad level"
    assert orjson.loads(d["event.original"])["log.level"] == {"a": 1}
    assert d["message"] == "hello" and d["container.id"] == "c1" and d["logship.deadletter.id"] == "abc"
    assert d["@timestamp"].endswith("Z")


def test_deadletter_is_recognised_by_the_sink():
    sink = ElasticsearchSink(ElasticsearchSettings(index_prefix="pfx"))
    assert deadletter_item(ITEM, {}, "pfx").startswith(sink._dl_prefix)
    assert not ITEM.startswith(sink._dl_prefix)


def test_index_name_by_record_day():
    sink = ElasticsearchSink(ElasticsearchSettings(index_prefix="p"))
    assert sink.index_name(1_795_219_200_000_000_000 - 1) == b"p-2026.11.20"
    assert sink.index_name(1_795_219_200_000_000_000) == b"p-2026.11.21"


def test_templates_specific_ones_win_and_hash_is_stable():
    s = ElasticsearchSettings(index_prefix="p", shards=1, replicas=0, refresh_interval="5s")
    t = index_templates(s)
    assert set(t) == {"p-logs", "p-deadletter", "p-snapshots"}
    assert t["p-deadletter"]["priority"] > t["p-logs"]["priority"]
    assert t["p-snapshots"]["priority"] > t["p-logs"]["priority"]
    assert t["p-logs"]["template"]["settings"]["refresh_interval"] == "5s"
    assert t == index_templates(s)
    assert index_templates(ElasticsearchSettings(index_prefix="p",
                                                 replicas=1))["p-logs"]["_meta"] != t["p-logs"]["_meta"]
    props = t["p-logs"]["template"]["mappings"]["properties"]
    assert props["@timestamp"]["type"] == "date_nanos" and props["message"]["type"] == "text"
    assert props["container"]["properties"]["labels"]["type"] == "flattened"
    assert len(TEMPLATE_PROVIDERS) >= 2


def test_hosts_round_robin_skips_dead():
    h = _Hosts(("http://a", "http://b", "http://c"))
    assert {h.pick() for _ in range(3)} == {0, 1, 2}
    h.failed(1)
    assert 1 not in {h.pick() for _ in range(6)}
    h.ok(1)
    assert 1 in {h.pick() for _ in range(3)}


def test_a_node_down_for_minutes_is_tried_again_within_30_s(monkeypatch):
    """How a returning node is found again: no probe, its backoff (2, 4, ... capped at 30 s) runs out
    and the round robin tries it; a node down for minutes is back in rotation within 30 s of its return."""
    now = [1000.0]
    monkeypatch.setattr(sink_module.time, "monotonic", lambda: now[0])
    h = _Hosts(("http://a", "http://b", "http://c"))
    for _ in range(20):  # every try while it is down fails again (connection refused)
        h.failed(2)
        now[0] += 31
    h.failed(2)
    now[0] += 29.9
    assert 2 not in {h.pick() for _ in range(6)}
    now[0] += 0.2
    assert 2 in {h.pick() for _ in range(3)}
    for i in range(3):  # all down: the one whose backoff ends first, never none
        h.failed(i)
    assert h.pick() == 0


def test_urls_in_logs_lose_their_credentials():
    assert redact_url("https://u:pw@es:9200/x") == "https://u:***@es:9200/x"
    assert redact_url("http://es:9200/a@b") == "http://es:9200/a@b"
