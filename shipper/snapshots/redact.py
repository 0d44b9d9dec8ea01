"""Scrubbing secrets out of syscall data excerpts before they leave the shipper.

Patterns work on bytes (excerpts are raw I/O, often not valid UTF-8) and replace the
secret, keeping the key, so a reader still sees *that* a password was sent."""

from __future__ import annotations

import re
from typing import Iterable

MASK = b"***"

# key=value / key: value / "key": "value" for secret-looking keys.
_KEYS = (rb"pass(?:word|wd)?|pwd|secret|token|access[_-]?token|refresh[_-]?token|api[_-]?key|apikey"
         rb"|client[_-]?secret|private[_-]?key")
DEFAULT_PATTERNS: tuple[tuple[str, bytes], ...] = (
    ("authorization", rb"(?i)(\b(?:proxy-)?authorization:[ \t]*)[^\r\n]+"),
    ("bearer", rb"(?i)(\bbearer[ \t]+)[A-Za-z0-9._~+/=-]+"),
    ("secret-key",
     rb"(?i)([\"']?\b(?:" + _KEYS + rb")[\"']?[ \t]*[=:][ \t]*[\"']?)"
     rb"(?!(?i:yes|no|true|false|null|none)\b)[^\"'&\s;,]+"),
    ("cookie", rb"(?i)(\b(?:set-)?cookie:[ \t]*)[^\r\n]+"),
    ("aws-key", rb"()\bAKIA[0-9A-Z]{16}\b"),
)


class Redactor:
    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.patterns: list[tuple[str, re.Pattern[bytes]]] = [(n, re.compile(p)) for n, p in DEFAULT_PATTERNS]
        for i, p in enumerate(extra):
            try:
                self.patterns.append((f"custom{i}", re.compile(b"()" + p.encode())))
            except re.error as exc:
                raise ValueError(f"redact pattern {p!r}: {exc}") from None

    def scrub(self, data: bytes, *, after_mysql_greeting: bool = False) -> tuple[bytes, list[str]]:
        """(scrubbed data, names of the rules that fired)."""
        fired: list[str] = []
        if after_mysql_greeting or is_mysql_handshake_response(data):
            # The client's reply to a greeting carries the user and the auth response
            # (a password hash, or the cleartext password with some plugins): keep only the header.
            return data[:4] + b"<mysql auth packet redacted>", ["mysql-auth"]
        for name, pat in self.patterns:
            data, n = pat.subn(lambda m: m.group(1) + MASK, data)
            if n:
                fired.append(name)
        return data, fired


def is_mysql_handshake_response(data: bytes) -> bool:
    """A MySQL HandshakeResponse41 on its own: header length matching the bytes, sequence
    1, CLIENT_PROTOCOL_41 and CLIENT_SECURE_CONNECTION capability bits, 23 zero filler bytes."""
    if len(data) < 36 or data[3] != 1:
        return False
    length = data[0] | data[1] << 8 | data[2] << 16
    if length + 4 < len(data) or length < 32:
        return False
    caps = int.from_bytes(data[4:8], "little")
    return bool(caps & 0x200) and bool(caps & 0x8000) and data[13:36] == bytes(23)
