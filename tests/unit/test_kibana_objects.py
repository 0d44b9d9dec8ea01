"""The saved objects in kibana/ are checked statically (Kibana is in no registry here):
they parse, ids are unique, every reference resolves, and every field a search or a
visualization uses exists in the log index template's mapping."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import pytest

from shipper.cli import kibana
from shipper.config import ElasticsearchSettings

OBJECTS = kibana.load_objects()
BY_ID = {(o["type"], o["id"]): o for o in OBJECTS}
TYPES_8X = {"index-pattern", "search", "lens", "dashboard", "visualization"}


def test_objects_parse_and_have_8x_shapes() -> None:
    assert OBJECTS, "no saved objects under kibana/"
    for o in OBJECTS:
        assert {"type", "id", "attributes", "references", "coreMigrationVersion",
                "typeMigrationVersion"} <= set(o), o.get("id")
        assert o["type"] in TYPES_8X
        assert o["coreMigrationVersion"].startswith("8.")
        assert isinstance(o["references"], list)
        for key in ("fieldFormatMap", "panelsJSON", "optionsJSON"):
            if key in o["attributes"]:
                json.loads(o["attributes"][key])  # nested JSON strings must parse too
        meta = o["attributes"].get("kibanaSavedObjectMeta", {})
        if "searchSourceJSON" in meta:
            json.loads(meta["searchSourceJSON"])


def test_ids_are_unique() -> None:
    keys = [(o["type"], o["id"]) for o in OBJECTS]
    assert len(keys) == len(set(keys))
    assert len({o["id"] for o in OBJECTS}) == len(OBJECTS), "ids should be unique across types too"


def test_every_reference_resolves_and_every_ref_name_is_declared() -> None:
    for o in OBJECTS:
        names = {r["name"] for r in o["references"]}
        for r in o["references"]:
            assert (r["type"], r["id"]) in BY_ID, f"{o['id']}: reference {r} resolves to nothing"
        meta = json.loads(o["attributes"].get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}"))
        if "indexRefName" in meta:
            assert meta["indexRefName"] in names
        if o["type"] == "dashboard":
            for p in json.loads(o["attributes"]["panelsJSON"]):
                assert f"{p['panelIndex']}:{p['panelRefName']}" in names, p
        if o["type"] == "lens":
            for layer in o["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]:
                assert f"indexpattern-datasource-layer-{layer}" in names


def test_data_view_excludes_deadletters_and_snapshots_and_links_snapshots() -> None:
    dv = BY_ID[("index-pattern", kibana.DATA_VIEW_ID)]["attributes"]
    assert dv["title"] == "logship-*,-logship-deadletter-*,-logship-snapshots-*"
    assert dv["timeFieldName"] == "@timestamp"
    fmt = json.loads(dv["fieldFormatMap"])["logship.snapshot.id"]
    assert fmt["id"] == "url" and fmt["params"]["urlTemplate"] == "http://127.0.0.1:8080/snapshots/{{value}}"


def test_adapt_follows_prefix_and_shipper_url_without_touching_the_originals() -> None:
    out = kibana.adapt(OBJECTS, shipper_url="https://logs.example.org:9443/", index_prefix="acme")
    dv = next(o for o in out if o["id"] == kibana.DATA_VIEW_ID)["attributes"]
    assert dv["title"] == "acme-*,-acme-deadletter-*,-acme-snapshots-*"
    url = json.loads(dv["fieldFormatMap"])["logship.snapshot.id"]["params"]["urlTemplate"]
    assert url == "https://logs.example.org:9443/snapshots/{{value}}"
    assert BY_ID[("index-pattern", kibana.DATA_VIEW_ID)]["attributes"]["title"].startswith("logship-*")
    assert [json.loads(line) for line in kibana.to_ndjson(out).splitlines()] == out


# ---- fields used vs. the index template --------------------------------------------
def _mapped_fields(mapping: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for name, spec in mapping.get("properties", {}).items():
        path = prefix + name
        if "properties" in spec:
            yield from _mapped_fields(spec, path + ".")
        else:
            yield path
            for sub in spec.get("fields", {}):
                yield f"{path}.{sub}"


KQL_FIELD = re.compile(r"([A-Za-z_@][\w.@]*)\s*:")


def _used_fields(o: dict[str, Any]) -> set[str]:
    a = o["attributes"]
    used: set[str] = set(a.get("columns", []))
    used |= {s[0] for s in a.get("sort", [])}
    meta = json.loads(a.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}"))
    used |= set(KQL_FIELD.findall(meta.get("query", {}).get("query", "")))
    if o["type"] == "lens":
        state = a["state"]
        used |= set(KQL_FIELD.findall(state.get("query", {}).get("query", "")))
        for layer in state["datasourceStates"]["formBased"]["layers"].values():
            used |= {c["sourceField"] for c in layer["columns"].values() if c.get("sourceField") != "___records___"}
    if o["type"] == "index-pattern":
        used |= set(json.loads(a.get("fieldFormatMap") or "{}"))
        used.add(a["timeFieldName"])
    return used


def test_every_field_used_exists_in_the_log_template_mapping() -> None:
    try:
        from shipper.sinks.elasticsearch.templates import index_templates
    except ImportError as exc:
        pytest.fail(f"shipper.sinks.elasticsearch.templates.index_templates is not there yet (ES-sink work): {exc}")
    templates = index_templates(ElasticsearchSettings())
    log_template = next(body for body in templates.values() if "logship-*" in body["index_patterns"])
    mapped = set(_mapped_fields(log_template["template"]["mappings"]))
    missing = {o["id"]: sorted(_used_fields(o) - mapped) for o in OBJECTS}
    assert not {k: v for k, v in missing.items() if v}, f"fields not in the index template: {missing}"
    assert {"container.name", "log.level", "message", "@timestamp"} <= set().union(*map(_used_fields, OBJECTS))
