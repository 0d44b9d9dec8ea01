"""How the CLI reaches the running shipper's control plane (`logship tail`, `logship snapshot
--arm/--rules/--disarm`): its unix socket in the state dir by default, or `--url` over TCP with
LOGSHIP_HTTP_TOKEN as a bearer token (shipper/runtime/http.py decides who may do what)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import aiohttp

from shipper.config import Config

UNIX_BASE = "http://localhost"  # the Host a request over the socket names; the socket is not Host-checked


@dataclass(frozen=True)
class Endpoint:
    base: str  # what requests are made to
    socket: str  # unix socket path, or "" for TCP
    token: str
    shown: str  # for messages

    def session(self, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token and not self.socket else {}
        connector = aiohttp.UnixConnector(path=self.socket) if self.socket else None
        return aiohttp.ClientSession(timeout=timeout, headers=headers, connector=connector)


def endpoint(cfg: Config, args: argparse.Namespace) -> Endpoint | None:
    """`--url` (TCP + token) if given, else the control socket; None when there is neither."""
    if args.url:
        return Endpoint(args.url.rstrip("/"), "", cfg.http.token, args.url)
    path = cfg.control_socket()
    if path is None:
        return None
    return Endpoint(UNIX_BASE, str(path), "", f"unix:{path}")


def add_url_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="", help="reach the shipper over TCP at this base URL (needs LOGSHIP_HTTP_TOKEN) "
                                             "instead of its control socket (<state_dir>/control.sock)")
