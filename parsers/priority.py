"""Syslog PRI -> facility/severity codes, names and the normalised ``log.level``.

All 192 valid PRI values are precomputed into ready-to-merge dicts, so the hot
path is one ``dict.update``.
"""

from __future__ import annotations

from typing import Any

# RFC 5424 section 6.2.1 table 1 (names as used by syslog(3) / rsyslog).
FACILITY_NAMES: tuple[str, ...] = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)

# RFC 5424 table 2 severities, spelled out.
SEVERITY_NAMES: tuple[str, ...] = (
    "emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug",
)

# Severity code -> normalised log.level (see parsers.levels).
SEVERITY_LEVELS: tuple[str, ...] = (
    "emergency", "alert", "critical", "error", "warning", "notice", "info", "debug",
)


def _fields(pri: int) -> dict[str, Any]:
    fac, sev = divmod(pri, 8)
    return {
        "log.syslog.priority": pri,
        "log.syslog.facility.code": fac,
        "log.syslog.facility.name": FACILITY_NAMES[fac],
        "log.syslog.severity.code": sev,
        "log.syslog.severity.name": SEVERITY_NAMES[sev],
        "log.level": SEVERITY_LEVELS[sev],
    }


PRI_FIELDS: tuple[dict[str, Any], ...] = tuple(_fields(p) for p in range(192))


def decode(pri: int) -> tuple[int, int]:
    """PRI -> (facility, severity)."""
    return divmod(pri, 8)


def encode(facility: int, severity: int) -> int:
    return facility * 8 + severity
