"""Index management: the composable index templates of the log, dead-letter and snapshot
indices, put idempotently by `logship setup` and at shipper start.

Daily indices (`<prefix>-YYYY.MM.DD`, by the UTC day of the line's write time; names in
indices.py), not data streams:
both accept `create` with an explicit `_id`, but a data stream only rejects a
duplicate `_id` within its current backing index, so a line re-sent after a rollover
(a restart re-reading from an old checkpoint, a spool replayed hours later) would be
stored twice. A daily index picked from the line's timestamp sends the same line to
the same index every time, so the 409 dedupe holds forever.

`TEMPLATE_PROVIDERS` lists the functions that make the templates: the log and dead-letter
ones here, the snapshot one in snapshot_template.py (which imports nothing from this
module). The log template's pattern `<prefix>-*` also matches the more specific indices,
so theirs must have a HIGHER priority than LOG_PRIORITY (DEADLETTER_PRIORITY,
SNAPSHOT_PRIORITY; tests/unit/test_es_encode.py checks the order).

Retention (retention.py) is decided first: with ILM each template names its policy
(`index.lifecycle.name`), without it `logship setup` and the shipper delete expired indices.

Idempotence: every body carries `_meta.logship_hash`, the hash of the body itself;
a template whose stored hash matches is left alone, so a second run changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Callable

import orjson

from shipper.config import ElasticsearchSettings
from shipper.sinks.elasticsearch import retention
from shipper.sinks.elasticsearch.client import es_client_kwargs, es_session
from shipper.sinks.elasticsearch.indices import DEADLETTER, index_pattern
from shipper.sinks.elasticsearch.retention import RetentionPlan, ilm_policies
from shipper.sinks.elasticsearch.mappings import FLAT, KW, LONG, UNINDEXED, obj
from shipper.sinks.elasticsearch.snapshot_template import snapshot_template

log = logging.getLogger("logship.es_setup")

LOG_PRIORITY = 200
DEADLETTER_PRIORITY = 300  # above LOG_PRIORITY, like SNAPSHOT_PRIORITY




def log_mappings() -> dict[str, Any]:
    """ECS mappings of a log line document (Kibana relies on these field names)."""
    return {
        "dynamic": True,
        "dynamic_templates": [
            # Unknown strings: one keyword each, never text+keyword pairs.
            {"strings_as_keyword": {"match_mapping_type": "string", "mapping": KW}},
        ],
        "properties": {
            "@timestamp": {"type": "date_nanos"},
            # No norms: lines are found and sorted by time, not ranked by length (-9% ES CPU per document).
            "message": {"type": "text", "norms": False},
            "stream": KW,
            "host": obj(name=KW, hostname=KW),
            "container": obj(id=KW, name=KW, image=obj(name=KW), labels=FLAT),
            "log": obj(
                level=KW, logger=KW, file=obj(path=KW), offset=LONG, origin=obj(file=obj(name=KW, line=LONG)),
                syslog=obj(
                    facility=obj(code=LONG, name=KW), severity=obj(code=LONG, name=KW), priority=LONG,
                    appname=KW, procid=KW, msgid=KW, hostname=KW, version=KW, structured_data=FLAT,
                ),
            ),
            "process": obj(pid=LONG, name=KW, thread=obj(id=LONG, name=KW)),
            "event": obj(dataset=KW, original={"type": "keyword", "index": False, "doc_values": False},
                          created={"type": "date_nanos"}),
            "json": FLAT,
            "logfmt": FLAT,
            "logship": obj(
                truncated={"type": "boolean"}, partial_merged={"type": "boolean"}, snapshot=obj(id=KW),
                timestamp_ns=LONG, line_timestamp={"type": "date_nanos"}, parse_error=KW, dropped_keys=KW,
            ),
        },
    }


def deadletter_mappings() -> dict[str, Any]:
    """A rejected document: the original only as an unindexed string, so it can never conflict again."""
    return {
        "dynamic": False,
        "properties": {
            "@timestamp": {"type": "date_nanos"},
            "message": {"type": "text"},
            "error": obj(type=KW, reason={"type": "text"}, caused_by=FLAT),
            "event": obj(original=UNINDEXED),
            "container": obj(id=KW, name=KW),
            "logship": obj(deadletter=obj(index=KW, id=KW)),
        },
    }


def _settings(s: ElasticsearchSettings) -> dict[str, Any]:
    # best_compression: log documents repeat their container fields and much of their text; it
    # stored the mix in 0.63x the space for +7% indexing CPU (bench/end_to_end.py).
    return {"number_of_shards": s.shards, "number_of_replicas": s.replicas, "refresh_interval": s.refresh_interval,
            "mapping.total_fields.limit": 2000, "codec": "best_compression"}


def log_template(s: ElasticsearchSettings) -> tuple[str, dict[str, Any]]:
    return f"{s.index_prefix}-logs", {
        "index_patterns": [index_pattern(s.index_prefix)], "priority": LOG_PRIORITY,
        "template": {"settings": _settings(s), "mappings": log_mappings()},
    }


def deadletter_template(s: ElasticsearchSettings) -> tuple[str, dict[str, Any]]:
    return f"{s.index_prefix}-deadletter", {
        "index_patterns": [index_pattern(s.index_prefix, DEADLETTER)], "priority": DEADLETTER_PRIORITY,
        "template": {"settings": _settings(s), "mappings": deadletter_mappings()},
    }


TemplateProvider = Callable[[ElasticsearchSettings], tuple[str, dict[str, Any]]]
TEMPLATE_PROVIDERS: list[TemplateProvider] = [log_template, deadletter_template, snapshot_template]


def _with_hash(body: dict[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return {**body, "_meta": {**body.get("_meta", {}), "managed_by": "logship", "logship_hash": digest}}


def index_templates(settings: ElasticsearchSettings, ilm: bool = False) -> dict[str, dict[str, Any]]:
    """Template name -> body (with its `_meta.logship_hash`), from every provider. With `ilm`,
    each template whose kind expires carries its ILM policy (retention.py: same name)."""
    policies = ilm_policies(settings) if ilm else {}
    out = {}
    for name, body in (p(settings) for p in TEMPLATE_PROVIDERS):
        if name in policies:
            tpl = body.get("template", {})
            body = {**body, "template": {**tpl, "settings": {**tpl.get("settings", {}), "index.lifecycle.name": name}}}
        out[name] = _with_hash(body)
    return out


def _stored_hash(resp: Any) -> str | None:
    for t in (resp or {}).get("index_templates", []):
        return ((t.get("index_template") or {}).get("_meta") or {}).get("logship_hash")
    return None


def _stale(templates: dict[str, dict[str, Any]], stored: dict[str, Any]) -> list[str]:
    """Names whose stored body (GET answer) does not carry our hash."""
    return [name for name, body in templates.items() if _stored_hash(stored.get(name)) != body["_meta"]["logship_hash"]]


def setup_indices(settings: ElasticsearchSettings) -> list[str]:
    """Retention (ILM policies, or expired indices deleted), then every template whose stored
    hash differs; returns the names of the templates and policies it changed."""
    return setup_all(settings)[0]


def setup_all(settings: ElasticsearchSettings) -> tuple[list[str], RetentionPlan]:
    """setup_indices, and the retention plan it followed."""
    from elasticsearch import Elasticsearch

    plan = asyncio.run(prepare_retention(settings))
    templates = index_templates(settings, ilm=plan.ilm)
    with Elasticsearch(**es_client_kwargs(settings)) as es:
        get = es.options(ignore_status=404).indices.get_index_template
        changed = _stale(templates, {name: get(name=name).body for name in templates})
        for name in changed:
            es.indices.put_index_template(name=name, **templates[name])
    return _report(plan.changed + changed), plan


async def setup_indices_async(settings: ElasticsearchSettings) -> list[str]:
    """The same as setup_indices, for the pipeline's start."""
    return (await setup_all_async(settings))[0]


async def setup_all_async(settings: ElasticsearchSettings) -> tuple[list[str], RetentionPlan]:
    """setup_indices_async, and the retention plan it followed (the sink runs shipper-side deletion by it)."""
    from elasticsearch import AsyncElasticsearch

    plan = await prepare_retention(settings)
    templates = index_templates(settings, ilm=plan.ilm)
    es = AsyncElasticsearch(**es_client_kwargs(settings))
    try:
        get = es.options(ignore_status=404).indices.get_index_template
        changed = _stale(templates, {name: (await get(name=name)).body for name in templates})
        for name in changed:
            await es.indices.put_index_template(name=name, **templates[name])
    finally:
        await es.close()
    return _report(plan.changed + changed), plan


async def prepare_retention(settings: ElasticsearchSettings) -> RetentionPlan:
    """ILM policies where the cluster has ILM; else the expired daily indices deleted now."""
    async with es_session(settings) as session:
        plan = await retention.prepare(session, settings)
        if plan.shipper_deletes:
            plan.deleted = await retention.delete_expired(session, settings)
    return plan


def _report(changed: list[str]) -> list[str]:
    if changed:
        log.info("elasticsearch: index templates put: %s", ", ".join(changed))
    return changed
