"""`logship setup`: Elasticsearch index templates, the `kibana_system` password (when
configured), then the Kibana saved objects. Every step is idempotent: run it again at will."""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp

from shipper.cli import kibana
from shipper.cli.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE
from shipper.config import Config
from shipper.sinks.elasticsearch.client import es_session, kibana_session
from shipper.sinks.elasticsearch.retention import describe_plan


async def set_kibana_system_password(cfg: Config) -> None:
    """Kibana logs in to Elasticsearch as the built-in `kibana_system` user, whose password
    only the security API can set (as a user with manage_security, e.g. `elastic`)."""
    es = cfg.elasticsearch
    async with es_session(es) as s:
        url = es.url[0].rstrip("/") + "/_security/user/kibana_system/_password"
        async with s.post(url, json={"password": cfg.kibana.system_password}) as r:
            if r.status != 200:
                body = (await r.text())[:300]
                raise kibana.KibanaError(f"setting the kibana_system password answered HTTP {r.status}: {body}")


async def import_kibana(cfg: Config) -> int:
    objects = kibana.adapt(kibana.load_objects(), shipper_url=cfg.kibana.shipper_url,
                           index_prefix=cfg.elasticsearch.index_prefix)
    async with kibana_session(cfg.kibana, cfg.elasticsearch) as s:
        await kibana.wait_ready(s, cfg.kibana.url, cfg.kibana.setup_timeout_s)
        return await kibana.import_objects(s, cfg.kibana.url, kibana.to_ndjson(objects))


def cmd_setup(cfg: Config, args: argparse.Namespace) -> int:
    from shipper.sinks.elasticsearch.templates import setup_all

    try:
        changed, plan = setup_all(cfg.elasticsearch)
    except Exception as exc:  # noqa: BLE001 - the client raises many kinds; all mean the same to the user
        print(f"FAIL  elasticsearch templates: {exc}  (fix: `logship check`)", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"ok    elasticsearch templates: {'updated ' + ', '.join(changed) if changed else 'already up to date'}")
    print(f"ok    retention: {describe_plan(cfg.elasticsearch, plan)}")
    if args.skip_kibana:
        print("skip  kibana: --skip-kibana")
        return EXIT_OK
    try:
        if cfg.kibana.system_password:
            asyncio.run(set_kibana_system_password(cfg))
            print("ok    kibana_system password set")
        if not cfg.kibana.url:
            print("skip  kibana: LOGSHIP_KIBANA_URL is not set "
                  "(set it to import the data view, searches and dashboard)")
            return EXIT_OK
        n = asyncio.run(import_kibana(cfg))
    except kibana.KibanaError as exc:
        print(f"FAIL  kibana: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        print(f"FAIL  kibana: {exc or type(exc).__name__}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"ok    kibana: imported {n} saved objects into {cfg.kibana.url}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("setup",
                       help="create the Elasticsearch index templates and import the Kibana objects (idempotent)",
                       description="Puts the index templates (only those that changed), "
                                   "sets the kibana_system password "
                                   "when LOGSHIP_KIBANA_SYSTEM_PASSWORD is set, then imports kibana/*.ndjson into "
                                   "LOGSHIP_KIBANA_URL (waiting up to LOGSHIP_KIBANA_SETUP_TIMEOUT_S for Kibana). "
                                   "Exit codes: 0 done, 1 Kibana refused, 3 Elasticsearch/Kibana unreachable.")
    p.add_argument("--skip-kibana", action="store_true", help="only the Elasticsearch templates")
    p.set_defaults(func=cmd_setup)
