"""`logship run`: the shipper in the foreground."""

from __future__ import annotations

import argparse
import json
import logging

from shipper.cli.exit_codes import EXIT_OK
from shipper.config import Config


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    from shipper.runtime.pipeline import run_forever
    logging.getLogger("logship").info("starting; settings: %s", json.dumps(cfg.redacted(), default=str))
    run_forever(cfg)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the shipper in the foreground (SIGTERM flushes and exits)")
    p.set_defaults(func=cmd_run)
