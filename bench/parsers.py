"""Parser throughput bench.

RFC 5424: ours (``parsers.parse(line, hint="syslog")``) vs the PyPI peer
``syslog-rfc5424-parser`` on the same valid RFC 5424 lines from
``../shared/eval/syslog`` repeated to ~200k lines, same process, median of 3.
Mixed: auto-detect + parse over app-format lines (shared/eval/apps + loghub),
also per detected format, and with ``want_datetime=False`` (the shipper's call).

Rates are lines per second of this process's CPU time (``time.process_time``):
"on one core", and not skewed when other jobs share the machine's cores
(wall-clock rates are printed too).  Ours and the peer are measured the same way.

Prints human lines, then a last line of JSON:
``{"rfc5424_lps", "peer_lps", "ratio", "mixed_lps", "mixed_nodt_lps", "per_format_lps", ...}``.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import parsers


def eval_dir() -> Path:
    return Path(os.environ.get("LOGSHIP_EVAL_DIR") or ROOT.parent / "shared" / "eval")


def _rows(path: Path):
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def rfc5424_lines(target: int) -> list[str]:
    base = [r["line"] for f in sorted((eval_dir() / "syslog").glob("*.jsonl")) for r in _rows(f)
            if r.get("format") == "rfc5424" and r["valid"] and "line" in r
            and r["line"].encode("utf-8", "surrogateescape").decode("utf-8", "replace") == r["line"]]
    return (base * (target // len(base) + 1))[:target]


def mixed_lines(target: int) -> list[bytes]:
    base: list[bytes] = []
    for f in sorted((eval_dir() / "apps").glob("*.jsonl")):
        for r in _rows(f):
            if "line" in r:
                base.append(r["line"].encode("utf-8", "surrogateescape"))
    for system_dir in sorted((eval_dir() / "loghub").iterdir()):
        if system_dir.is_dir():
            data = (system_dir / f"{system_dir.name}_2k.log").read_bytes()
            base += data.split(b"\n")[:500]
    return (base * (target // len(base) + 1))[:target]


WALL: dict[str, float] = {}


def lps(fn, lines, runs: int = 3, name: str = "") -> float:
    """Median over ``runs`` of lines per CPU second (wall-clock median kept in WALL[name])."""
    rates, walls = [], []
    for _ in range(runs):
        t0, w0 = time.process_time(), time.perf_counter()
        for line in lines:
            fn(line)
        rates.append(len(lines) / max(time.process_time() - t0, 1e-9))
        walls.append(len(lines) / (time.perf_counter() - w0))
    if name:
        WALL[name] = statistics.median(walls)
    return statistics.median(rates)


def per_format(lines: list[bytes]) -> dict[str, float]:
    """Lines/s for each detected dataset of the mixed corpus (want_datetime=False)."""
    groups: dict[str, list[bytes]] = collections.defaultdict(list)
    for line in lines:
        groups[parsers.parse(line)["event.dataset"]].append(line)
    parse = parsers.parse
    return {ds: lps(lambda line: parse(line, want_datetime=False), ls)
            for ds, ls in sorted(groups.items(), key=lambda kv: -len(kv[1]))}


def main() -> None:
    n = int(os.environ.get("BENCH_LINES", "200000"))
    lines = rfc5424_lines(n)
    parse = parsers.parse
    lps(lambda line: parse(line, hint="syslog"), lines[:20000], runs=1)  # warm-up (caches, allocator)
    ours = lps(lambda line: parse(line, hint="syslog"), lines, name="rfc5424")
    print(f"rfc5424 ours : {ours:12,.0f} lines/s over {len(lines):,} lines (str input, hint='syslog'; "
          f"wall {WALL['rfc5424']:,.0f})")
    ours_nodt = lps(lambda line: parse(line, hint="syslog", want_datetime=False), lines)
    print(f"rfc5424 ours : {ours_nodt:12,.0f} lines/s (str input, want_datetime=False)")
    b_lines = [line.encode("utf-8") for line in lines]
    ours_bytes = lps(lambda line: parse(line, hint="syslog"), b_lines)
    print(f"rfc5424 ours : {ours_bytes:12,.0f} lines/s (bytes input)")
    ours_auto = lps(parse, b_lines)
    print(f"rfc5424 ours : {ours_auto:12,.0f} lines/s (bytes input, auto-detect)")
    peer = None
    try:
        from syslog_rfc5424_parser import SyslogMessage

        def peer_parse(line):
            try:
                return SyslogMessage.parse(line)
            except Exception:  # noqa: BLE001 - the peer rejects some valid lines; count them as handled
                return None

        peer_lines = lines[: max(20000, n // 10)]  # the peer is slow: a slice gives the same rate
        peer = lps(peer_parse, peer_lines, name="peer")
        print(f"rfc5424 peer : {peer:12,.0f} lines/s over {len(peer_lines):,} lines (syslog-rfc5424-parser; "
              f"wall {WALL['peer']:,.0f})")
    except ImportError:
        print("rfc5424 peer : syslog-rfc5424-parser not installed")
    mixed = mixed_lines(n)
    mixed_rate = lps(parse, mixed, name="mixed")
    print(f"mixed auto   : {mixed_rate:12,.0f} lines/s over {len(mixed):,} lines (apps + loghub, bytes; "
          f"wall {WALL['mixed']:,.0f})")
    mixed_nodt = lps(lambda line: parse(line, want_datetime=False), mixed)
    print(f"mixed auto   : {mixed_nodt:12,.0f} lines/s (want_datetime=False, as the shipper calls it)")
    formats = per_format(mixed)
    for ds, rate in formats.items():
        print(f"  {ds:16} {rate:12,.0f} lines/s")
    result = {
        "rfc5424_lps": round(ours),
        "rfc5424_bytes_lps": round(ours_bytes),
        "rfc5424_auto_lps": round(ours_auto),
        "peer_lps": round(peer) if peer else None,
        "ratio": round(ours / peer, 2) if peer else None,
        "mixed_lps": round(mixed_rate),
        "rfc5424_nodt_lps": round(ours_nodt),
        "ratio_nodt": round(ours_nodt / peer, 2) if peer else None,
        "mixed_nodt_lps": round(mixed_nodt),
        "mixed_wall_lps": round(WALL["mixed"]),
        "ratio_wall": round(WALL["rfc5424"] / WALL["peer"], 2) if peer else None,
        "per_format_lps": {ds: round(r) for ds, r in formats.items()},
        "clock": "process_time",
        "lines": n,
        "python": sys.version.split()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
