"""Index templates on the real Elasticsearch: idempotent, specific templates win."""

from __future__ import annotations

import asyncio

from shipper.config import ElasticsearchSettings
from shipper.sinks.elasticsearch.templates import index_templates, setup_indices, setup_indices_async


def test_setup_is_idempotent_and_updates_on_change(es, es_url, index_prefix):
    s = ElasticsearchSettings(url=(es_url,), index_prefix=index_prefix)
    assert sorted(setup_indices(s)) == sorted(index_templates(s))
    assert setup_indices(s) == []
    assert asyncio.run(setup_indices_async(s)) == []
    s2 = ElasticsearchSettings(url=(es_url,), index_prefix=index_prefix, refresh_interval="5s")
    assert {f"{index_prefix}-logs", f"{index_prefix}-deadletter"} <= set(setup_indices(s2))  # (+ appended providers)
    assert setup_indices(s2) == []


def test_indices_get_their_template(es, es_url, index_prefix):
    s = ElasticsearchSettings(url=(es_url,), index_prefix=index_prefix, refresh_interval="2s")
    setup_indices(s)
    es.indices.create(index=f"{index_prefix}-2026.11.20")
    es.indices.create(index=f"{index_prefix}-deadletter-2026.11.20")
    logs = es.indices.get_mapping(index=f"{index_prefix}-2026.11.20")[f"{index_prefix}-2026.11.20"]["mappings"]
    dead = es.indices.get_mapping(index=f"{index_prefix}-deadletter-2026.11.20")
    assert logs["properties"]["@timestamp"]["type"] == "date_nanos"
    assert logs["properties"]["container"]["properties"]["labels"]["type"] == "flattened"
    assert "error" in dead[f"{index_prefix}-deadletter-2026.11.20"]["mappings"]["properties"]
    st = es.indices.get_settings(index=f"{index_prefix}-2026.11.20")[f"{index_prefix}-2026.11.20"]["settings"]["index"]
    assert (st["number_of_shards"], st["number_of_replicas"], st["refresh_interval"]) == ("1", "0", "2s")
