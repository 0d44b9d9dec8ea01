"""The `logship` subcommands, one module each. A module defines
`register(subparsers)` and sets `func(cfg, args) -> exit code` on its parser."""

from __future__ import annotations

import importlib

# Order is the order of `logship --help`.
COMMAND_MODULES = ("run", "setup", "check", "tail", "snapshot", "config_cmd")


def register_all(subparsers: object) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"shipper.cli.{name}").register(subparsers)
