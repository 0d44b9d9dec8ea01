"""Per-stage CPU cost of the shipper's hot path on the realistic mix (bench/mix.py), in process:
json-file decode -> Record -> multi-line -> parse -> enrich to JSON -> bulk encode.

Each stage runs over the whole mix by itself (its input prepared by the stage before it),
median of --runs, in microseconds of process CPU per input line. No Docker, no network: it
says where a line's CPU goes; bench/docker_source.py says what the whole shipper costs.
Prints human lines, then a last line of JSON: {"us_per_line": {stage: us}, "total_us", ...}.

    .venv/bin/python bench/stages.py [--lines 100000] [--runs 3] [--profile STAGE]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mix import describe, mix_lines
from shipper.config import ElasticsearchSettings
from shipper.core.container import Container
from shipper.core.record import Record
from shipper.runtime.pipeline import tune_gc
from shipper.sinks.elasticsearch.sink import ElasticsearchSink
from shipper.sources.docker.jsonfile import JsonFileDecoder
from shipper.transforms.enrich import Enricher
from shipper.transforms.multiline import MultilineStage

BATCH = 512


def json_file(lines: list[bytes]) -> bytes:
    """The lines as dockerd's json-file driver writes them, 1 us apart."""
    t0 = 1_700_000_000_000_000_000
    out = []
    for i, line in enumerate(lines):
        secs, frac = divmod(t0 + i * 1000, 1_000_000_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}".rstrip("0") + "Z"
        text = json.dumps(line.decode("utf-8", "replace") + "\n")
        out.append(b'{"log":%s,"stream":"stdout","time":"%s"}' % (text.encode(), stamp.encode()))
    return b"\n".join(out) + b"\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", default="", help="cProfile this stage once and print its top functions")
    args = ap.parse_args()
    mix = mix_lines(args.lines)
    print(describe(mix), flush=True)
    raw = json_file(mix)
    container = Container(id="0" * 64, name="bench", image="local/busybox:latest")
    sink = ElasticsearchSink(ElasticsearchSettings())
    enricher = Enricher("bench-host")

    def decode() -> list:
        d = JsonFileDecoder()
        out = []
        for i in range(0, len(raw), 64 * 1024):
            out += d.feed(raw[i:i + 64 * 1024])
        return out + d.flush()

    def records(lines: list) -> list[Record]:
        return [Record(data, ts, stream, container, 0, truncated=cut) for stream, ts, data, cut, _m in lines]

    def multiline(recs: list[Record]) -> list[Record]:
        stage = MultilineStage()
        out = []
        for i in range(0, len(recs), BATCH):
            out += stage.feed(recs[i:i + BATCH], 0.0)
        return out + stage.flush()

    def parse(recs: list[Record]) -> None:
        for r in recs:
            r.fields = {}
        for r in recs:
            enricher.parsed_fields(r)

    def enrich(recs: list[Record]) -> list[bytes]:  # the fields are cached on the records by parse()
        out = []
        for i in range(0, len(recs), BATCH):
            out += enricher.documents_json(recs[i:i + BATCH])
        return out

    def encode(recs: list[Record], docs: list[bytes]) -> list[bytes]:
        out = []
        for i in range(0, len(recs), BATCH):
            out += sink.encode_batch(recs[i:i + BATCH], docs[i:i + BATCH])
        return out

    tune_gc()  # as the shipper runs
    lines = decode()
    recs = records(lines)
    joined = multiline(recs)
    parse(joined)
    docs = enrich(joined)
    stages: dict[str, Callable[[], object]] = {
        "decode": decode,
        "record": lambda: records(lines),
        "multiline": lambda: multiline(recs),
        "parse": lambda: parse(joined),
        "enrich": lambda: enrich(joined),
        "encode": lambda: encode(joined, docs),
    }
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(stages[args.profile])
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    n = len(mix)
    result: dict[str, float] = {}
    for name, fn in stages.items():
        times = []
        for _ in range(args.runs):
            t0 = time.process_time()
            fn()
            times.append(time.process_time() - t0)
        result[name] = round(statistics.median(times) / n * 1e6, 3)
        print(f"{name:10} {result[name]:8.3f} us/line", flush=True)
    total = round(sum(result.values()), 3)
    load = os.getloadavg()[0]
    print(f"{'total':10} {total:8.3f} us/line ({total:.1f} CPU-s per million lines); {len(joined):,} documents; "
          f"load {load:.2f}")
    print(json.dumps({"us_per_line": result, "total_us": total, "lines": n, "documents": len(joined),
                      "load_avg_1m": round(load, 2)}))


if __name__ == "__main__":
    main()
