"""Number fields of a line (pid, port, size, line number): ``int()`` only for digit runs
that can be such a field.  Longer runs are dropped, not converted: no pid or byte count
has 19 digits (Elasticsearch's ``long`` stops there), and ``int()`` raises on 4,300+."""

from __future__ import annotations

import re
from ipaddress import ip_address
from typing import Any

MAX_DIGITS = 18


def small_int(digits: str) -> int | None:
    """``int(digits)`` for ASCII digits of a plausible field; None otherwise."""
    if len(digits) > MAX_DIGITS or not digits.isdigit() or not digits.isascii():
        return None
    return int(digits)


def put_int(out: dict[str, Any], key: str, digits: str | None) -> None:
    """``out[key] = int(digits)`` when it is such a number (else the key stays unset)."""
    if digits and len(digits) <= MAX_DIGITS and digits.isdigit() and digits.isascii():
        out[key] = int(digits)


_IS_IP: dict[str, bool] = {}  # client addresses repeat line after line: answer each once


def is_ip(text: str) -> bool:
    """An IPv4 or IPv6 address (what ECS ``source.ip`` may hold), not a host name."""
    r = _IS_IP.get(text)
    if r is None:
        r = _is_ip(text)
        if len(_IS_IP) >= 4096:  # bounded: arbitrary input must not grow it forever
            _IS_IP.clear()
        _IS_IP[text] = r
    return r


# Dotted-quad IPv4 as ipaddress reads it (0-255, no leading zeros): the common case, in one C call.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _is_ip(text: str) -> bool:
    if text.count(".") == 3 and text.replace(".", "").isdigit():
        return _IPV4.fullmatch(text) is not None
    if ":" not in text or len(text) > 45:
        return False
    try:
        ip_address(text)
    except ValueError:
        return False
    return True
