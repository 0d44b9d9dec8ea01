"""`logship snapshot ID`: a syscall window, printed sysdig-style (one syscall a line), or
`--json` the document. `logship snapshot --arm RULE` adds a trigger rule to the running
shipper (`--rules` lists them, `--disarm N` removes one)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import aiohttp
import orjson

from shipper.cli.exit_codes import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE
from shipper.cli.control import Endpoint, add_url_argument, endpoint
from shipper.config import Config
from shipper.core.terminal import inert
from shipper.core.masking import error_text


async def _admin(ep: Endpoint, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
    async with ep.session(aiohttp.ClientTimeout(total=10)) as s:
        # JSON even for DELETE: the shipper takes state changes as application/json only (a CSRF guard).
        async with s.request(method, ep.base + path, json=body) as r:
            raw = await r.read()
            try:
                return r.status, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return r.status, inert(raw.decode(errors="replace").strip())


def _control(cfg: Config, args: argparse.Namespace) -> int:
    ep = endpoint(cfg, args)
    if ep is None:
        print("logship snapshot: LOGSHIP_HTTP_SOCKET is off; pass --url (and LOGSHIP_HTTP_TOKEN)", file=sys.stderr)
        return EXIT_CONFIG
    call: tuple[str, str, dict[str, Any] | None]
    if args.arm:
        call = ("POST", "/snapshots/arm", {"rule": args.arm})
    elif args.disarm is not None:
        call = ("DELETE", f"/snapshots/rules/{args.disarm}", {})
    else:
        call = ("GET", "/snapshots/rules", None)
    try:
        status, answer = asyncio.run(_admin(ep, *call))
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        print(f"logship snapshot: cannot reach the shipper at {ep.shown}: {error_text(exc)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if status >= 300:
        print(f"logship snapshot: {answer.get('error') if isinstance(answer, dict) else answer}", file=sys.stderr)
        return EXIT_CONFIG if status == 400 else EXIT_FAILURE
    if args.arm:
        print(f"armed rule {answer['id']}: {inert(answer['rule'])}")
    elif args.disarm is not None:
        print(f"removed rule {args.disarm}")
    else:
        for r in answer:
            print(f"{r['id']}\t{inert(r['rule'])}")
    return EXIT_OK


def cmd_snapshot(cfg: Config, args: argparse.Namespace) -> int:
    if args.arm or args.disarm is not None or args.rules:
        return _control(cfg, args)
    if not args.id:
        print("logship snapshot: give a snapshot ID (the log line's logship.snapshot.id), or --arm RULE",
              file=sys.stderr)
        return EXIT_CONFIG
    from shipper.snapshots.render import render
    from shipper.snapshots.store import SnapshotStore
    try:
        doc = asyncio.run(SnapshotStore(cfg.elasticsearch).get(args.id))
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError, RuntimeError) as exc:
        print(f"logship snapshot: cannot search Elasticsearch: {error_text(exc)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if doc is None:
        print(f"logship snapshot: no snapshot {args.id} in {cfg.elasticsearch.index_prefix}-snapshots-*",
              file=sys.stderr)
        return EXIT_FAILURE
    # ensure_ascii: JSON escapes C0 controls but not C1 or bidi characters; \u-escaping every non-ASCII
    # character keeps the container's bytes inert on a terminal (render() does so for the text form).
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=True) + "\n" if args.json else render(doc))
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("snapshot", help="print a syscall window (snapshot) of a log line, or arm a trigger rule",
                       description="Rules: `key=value` / `key~regex` joined by `and`; keys container, level, message, "
                                   "stream, path. Exit codes: 0 ok, 1 not found, 2 bad rule/usage, 3 unreachable.")
    p.add_argument("id", nargs="?", default="", help="the snapshot id (logship.snapshot.id of the log line)")
    p.add_argument("--json", action="store_true", help="print the snapshot document as JSON")
    p.add_argument("--arm", default="", metavar="RULE",
                   help="add a trigger rule to the running shipper, e.g. 'container=web and message~Database'")
    p.add_argument("--rules", action="store_true", help="list the running shipper's armed rules")
    p.add_argument("--disarm", type=int, default=None, metavar="N", help="remove armed rule N")
    add_url_argument(p)
    p.set_defaults(func=cmd_snapshot)
