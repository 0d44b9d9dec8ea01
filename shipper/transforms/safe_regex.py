"""Regexes from operators (trigger rules, LOGSHIP_SNAPSHOT_MESSAGE_REGEX) run on every
untrusted log line, on the event loop: they are RE2 (google-re2), which matches in time
linear in the line, never backtracking (`(.*a){1,30}$x` took Python's re 31 s on one
26-byte line), with caps on the pattern, the memory of its automaton and the text it sees."""

from __future__ import annotations

from typing import Any

import re2

MAX_PATTERN_CHARS = 512
MAX_MEM_BYTES = 8 << 20  # RE2's automaton budget per pattern (a pattern needing more is refused)
MAX_TEXT_CHARS = 64 << 10  # a longer message is matched on its first 64 Ki characters


class RegexError(ValueError):
    """A pattern RE2 refuses, or one past the caps; the message says which and why."""


def _options() -> Any:
    o = re2.Options()
    o.max_mem = MAX_MEM_BYTES
    o.log_errors = False
    return o


class SafeRegex:
    __slots__ = ("pattern", "_re")

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise RegexError(f"regex longer than {MAX_PATTERN_CHARS} characters ({len(pattern)})")
        try:
            self._re = re2.compile(pattern, _options())
        except re2.error as exc:
            msg = exc.args[0] if exc.args else exc
            raise RegexError((msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg))
                             + " (RE2 syntax: no backreferences or lookaround)") from None
        self.pattern = pattern

    def search(self, text: str) -> bool:
        return self._re.search(text[:MAX_TEXT_CHARS]) is not None

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in self._re.finditer(text[:MAX_TEXT_CHARS]) if m.end() > m.start()]
