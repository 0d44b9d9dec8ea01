"""`logship snapshot ID`: a syscall window, printed sysdig-style (one syscall a line), or
`--json` the document. `logship snapshot --arm RULE` adds a trigger rule to the running
shipper (`--rules` lists them, `--disarm N` removes one)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp
import orjson

from shipper.cli.exit_codes import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE
from shipper.config import Config


async def _admin(base: str, method: str, path: str, body: str = "") -> tuple[int, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        async with s.request(method, base.rstrip("/") + path, data=body.encode()) as r:
            raw = await r.read()
            try:
                return r.status, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return r.status, raw.decode(errors="replace")


def _control(cfg: Config, args: argparse.Namespace) -> int:
    base = args.url or (f"http://{cfg.http.addr}" if cfg.http.addr else "")
    if not base:
        print("logship snapshot: LOGSHIP_HTTP_ADDR is empty (the shipper serves no /snapshots); pass --url",
              file=sys.stderr)
        return EXIT_CONFIG
    if args.arm:
        call = ("POST", "/snapshots/arm", args.arm)
    elif args.disarm is not None:
        call = ("DELETE", f"/snapshots/rules/{args.disarm}", "")
    else:
        call = ("GET", "/snapshots/rules", "")
    try:
        status, answer = asyncio.run(_admin(base, *call))
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        print(f"logship snapshot: cannot reach the shipper at {base}: {exc or type(exc).__name__}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if status >= 300:
        print(f"logship snapshot: {answer.get('error') if isinstance(answer, dict) else answer}", file=sys.stderr)
        return EXIT_CONFIG if status == 400 else EXIT_FAILURE
    if args.arm:
        print(f"armed rule {answer['id']}: {answer['rule']}")
    elif args.disarm is not None:
        print(f"removed rule {args.disarm}")
    else:
        for r in answer:
            print(f"{r['id']}\t{r['rule']}")
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
        print(f"logship snapshot: cannot search Elasticsearch: {exc or type(exc).__name__}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if doc is None:
        print(f"logship snapshot: no snapshot {args.id} in {cfg.elasticsearch.index_prefix}-snapshots-*",
              file=sys.stderr)
        return EXIT_FAILURE
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n" if args.json else render(doc))
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
    p.add_argument("--url", default="", help="shipper base URL for --arm/--rules/--disarm (default: http://LOGSHIP_HTTP_ADDR)")
    p.set_defaults(func=cmd_snapshot)
