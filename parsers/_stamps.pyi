"""Type stub of the C extension parsers/_stamps.c (built by setup.py)."""

from collections.abc import Callable
from datetime import datetime, tzinfo

def to_datetime(ns: int, zone: tzinfo = ..., /) -> datetime: ...
def set_fallback(fn: Callable[[int, tzinfo], datetime], /) -> None: ...
