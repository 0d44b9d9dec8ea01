"""Time-boxed parser fuzzing with hypothesis: ``python bench/parsers_fuzz.py [seconds]``.

Inputs: random bytes, and lines of the public corpora (``../shared/eval``, read by path)
mutated by hypothesis (bytes inserted, runs of one character class repeated up to 200k
times, bytes flipped, lines spliced), parsed with auto-detection and every hint.  A failure
is an exception escaping ``parse()``, an internal error it caught (``logship.parse_error``
starting with ``internal:``), or one line taking over 1 s of CPU time.  Run it under ``nice``.
Prints a summary and a last line of JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import parsers
from tests.corpus import evaluate

HINTS = [None, *parsers.DATASETS, "syslog"]
RUNS = [b" ", b"\t", b"0", b"9", b"a", b"Z", b":", b"[", b"]", b"(", b"=", b'"', b"\\", b"-", b".", b"|", b",", b"<",
        b"{", b"\xc3\xa9", b"\xff", b"\x00", b"1 ", b"a=", b"[a] ", b"00:00:00 ", b"2024-01-01 "]


def seeds() -> list[bytes]:
    out: list[bytes] = []
    base = evaluate.eval_dir()
    for f in sorted(base.glob("*/*.jsonl")):
        out += [evaluate.raw_bytes(r) for r in evaluate.rows(f) if "line" in r or "line_b64" in r]
    for f in sorted((base / "loghub").glob("*/*_2k.log")):
        out += f.read_bytes().split(b"\n")[:200]
    return out


SEEDS = seeds()
stats: dict[str, Any] = {"lines": 0, "max_s": 0.0, "max_wall_s": 0.0, "max_line_len": 0, "failures": []}


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=2000))
    line = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(line)))
        if op == 0:
            line = line[:pos] + draw(st.binary(max_size=20)) + line[pos:]
        elif op == 1:
            run = draw(st.sampled_from(RUNS)) * draw(st.sampled_from([10, 1000, 20000, 200000]))
            line = line[:pos] + run + line[pos:]
        elif op == 2 and line:
            i = min(pos, len(line) - 1)
            line = line[:i] + bytes([draw(st.integers(0, 255))]) + line[i + 1:]
        elif op == 3:
            line = line[:pos] + draw(st.sampled_from(SEEDS))
        else:
            line = line[:pos]
    return line


@settings(max_examples=2000, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(lines(), st.sampled_from(HINTS))
def one(line: bytes, hint: str | None) -> None:
    t0, w0 = time.process_time(), time.perf_counter()
    try:
        out = parsers.parse(line, hint=hint)
        err = out.get("logship.parse_error", "")
        bad = err if err.startswith("internal:") else None
    except Exception as exc:  # noqa: BLE001 -- that is the finding
        bad = f"raised {type(exc).__name__}: {exc}"
    dt = time.process_time() - t0  # CPU time: on a shared machine wall time also counts the waiting
    stats["max_wall_s"] = max(stats["max_wall_s"], time.perf_counter() - w0)
    stats["lines"] += 1
    if dt > stats["max_s"]:
        stats["max_s"], stats["max_line_len"] = dt, len(line)
    if dt > 1.0:
        bad = f"slow: {dt:.2f}s"
    if bad is not None and len(stats["failures"]) < 20:
        stats["failures"].append({"hint": hint, "error": bad[:200], "line": line[:300].decode("latin-1")})


def main() -> None:
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 600.0
    end = time.monotonic() + budget
    rounds = 0
    while time.monotonic() < end:
        one()
        rounds += 1
    summary = {"seconds": budget, "rounds": rounds, "lines": stats["lines"], "max_cpu_s": round(stats["max_s"], 4),
               "max_wall_s": round(stats["max_wall_s"], 4),
               "max_s_line_len": stats["max_line_len"], "failures": stats["failures"]}
    print(f"{stats['lines']:,} lines in {budget:.0f} s; slowest {stats['max_s']:.3f} s "
          f"({stats['max_line_len']:,} bytes); failures: {len(stats['failures'])}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
