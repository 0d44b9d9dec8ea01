"""`logship` command line: run | config (more subcommands join as they are built)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from shipper import config as config_mod

EXIT_OK, EXIT_CONFIG = 0, 2


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def cmd_run(cfg: config_mod.Config, args: argparse.Namespace) -> int:
    from shipper.pipeline import run_forever
    logging.getLogger("logship").info("starting; settings: %s", json.dumps(cfg.redacted(), default=str))
    run_forever(cfg)
    return EXIT_OK


def cmd_config(cfg: config_mod.Config, args: argparse.Namespace) -> int:
    if args.markdown:
        print(config_mod.markdown_table())
    else:
        print(json.dumps(cfg.redacted(), indent=2, default=str))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="logship", description="Ships container logs to Elasticsearch.")
    p.add_argument("--config", metavar="FILE", help="TOML config file (also LOGSHIP_CONFIG); env vars override it")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the shipper in the foreground").set_defaults(func=cmd_run)
    c = sub.add_parser("config", help="print the effective settings (secrets masked)")
    c.add_argument("--markdown", action="store_true", help="print the table of every setting and its default")
    c.set_defaults(func=cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_mod.load(file=args.config)
    except config_mod.ConfigError as exc:
        print(f"logship: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _setup_logging(cfg.pipeline.log_level)
    return args.func(cfg, args)


if __name__ == "__main__":
    sys.exit(main())
