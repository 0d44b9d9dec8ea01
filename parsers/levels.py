"""Log level normalisation and the keyword heuristic for unknown formats.

Normalised levels: emergency, alert, critical, error, warning, notice, info,
debug, trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_LEVELS: dict[str, str] = {}


def _add(level: str, *words: str) -> None:
    for w in words:
        _LEVELS[w] = level


_add("emergency", "emerg", "emergency", "panic", "p")
_add("alert", "alert", "a")
_add("critical", "crit", "critical", "fatal", "fatal error", "f", "c", "severe", "dpanic", "ftl",
     "parse error", "core error", "compile error")
_add("error", "err", "error", "eror", "e", "erro", "catchable fatal error", "recoverable fatal error",
     "user error", "failure")
_add("warning", "warn", "warning", "wrn", "w", "user warning", "core warning", "compile warning")
_add("notice", "notice", "n", "deprecated", "strict standards", "user notice", "user deprecated")
_add("info", "info", "inf", "information", "informational", "i", "config")
_add("debug", "debug", "dbg", "d", "verbose", "v", "fine", "finer", "debug1", "debug2", "debug3")
_add("trace", "trace", "trc", "t", "finest")

# Fast path: exact-case lookups for the spellings seen most often.
_EXACT: dict[str, str] = {}
for _w, _l in list(_LEVELS.items()):
    for _v in (_w, _w.upper(), _w.title()):
        _EXACT[_v] = _l


def normalize(word: str | None) -> str | None:
    """Map a level word (any case, e.g. ``WARN``, ``Err``, ``I``) to a normalised level."""
    if not word:
        return None
    lvl = _EXACT.get(word)
    if lvl is None:
        lvl = _LEVELS.get(word.strip().lower())
    return lvl


def set_token(out: dict[str, Any], word: str | None) -> None:
    """`log.level` from a line's own level token, when it names one."""
    lvl = normalize(word)
    if lvl is not None:
        out["log.level"] = lvl


# Level tokens of a free-form header (parsers.formats.generic).  Full words count in any
# case; abbreviations and single letters only in upper case, where they cannot be
# ordinary words of a message ("I", "a", "err").
_HEADER_WORDS = ("emergency", "emerg", "alert", "critical", "crit", "fatal", "severe", "failure", "error", "err",
                 "warning", "warn", "notice", "info", "information", "informational", "debug", "trace", "verbose")
_HEADER_UPPER = ("EMERG", "CRIT", "ERR", "EROR", "ERRO", "WRN", "INF", "DBG", "TRC", "FTL")
_HEADER_LETTERS = ("F", "C", "E", "W", "N", "I", "D", "V", "T")
HEADER: dict[str, str] = {}
for _w in _HEADER_WORDS:
    for _v in (_w, _w.upper(), _w.title()):
        HEADER[_v] = _LEVELS[_w]
for _w in _HEADER_UPPER + _HEADER_LETTERS:
    HEADER[_w] = _LEVELS[_w.lower()]


def normalize_number(value: int) -> str | None:
    """Numeric levels: syslog severities 0-7, or bunyan/pino style 10..60."""
    if 0 <= value <= 7:
        return ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")[value]
    if value >= 10:
        return {10: "trace", 20: "debug", 30: "info", 40: "warning", 50: "error", 60: "critical"}.get(
            value // 10 * 10, "critical" if value > 60 else None
        )
    return None


# Checked most severe first; word-bounded and case-insensitive so ERROR, Error,
# err all count but "stderr" or "errors_total" do not.  Each regex only runs
# when a cheap substring test on the lowercased text says it might match.
_EMERGENCY = re.compile(r"\b(?:emerg|emergency|panic)\b", re.IGNORECASE)
_CRITICAL = re.compile(r"\b(?:fatal|crit|critical)\b", re.IGNORECASE)
_ERROR = re.compile(r"\b(?:err|error|exception)\b", re.IGNORECASE)
_WARNING = re.compile(r"\b(?:warn|warning)\b", re.IGNORECASE)
_NOTICE = re.compile(r"\bnotice\b", re.IGNORECASE)
_INFO = re.compile(r"\binfo\b", re.IGNORECASE)
_DEBUG = re.compile(r"\b(?:debug|trace)\b", re.IGNORECASE)


def _heuristic_py(text: str) -> str | None:
    """Guess a level from keywords in free text (most severe keyword wins). Written out
    test by test, not as a loop over a table: it runs on every line of unknown format,
    and the loop's overhead was half its cost."""
    if len(text) > 4096:
        text = text[:4096]  # bound the work on huge lines
    low = text.lower()
    if ("emerg" in low or "panic" in low) and _EMERGENCY.search(text):
        return "emergency"
    if ("fatal" in low or "crit" in low) and _CRITICAL.search(text):
        return "critical"
    if ("err" in low or "exception" in low) and _ERROR.search(text):
        return "error"
    if "warn" in low and _WARNING.search(text):
        return "warning"
    if "notice" in low and _NOTICE.search(text):
        return "notice"
    if "info" in low and _INFO.search(text):
        return "info"
    if ("debug" in low or "trace" in low) and _DEBUG.search(text):
        return "debug"
    return None


# The C version (parsers/_keywords.c, built by setup.py) does ASCII text in one pass and
# hands other text to the Python one; without a compiler the Python one does all.
try:
    from parsers import _keywords
except ImportError:  # pragma: no cover - built on every supported install; the fallback still works
    heuristic: Callable[[str], str | None] = _heuristic_py
else:
    _keywords.set_fallback(_heuristic_py)
    heuristic = _keywords.heuristic
