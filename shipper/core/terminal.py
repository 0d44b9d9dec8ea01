"""Making container bytes inert before they reach a terminal.

A container's log line may carry escape sequences aimed at whoever reads it: OSC 52
writes the reader's clipboard, ESC[2J forges a clean screen, OSC 8 hides a link target,
a bare CR overwrites what came before, bidi overrides reorder what is shown. Every place
that prints container text to a person (`logship tail`, the plain-text /logs stream,
snapshot rendering) passes it through `inert()` first; the colours logship adds itself
are put around the result afterwards, so they stay.

Shown escaped: C0 controls except tab (`\\x1b`, `\\n`, `\\r`, ...), DEL, C1 controls
(U+0080..U+009F, which some terminals read as 8-bit CSI/OSC) and the bidi embedding,
override and isolate characters with the directional marks (`\\u202e`, ...)."""

from __future__ import annotations

import re

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f" + _BIDI + "]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """`text` with every character a terminal would act on shown escaped; the rest unchanged.
    A backslash is left as it is: the escapes are for a reader, not a round trip."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text
