"""Retention of the daily indices: log lines, dead letters, snapshots (each its own age).

Two ways, one setting (`LOGSHIP_ES_RETENTION`):

- ILM, where the cluster has it (the default distribution; `GET _ilm/status` answers): one
  policy per kind (`<prefix>-logs`, `<prefix>-deadletter`, `<prefix>-snapshots`, the names
  of their index templates), a delete phase at the kind's age, attached through the
  template's `index.lifecycle.name`. ILM counts the age from the index's creation: a daily
  index is created on its day, so that is the age of its oldest line (a back-filled old day
  lives `days` from its creation).
- The shipper itself, where the cluster has no ILM (the integration-test distribution, OSS
  builds): `logship setup` and, every `retention_check_s`, the running shipper delete the
  daily indices whose name date is more than `days` days before today (UTC). Several
  shippers into one cluster all do it: a delete of what another already deleted is a no-op.

Neither touches any index but `<prefix>-YYYY.MM.DD`, `<prefix>-deadletter-YYYY.MM.DD` and
`<prefix>-snapshots-YYYY.MM.DD`: a name that does not parse is never deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
import orjson

from shipper.config import ElasticsearchSettings
from shipper.core.metrics import METRICS
from shipper.sinks.elasticsearch.indices import DEADLETTER, SNAPSHOTS

log = logging.getLogger("logship.es_setup")

RETENTION_DELETED = "logship_es_retention_deleted_indices_total"


@dataclass(frozen=True)
class Kind:
    name: str  # policy and template suffix
    index_kind: str  # the kind of indices.py ("" for the log lines)
    days: Callable[[ElasticsearchSettings], int]


KINDS = (
    Kind("logs", "", lambda s: s.retention_days),
    Kind(DEADLETTER, DEADLETTER, lambda s: s.deadletter_retention_days),
    Kind(SNAPSHOTS, SNAPSHOTS, lambda s: s.snapshot_retention_days),
)
_KIND_NAMES = "|".join(k.index_kind for k in KINDS if k.index_kind)
_DAILY = re.compile(r"(?:(?P<kind>" + _KIND_NAMES + r")-)?(?P<day>\d{4}\.\d{2}\.\d{2})")


def policy_name(s: ElasticsearchSettings, kind: Kind) -> str:
    return f"{s.index_prefix}-{kind.name}"


def ilm_policies(s: ElasticsearchSettings) -> dict[str, dict[str, Any]]:
    """Policy name -> `PUT _ilm/policy/<name>` body, for each kind that expires (days > 0)."""
    out = {}
    for kind in KINDS:
        days = kind.days(s)
        if days > 0:
            policy: dict[str, Any] = {"phases": {"hot": {"min_age": "0ms", "actions": {}},
                                                 "delete": {"min_age": f"{days}d", "actions": {"delete": {}}}}}
            digest = hashlib.sha256(orjson.dumps(policy, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
            policy["_meta"] = {"managed_by": "logship", "logship_hash": digest}
            out[policy_name(s, kind)] = {"policy": policy}
    return out


def index_kind(s: ElasticsearchSettings, index: str) -> tuple[Kind, dt.date] | None:
    """The kind and day of one of our daily indices; None for any other name."""
    head = s.index_prefix + "-"
    if not index.startswith(head):
        return None
    m = _DAILY.fullmatch(index, len(head))
    if m is None:
        return None
    try:
        day = dt.datetime.strptime(m["day"], "%Y.%m.%d").date()
    except ValueError:
        return None
    kind = m["kind"] or ""
    return next(k for k in KINDS if k.index_kind == kind), day


def expired(s: ElasticsearchSettings, indices: list[str], today: dt.date) -> list[str]:
    """Those of `indices` that hold only lines older than their kind's retention."""
    out = []
    for name in indices:
        found = index_kind(s, name)
        if found is None:
            continue
        kind, day = found
        days = kind.days(s)
        if days > 0 and (today - day).days > days:
            out.append(name)
    return sorted(out)


def oldest(s: ElasticsearchSettings, indices: list[str]) -> dict[str, tuple[str, dt.date]]:
    """Kind name -> (index, day) of the oldest daily index of each kind."""
    out: dict[str, tuple[str, dt.date]] = {}
    for name in indices:
        found = index_kind(s, name)
        if found and (found[0].name not in out or found[1] < out[found[0].name][1]):
            out[found[0].name] = (name, found[1])
    return out


@dataclass
class RetentionPlan:
    """What set-up decided: whether ILM carries the retention, and what it changed."""

    ilm: bool = False
    shipper_deletes: bool = False
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # expired indices deleted by set-up
    ilm_status: str = ""  # why ILM is (not) used, for `logship check`

class RetentionRefused(RuntimeError):
    """Elasticsearch answered a retention request with an error (status kept: 401/403 mean
    the credentials, which `logship setup` reports as such)."""

    def __init__(self, what: str, status: int, body: str) -> None:
        super().__init__(f"{what} answered {status}: {body[:300]}")
        self.status = status

    @classmethod
    async def of(cls, what: str, r: aiohttp.ClientResponse) -> RetentionRefused:
        return cls(what, r.status, await r.text())


async def has_ilm(session: aiohttp.ClientSession, url: str) -> tuple[bool, str]:
    """Is ILM installed (`GET _ilm/status` answers its operation mode)? And what it said."""
    async with session.get(url.rstrip("/") + "/_ilm/status") as r:
        raw = await r.read()
    if r.status == 200:
        try:
            mode = orjson.loads(raw).get("operation_mode")
        except (orjson.JSONDecodeError, AttributeError):
            mode = None
        if mode:
            return True, f"ILM {mode}"
    return False, f"no ILM (GET _ilm/status answered {r.status})"


async def _stored_policy_hash(session: aiohttp.ClientSession, url: str, name: str) -> str | None:
    async with session.get(f"{url}/_ilm/policy/{name}") as r:
        if r.status != 200:
            return None
        body = await r.json(content_type=None)
    return (((body or {}).get(name) or {}).get("policy") or {}).get("_meta", {}).get("logship_hash")


async def prepare(session: aiohttp.ClientSession, s: ElasticsearchSettings) -> RetentionPlan:
    """Decides ILM or shipper-side deletion (per `s.retention`) and puts the ILM policies
    whose stored hash differs. Raises RuntimeError when `ilm` is asked of a cluster without."""
    plan = RetentionPlan()
    if s.retention == "off":
        plan.ilm_status = "retention off"
        return plan
    url = s.url[0].rstrip("/")
    available, plan.ilm_status = await has_ilm(session, url)
    if s.retention == "ilm" and not available:
        raise RuntimeError(f"LOGSHIP_ES_RETENTION=ilm but the cluster has {plan.ilm_status}; "
                           "use `auto` or `shipper` (the shipper deletes expired indices itself)")
    plan.ilm = available and s.retention in ("auto", "ilm")
    plan.shipper_deletes = not plan.ilm
    if plan.ilm:
        for name, body in ilm_policies(s).items():
            if await _stored_policy_hash(session, url, name) != body["policy"]["_meta"]["logship_hash"]:
                async with session.put(f"{url}/_ilm/policy/{name}", json=body) as r:
                    if r.status != 200:
                        raise await RetentionRefused.of(f"PUT _ilm/policy/{name}", r)
                plan.changed.append(name)
    return plan


async def daily_indices(session: aiohttp.ClientSession, s: ElasticsearchSettings) -> list[str]:
    url = s.url[0].rstrip("/")
    async with session.get(f"{url}/_cat/indices/{s.index_prefix}-*",
                           params={"h": "index", "format": "json", "expand_wildcards": "open,closed"}) as r:
        if r.status == 404:
            return []
        if r.status != 200:
            raise await RetentionRefused.of("GET _cat/indices", r)
        rows = await r.json(content_type=None)
    return [row["index"] for row in rows or [] if index_kind(s, row.get("index", ""))]


async def delete_expired(session: aiohttp.ClientSession, s: ElasticsearchSettings,
                         today: dt.date | None = None) -> list[str]:
    """Deletes our daily indices older than their retention; returns their names."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    doomed = expired(s, await daily_indices(session, s), today)
    url = s.url[0].rstrip("/")
    for i in range(0, len(doomed), 50):  # bounded URL length
        chunk = doomed[i:i + 50]
        async with session.delete(f"{url}/{','.join(chunk)}", params={"ignore_unavailable": "true"}) as r:
            if r.status != 200:
                raise await RetentionRefused.of(f"DELETE {chunk[0]},...", r)
    if doomed:
        METRICS.count(RETENTION_DELETED, len(doomed))
        log.info("retention: deleted %d expired indices (logs %dd, dead letters %dd, snapshots %dd): %s", len(doomed),
                 s.retention_days, s.deadletter_retention_days, s.snapshot_retention_days, ", ".join(doomed))
    return doomed


def ages(s: ElasticsearchSettings) -> str:
    return ", ".join(f"{k.name} {k.days(s)}d" if k.days(s) else f"{k.name} kept" for k in KINDS)


def describe_plan(s: ElasticsearchSettings, plan: RetentionPlan) -> str:
    if plan.ilm:
        return f"ILM policies {', '.join(policy_name(s, k) for k in KINDS if k.days(s))} ({ages(s)})"
    if plan.shipper_deletes:
        gone = f"; deleted {', '.join(plan.deleted)}" if plan.deleted else ""
        return f"{plan.ilm_status}: the shipper deletes expired daily indices ({ages(s)}){gone}"
    return plan.ilm_status
