"""`logship setup`: Elasticsearch index templates, the least-privilege roles (and, with
--api-key-file, the shipper's API key: shipper/sinks/elasticsearch/security.py) when
Elasticsearch has security on, the `kibana_system` password (when configured), then the
Kibana saved objects. Every step is idempotent: run it again at will. Run it as an
administrator; the shipper itself then needs only the writer key."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import aiohttp

from shipper.cli import kibana
from shipper.cli.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE
from shipper.config import Config
from shipper.core.masking import error_text, mask_credentials
from shipper.sinks.elasticsearch.client import es_session, kibana_session
from shipper.sinks.elasticsearch.retention import describe_plan

NETWORK_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def fail(step: str, why: str, code: int) -> int:
    print(f"FAIL  {step}: {why}", file=sys.stderr)
    return code


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


def setup_security(cfg: Config, args: argparse.Namespace) -> int:
    from shipper.sinks.elasticsearch import security

    es = cfg.elasticsearch
    try:
        if not asyncio.run(security.security_enabled(es)):
            print("skip  elasticsearch roles: security is off in Elasticsearch (every client is a superuser)")
            if args.api_key_file:
                print("FAIL  shipper API key: Elasticsearch has no security, so no API keys", file=sys.stderr)
                return EXIT_FAILURE
            return EXIT_OK
        names = asyncio.run(security.put_roles(es))
        print(f"ok    elasticsearch roles: {', '.join(names)} "
              f"(give people in Kibana the {es.index_prefix}_viewer role)")
        if args.api_key_file:
            path = Path(args.api_key_file)
            name = f"{es.index_prefix}-shipper-{cfg.pipeline.hostname}"
            made = asyncio.run(security.ensure_shipper_key(es, path, name))
            print(f"ok    shipper API key {name}: {'created, written to' if made else 'still valid in'} {path}")
    except security.SecurityError as exc:
        return fail("elasticsearch security", str(exc), EXIT_FAILURE)
    except NETWORK_ERRORS as exc:
        return fail("elasticsearch security", error_text(exc), EXIT_UNAVAILABLE)
    return EXIT_OK


def cmd_setup(cfg: Config, args: argparse.Namespace) -> int:
    from elasticsearch import AuthenticationException, AuthorizationException

    from shipper.sinks.elasticsearch.retention import RetentionRefused
    from shipper.sinks.elasticsearch.sink import redact_url
    from shipper.sinks.elasticsearch.templates import setup_all
    urls = ",".join(redact_url(u) for u in cfg.elasticsearch.url)
    try:
        changed, plan = setup_all(cfg.elasticsearch)
    except (AuthenticationException, AuthorizationException, RetentionRefused) as exc:
        status = exc.status if isinstance(exc, RetentionRefused) else exc.meta.status
        if status not in (401, 403):
            print(f"FAIL  elasticsearch templates: {urls}: {exc}  (fix: `logship check`)", file=sys.stderr)
            return EXIT_UNAVAILABLE
        print(f"FAIL  elasticsearch templates: {urls} refused the credentials (HTTP {status})  (fix: check "
              "LOGSHIP_ES_USERNAME/LOGSHIP_ES_PASSWORD or LOGSHIP_ES_API_KEY, and that the user may manage index "
              "templates)", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - the client raises many kinds; all mean the same to the user
        print(f"FAIL  elasticsearch templates: {urls} unreachable: {exc}  (fix: `logship check`)", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"ok    elasticsearch templates: {'updated ' + ', '.join(changed) if changed else 'already up to date'}")
    print(f"ok    retention: {describe_plan(cfg.elasticsearch, plan)}")
    code = setup_security(cfg, args)
    if code != EXIT_OK:
        return code
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
        return fail("kibana", str(exc), EXIT_FAILURE)
    except NETWORK_ERRORS as exc:
        return fail("kibana", error_text(exc), EXIT_UNAVAILABLE)
    print(f"ok    kibana: imported {n} saved objects into {mask_credentials(cfg.kibana.url)}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("setup",
                       help="create the Elasticsearch index templates and roles, import the Kibana objects "
                            "(idempotent)",
                       description="Puts the index templates (only those that changed), the roles "
                                   "<prefix>_writer, <prefix>_snapshot_reader, <prefix>_viewer (security on), "
                                   "sets the kibana_system password "
                                   "when LOGSHIP_KIBANA_SYSTEM_PASSWORD is set, then imports kibana/*.ndjson into "
                                   "LOGSHIP_KIBANA_URL (waiting up to LOGSHIP_KIBANA_SETUP_TIMEOUT_S for Kibana). "
                                   "Exit codes: 0 done, 1 Kibana refused, 3 Elasticsearch/Kibana unreachable, "
                                   "4 Elasticsearch refused the credentials.")
    p.add_argument("--skip-kibana", action="store_true", help="only the Elasticsearch templates and roles")
    p.add_argument("--api-key-file", default="", metavar="FILE",
                   help="also mint the shipper's API key (writer + snapshot reader roles) into FILE (mode 0600), "
                        "unless the key already there still works; the shipper reads it with LOGSHIP_ES_API_KEY_FILE")
    p.set_defaults(func=cmd_setup)
