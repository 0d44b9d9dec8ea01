"""Credentials inside URLs (`https://user:password@host`) masked wherever a URL is shown:
`logship config`, the start-up log, /health, error messages. One rule, applied to any
text, so a URL quoted inside an exception message is caught as well."""

from __future__ import annotations

import re

# scheme://userinfo@ -- userinfo stops at the first '/', '?', '#', whitespace or '@' (RFC 3986 §3.2).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/?#@\s]*)(?P<pw>:[^/?#@\s]*)?@")
MASK = "***"


def _mask(m: re.Match[str]) -> str:
    if m.group("pw") is None:  # `https://TOKEN@host`: the whole user part may be the secret
        return f"{m.group('scheme')}{MASK}@"
    return f"{m.group('scheme')}{m.group('user')}:{MASK}@"


def mask_credentials(text: str) -> str:
    """`text` with the password (or a lone user part) of every URL in it replaced by ***."""
    return _USERINFO.sub(_mask, text) if "@" in text else text


def error_text(exc: BaseException) -> str:
    """An exception as a log line or an answer shows it: its text with URL credentials masked,
    else its kind (a timeout's text is empty; `exc or ...` never falls back, an exception is truthy)."""
    return mask_credentials(str(exc)) or type(exc).__name__
