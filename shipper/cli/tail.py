"""`logship tail [TEXT]`: the lines being shipped, live, in colour (like sysdig's spy_logs):
container, stream or file path, message. Reads the running shipper's /logs endpoint;
the filters run in the shipper, so only matching lines cross the socket. Every field is made
inert (shipper.core.terminal) before it is printed: a container's escape sequences never
reach the terminal."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import zlib
from typing import Any, TextIO

import aiohttp
import orjson

from shipper.cli.exit_codes import EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE
from shipper.cli.control import Endpoint, add_url_argument, endpoint
from shipper.config import Config
from shipper.core.terminal import inert
from shipper.core.masking import error_text

RESET = "\x1b[0m"
RED, YELLOW, DIM, BOLD_RED = "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[1;31m"
_NAME_COLOURS = ("\x1b[36m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m", "\x1b[92m", "\x1b[95m", "\x1b[94m")
_ERROR = re.compile(r"\b(?:err|error|errors|fatal|crit|critical|panic|emerg|emergency|alert|exception|traceback)\b",
                    re.I)
_WARN = re.compile(r"\b(?:warn|warning)\b", re.I)
_ERROR_LEVELS = frozenset({"error", "critical", "alert", "emergency"})


def severity(doc: dict[str, Any]) -> str:
    """'error' | 'warn' | '': from the parsed level when there is one, else from the words in the line."""
    level = str(doc.get("log.level") or "").lower()
    if level in _ERROR_LEVELS:
        return "error"
    if level == "warning":
        return "warn"
    msg = str(doc.get("message", ""))
    if _ERROR.search(msg):
        return "error"
    if _WARN.search(msg):
        return "warn"
    return ""


def format_line(doc: dict[str, Any], colour: bool) -> str:
    # Everything from the document is the container's (or its creator's) text: made inert before
    # logship's own colours go around it.
    name = inert(str(doc.get("container.name") or doc.get("container.id", "-")[:12]))
    where = inert(str(doc.get("log.file.path") or doc.get("stream") or "-"))
    msg = inert(str(doc.get("message", "")))
    if not colour:
        return f"{name} {where} {msg}"
    sev = severity(doc)
    name_c = _NAME_COLOURS[zlib.crc32(name.encode()) % len(_NAME_COLOURS)]
    msg_c = BOLD_RED if sev == "error" else YELLOW if sev == "warn" else ""
    return f"{name_c}{name}{RESET} {DIM}{where}{RESET} {msg_c}{msg}{RESET if msg_c else ''}"


async def stream(ep: Endpoint, params: dict[str, str], out: TextIO, colour: bool) -> None:
    timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=None)
    async with ep.session(timeout) as s:
        async with s.get(ep.base + "/logs", params=params, headers={"Accept": "application/x-ndjson"}) as r:
            if r.status != 200:
                raise aiohttp.ClientResponseError(r.request_info, r.history, status=r.status,
                                                  message=inert((await r.text()).strip()))
            async for raw in r.content:
                if raw.strip():
                    out.write(format_line(orjson.loads(raw), colour) + "\n")
                    out.flush()


def cmd_tail(cfg: Config, args: argparse.Namespace) -> int:
    ep = endpoint(cfg, args)
    if ep is None:
        print("logship tail: LOGSHIP_HTTP_SOCKET is off; pass --url (and LOGSHIP_HTTP_TOKEN)", file=sys.stderr)
        return EXIT_CONFIG
    params = {k: v for k, v in (("container", args.container), ("level", args.level),
                                ("text", args.text or args.filter)) if v}
    colour = sys.stdout.isatty() if args.color is None else args.color
    try:
        asyncio.run(stream(ep, params, sys.stdout, colour))
    except KeyboardInterrupt:
        return EXIT_OK
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        print(f"logship tail: cannot read /logs from {ep.shown}: {error_text(exc)} "
              "(is `logship run` running with this state dir, and may you open its socket?)", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print("logship tail: the shipper closed the stream (stopped?)", file=sys.stderr)
    return EXIT_UNAVAILABLE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tail", help="follow the shipped lines live, in colour (from the running shipper's /logs)",
                       description="Prints `container  stream-or-file  message` for every line the running shipper "
                                   "ships; errors in red, warnings in yellow. Exit codes: 0 on Ctrl-C, 2 no address, "
                                   "3 the shipper is unreachable or stopped.")
    p.add_argument("filter", nargs="?", default="", help="only lines containing this text (case-insensitive)")
    p.add_argument("--container", default="", help="container name (substring or glob) or id prefix")
    p.add_argument("--level", default="", help="comma-separated log levels, e.g. error,critical")
    p.add_argument("--text", default="", help="same as FILTER")
    add_url_argument(p)
    p.add_argument("--color", "--colour", dest="color", action="store_true", default=None,
                   help="colour even when not a terminal")
    p.add_argument("--no-color", "--no-colour", dest="color", action="store_false", help="never colour")
    p.set_defaults(func=cmd_tail)
