"""A realistic mix of log lines for the benchmarks: what containers actually print.

Drawn at bench time from the public corpora in ../shared/eval (read by path, never copied
into this repository; see its README for their licences) and from generated traffic (access
logs, JSON and logfmt application logs, Python/Java loggers with stack traces). Every family
has a fixed share of the lines (MIX); the same seed gives the same lines.

    from bench.mix import mix_lines, describe
    lines = mix_lines(100_000)          # list[bytes], no newlines
    describe(lines)                     # the shares per family, as printed by the benches
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections import Counter
from functools import cache
from pathlib import Path

# ../shared/eval beside the checkout (/work/main, /work/wt-x -> /work/shared/eval), or BENCH_EVAL_DIR
EVAL = Path(os.environ.get("BENCH_EVAL_DIR") or Path(__file__).resolve().parents[2] / "shared" / "eval")

# family -> share of lines. Access logs lead (web and ingress containers are the noisiest),
# then structured application logs, then language loggers (some with stack traces).
MIX: dict[str, float] = {
    "access": 0.30,       # nginx/apache combined+common (generated + corpus)
    "json": 0.20,         # JSON application logs (generated + corpus)
    "logfmt": 0.10,       # logfmt / key=value (generated + corpus)
    "syslog": 0.10,       # RFC 3164/5424 and syslog-file lines (loghub Linux, OpenSSH; syslog corpus)
    "logger": 0.20,       # Java/Python/Go loggers: loghub Hadoop, Spark, HDFS, Zookeeper, Android; redis; klog
    "stacktrace": 0.006,  # a multi-line trace, drawn whole (~8 physical lines: ~5% of lines)
    "free": 0.094,        # free text: message bodies without any header (loghub Content column)
}

_PATHS = ["/", "/api/v1/items", "/api/v1/items/{n}", "/api/v2/users/{n}/orders", "/static/app.{n}.js",
          "/healthz", "/login", "/search?q=term{n}&page=2", "/images/logo.png", "/cart/checkout"]
_AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
           "curl/8.4.0", "Go-http-client/1.1", "kube-probe/1.28",
           "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"]
_STATUS = [200] * 14 + [201, 204, 301, 302, 304, 400, 401, 403, 404, 404, 500, 502, 503]
_LEVELS = ["info"] * 6 + ["debug"] * 2 + ["warn", "error"]
_WORDS = ("request handled user order cache miss upstream timeout retry connection pool database query "
          "payment accepted session expired token refreshed worker started job finished queue").split()


def _jsonl(path: Path) -> list[dict]:
    rows = []
    for raw in path.read_text().splitlines():
        row = json.loads(raw)
        if "line_b64" not in row:
            rows.append(row)
    return rows


@cache
def _corpus() -> dict[str, list[str]]:
    """Real lines by family (single lines only; stack traces as their physical lines)."""
    apps, hub = EVAL / "apps", EVAL / "loghub"
    if not apps.is_dir():
        raise SystemExit(f"the eval corpora are missing: {EVAL}")

    def lines_of(name: str) -> list[str]:
        return [r["line"] for r in _jsonl(apps / name) if "line" in r and r.get("valid", True)]

    def hub_lines(system: str) -> list[str]:
        return [x for x in (hub / system / f"{system}_2k.log").read_text(errors="replace").splitlines() if x]

    def hub_content(system: str) -> list[str]:
        with open(hub / system / f"{system}_2k.log_structured.csv", newline="") as f:
            return [r["Content"] for r in csv.DictReader(f) if len(r["Content"]) > 20]

    syslog_rows = []
    for p in sorted((EVAL / "syslog").glob("*.jsonl")):
        syslog_rows += [r["line"] for r in _jsonl(p) if r.get("valid") and "line" in r and "\n" not in r["line"]]
    traces = []
    for r in _jsonl(apps / "multiline_stacktraces.jsonl"):
        traces.append(r["lines"][:-1])  # the last one is the ordinary line after the trace
    return {
        "access": lines_of("nginx_access.jsonl") + lines_of("apache_access.jsonl"),
        "json": [x for x in lines_of("json.jsonl") if x.lstrip().startswith("{")],
        "logfmt": lines_of("logfmt_keyvalue.jsonl"),
        "syslog": hub_lines("Linux") + hub_lines("OpenSSH") + syslog_rows,
        "logger": (hub_lines("Hadoop") + hub_lines("Spark") + hub_lines("HDFS") + hub_lines("Zookeeper")
                   + hub_lines("Android") + hub_lines("Apache") + lines_of("redis.jsonl") + lines_of("klog_glog.jsonl")
                   + lines_of("apache_error.jsonl") + lines_of("nginx_error.jsonl")),
        "free": hub_content("HDFS") + hub_content("Spark") + hub_content("Zookeeper") + hub_content("Hadoop"),
        "trace": traces,
    }


def _stamp(i: int) -> tuple[str, str, str]:
    s = i % 86400
    hh, mm, ss = s // 3600, s // 60 % 60, s % 60
    return (f"01/Dec/2026:{hh:02}:{mm:02}:{ss:02} +0000", f"2026-12-01T{hh:02}:{mm:02}:{ss:02}.{i % 1000:03}Z",
            f"2026-12-01 {hh:02}:{mm:02}:{ss:02},{i % 1000:03}")


def _generated(family: str, r: random.Random, i: int) -> str:
    clf, iso, py = _stamp(i)
    n = r.randrange(1, 99999)
    if family == "access":
        path = r.choice(_PATHS).format(n=n)
        ip = f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}"
        return (f'{ip} - - [{clf}] "{r.choice(["GET"] * 5 + ["POST"])} '
                f'{path} HTTP/1.1" {r.choice(_STATUS)} {r.randrange(20, 90000)} "-" "{r.choice(_AGENTS)}"')
    if family == "json":
        doc = {"time": iso, "level": r.choice(_LEVELS), "logger": f"app.{r.choice(_WORDS)}",
               "msg": " ".join(r.choice(_WORDS) for _ in range(r.randrange(3, 9))),
               "request_id": f"{r.getrandbits(64):016x}", "user_id": n, "duration_ms": round(r.random() * 900, 2)}
        return json.dumps(doc)
    if family == "logfmt":
        return (f'time={iso} level={r.choice(_LEVELS)} msg="{" ".join(r.choice(_WORDS) for _ in range(4))}" '
                f'component={r.choice(_WORDS)} trace_id={r.getrandbits(64):016x} took={r.randrange(1, 900)}ms')
    if family == "logger":
        lvl = r.choice(_LEVELS).upper()
        words = " ".join(r.choice(_WORDS) for _ in range(6))
        return f"{py} {lvl} [{r.choice(_WORDS)}.{r.choice(_WORDS)}] {words} id={n}"
    raise ValueError(family)


def _trace(r: random.Random, i: int) -> list[str]:
    """A generated Python or Java stack trace behind its logger line."""
    _, _, py = _stamp(i)
    if r.random() < 0.5:
        frames = [f'  File "/app/{r.choice(_WORDS)}.py", line {r.randrange(1, 900)}, in {r.choice(_WORDS)}\n'
                  f"    {r.choice(_WORDS)}()" for _ in range(r.randrange(2, 6))]
        body = "\n".join(frames).split("\n")
        return [f"{py} ERROR [worker] job failed", "Traceback (most recent call last):", *body,
                "KeyError: 'order_id'"]
    frames = [f"\tat com.example.{r.choice(_WORDS)}.{r.choice(_WORDS).title()}.run(App.java:{r.randrange(1, 900)})"
              for _ in range(r.randrange(3, 9))]
    return [f"{py} ERROR [main] c.e.Service - request failed", "java.lang.IllegalStateException: pool exhausted",
            *frames]


def mix_lines(n: int, seed: int = 1) -> list[bytes]:
    return [line for _, line in mix_with_families(n, seed)]


def mix_with_families(n: int, seed: int = 1) -> list[tuple[str, bytes]]:
    """n (family, line), each family drawn in its MIX share; corpus and generated lines half
    and half within a family (free text and syslog from the corpora only). Stack traces come whole."""
    r = random.Random(seed)
    corpus = _corpus()
    families = list(MIX)
    weights = [MIX[f] for f in families]
    out: list[tuple[str, str]] = []
    i = 0
    while len(out) < n:
        fam = r.choices(families, weights)[0]
        i += 1
        if fam == "stacktrace":
            trace = r.choice(corpus["trace"]) if r.random() < 0.3 else _trace(r, i)
            out += [(fam, x) for x in trace]
        elif fam in ("syslog", "free") or r.random() < 0.5:
            out.append((fam, r.choice(corpus[fam])))
        else:
            out.append((fam, _generated(fam, r, i)))
    return [(f, x.encode("utf-8", "surrogateescape").replace(b"\n", b" ")) for f, x in out[:n]]


def shares(n: int = 100_000, seed: int = 1) -> dict[str, float]:
    """The share of each family in the physical lines (traces count every line)."""
    counts = Counter(f for f, _ in mix_with_families(n, seed))
    return {f: round(counts[f] / n, 3) for f in MIX}


def describe(lines: list[bytes], seed: int = 1) -> str:
    mean = sum(map(len, lines)) / max(1, len(lines))
    text = ", ".join(f"{k} {v:.1%}" for k, v in shares(min(len(lines), 100_000), seed).items())
    return f"mix of {len(lines):,} lines, mean {mean:.0f} bytes; share of lines: {text}"


if __name__ == "__main__":
    ls = mix_lines(20)
    print(describe(ls))
    for x in ls:
        print(x.decode(errors="replace")[:160])
