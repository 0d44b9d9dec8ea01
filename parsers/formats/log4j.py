"""Log4j / Logback / Spring Boot style lines (and their Hadoop-family cousins)::

    2024-01-01 12:00:00,123 ERROR [thread] com.example.Cls - msg
    2024-01-01T12:00:00.123+01:00  WARN 4242 --- [main] c.e.Cls : msg
    2015-07-29 17:41:44,747 - INFO  [thread:Cls@77] - msg      (ZooKeeper)
    2015-10-18 18:01:47,978 INFO [main] org.apache.Cls: msg    (Hadoop)
    17/06/09 20:10:40 INFO spark.Cls: msg                      (Spark: yy/MM/dd)
    081109 203615 148 INFO dfs.DataNode: msg                   (HDFS: yyMMdd HHmmss pid)

A logger is taken only when it is dotted (``a.b.C``, ``Outer$Inner``) and followed
by `` - ``, `` : `` or ``:`` (so ``Error: disk full`` stays a message).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from .. import levels
from ..numbers import put_int
from ..stamp_cache import MinuteCache, at
from ..timestamps import ISO_PATTERN, build, set_iso_groups

_LEVEL = r"(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|SEVERE|CRITICAL|NOTICE|trace|debug|info|warn|warning|error|fatal)"
# After the stamp: [sep] [thread] LEVEL [pid ---] [thread] [sep] [logger sep] msg.
# The logger is possessive (no backtracking): its first char outside [\w-] must
# be "." or "$", and it runs to the first char outside [\w$.\-@].
TAIL = re.compile(
    r"(?: +-)? +(?:\[([^\]]*)\] +)?" + _LEVEL + r" +(?:([0-9]+) +)?(?:-{1,3} +)?(?:\[(.*?)\]:? +)?(?:-+ +)?"
    r"(?:([\w\-]*+[.$][\w$.\-@]*+) (?:-|:) +|([\w\-]*+[.$][\w$.\-@]*+): +)?(.*)",
    re.DOTALL,
)
_ISO = re.compile(ISO_PATTERN)
_SHORT = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")  # Spark
_COMPACT = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{2}) ([0-9]{2})([0-9]{2})([0-9]{2}) ([0-9]+)")  # HDFS


def fill_tail(out: dict[str, Any], m: re.Match[str], line: str, pid: str | None = None) -> dict[str, Any]:
    thread1, level, pid2, thread2, logger1, logger2, msg = m.groups()
    out["message"] = msg
    out["event.dataset"] = "log4j"
    out["event.original"] = line
    levels.set_token(out, level)
    thread = thread1 or thread2
    if thread:
        out["process.thread.name"] = thread
    logger = logger1 or logger2
    if logger:
        out["log.logger"] = logger
    pid = pid or pid2
    put_int(out, "process.pid", pid)
    return out


def parse_after_iso(line: str, out: dict[str, Any], pos: int) -> dict[str, Any] | None:
    """Tail match for a line whose ISO stamp (already in ``out``) ends at ``pos``."""
    m = TAIL.match(line, pos)
    return None if m is None else fill_tail(out, m, line)


def _spark_minute(k: str) -> tuple[int, int, int, int, int] | None:
    # "yy/MM/dd HH:mm"
    if k[2] == "/" and k[5] == "/" and k[8] == " " and k[11] == ":" and k.isascii():
        f = (k[:2], k[3:5], k[6:8], k[9:11], k[12:14])
        if all(x.isdigit() for x in f):
            return 2000 + int(f[0]), int(f[1]), int(f[2]), int(f[3]), int(f[4])
    return None


def _hdfs_minute(k: str) -> tuple[int, int, int, int, int] | None:
    # "yyMMdd HHmm"
    if k[6] == " " and k.isascii() and k[:6].isdigit() and k[7:11].isdigit():
        return 2000 + int(k[:2]), int(k[2:4]), int(k[4:6]), int(k[7:9]), int(k[9:11])
    return None


_SPARK_MINUTES = MinuteCache(_spark_minute)
_HDFS_MINUTES = MinuteCache(_hdfs_minute)


def parse(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    """Spark and HDFS stamps take a cached fast path; everything else (and any
    line the fast path is unsure of) the general one."""
    n = len(line)
    pid = None
    if n > 17 and line[2] == "/":
        e = _SPARK_MINUTES[line[:14]]
        ss = line[15:17]
        pos = 17
    elif n > 15 and line[6] == " ":
        e = _HDFS_MINUTES[line[:11]]
        ss = line[11:13]
        j = pos = 14
        while j < n and "0" <= line[j] <= "9":
            j += 1
        if j == pos or line[13] != " ":
            e = None
        pid = line[pos:j]
        pos = j
    else:
        e = None
    if e is None or not (ss.isdigit() and ss.isascii()) or (pid is None and line[14] != ":"):
        return _parse_general(line, source_time, tz)
    t = TAIL.match(line, pos)
    if t is None:
        return None
    r = at(e, int(ss), 0, tz)
    if r is None:
        return None
    return fill_tail({"logship.timestamp_ns": r}, t, line, pid)


def _parse_general(line: str, source_time: datetime | None, tz: tzinfo) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    m = _ISO.match(line)
    if m is not None:
        if not set_iso_groups(out, m.groups(), tz):
            return None
        return parse_after_iso(line, out, m.end())
    pid = None
    m = _SHORT.match(line)
    if m is not None:
        yy, mo, d, hh, mm, ss = m.groups()
    else:
        m = _COMPACT.match(line)
        if m is None:
            return None
        yy, mo, d, hh, mm, ss, pid = m.groups()
    r = build(2000 + int(yy), int(mo), int(d), int(hh), int(mm), int(ss), 0, tz)
    t = TAIL.match(line, m.end())
    if r is None or t is None:
        return None
    out["logship.timestamp_ns"] = r
    return fill_tail(out, t, line, pid)
