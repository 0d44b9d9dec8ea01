"""`logship config`: the effective settings, or the table of all of them."""

from __future__ import annotations

import argparse
import json

from shipper.cli.exit_codes import EXIT_OK
from shipper.config import Config, markdown_table


def cmd_config(cfg: Config, args: argparse.Namespace) -> int:
    print(markdown_table() if args.markdown else json.dumps(cfg.redacted(), indent=2, default=str))
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="print the effective settings (secrets masked)")
    p.add_argument("--markdown", action="store_true", help="print the table of every setting and its default")
    p.set_defaults(func=cmd_config)
