"""`logship` command line. Each subcommand lives in shipper/cli/."""

from __future__ import annotations

import argparse
import logging
import sys

from shipper import config as config_mod
from shipper.cli import register_all
from shipper.cli.exit_codes import EXIT_CONFIG
from shipper.core.masking import mask_credentials


class MaskingFormatter(logging.Formatter):
    """The last line of defence: a URL with a password in it never reaches the log as it is,
    whichever message (an exception's text, a client library's) carried it."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_credentials(super().format(record))


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="logship", description="Ships container logs to Elasticsearch.")
    p.add_argument("--config", metavar="FILE", help="TOML config file (also LOGSHIP_CONFIG); env vars override it")
    register_all(p.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_mod.load(file=args.config)
    except config_mod.ConfigError as exc:
        print(f"logship: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(cfg.pipeline.log_level)
    try:
        return args.func(cfg, args)
    except config_mod.ConfigError as exc:  # settings only checked when used (e.g. the time zone)
        print(f"logship: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
