"""The /logs tap's cost per line in the process stage: the encode path (documents and bulk
lines, what every line pays) alone, then with 100 subscribers connected and idle (their
container filter matches a quiet container) and 100 reading everything but slow (full
queues); and with the default bound (LOGSHIP_HTTP_LOGS_MAX_SUBSCRIBERS): 100 readers ask, the bound
admits some and refuses the rest, the admitted ones idle. Median of 7 rounds of 20 batches x 4096
lines; last line JSON (us per line)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # before bench/: its parsers.py is not the library

from shipper.config import ElasticsearchSettings, HttpSettings
from shipper.core.container import Container
from shipper.core.record import Record
from shipper.runtime.http import LogFilter, LogHub
from shipper.sinks.elasticsearch.sink import ElasticsearchSink
from shipper.transforms.enrich import Enricher

LINES, BATCHES, ROUNDS = 4096, 20, 7


def main() -> None:
    busy = Container(id="b" * 64, name="busy", image="img")
    enricher, sink = Enricher("host"), ElasticsearchSink(ElasticsearchSettings(setup=False))
    batches = [[Record(b"2026-12-01 10:00:00 INFO request %d served in 3 ms" % i, 1_764_583_200_000_000_000 + i,
                       "stdout", busy) for i in range(LINES)] for _ in range(BATCHES)]

    def per_line(hub: LogHub | None) -> float:
        t = time.process_time()
        for b in batches:
            for r in b:
                r.fields = {}
            docs = enricher.documents_json(b)
            if hub is not None and hub.active:
                hub.publish(b, docs)
            sink.encode_batch(b, docs)
        return (time.process_time() - t) / (LINES * BATCHES) * 1e6

    async def measure() -> dict[str, float]:
        idle = LogHub(max_subscribers=100)
        for i in range(100):
            idle.subscribe(LogFilter(container=f"quiet-{i}"))
        slow = LogHub(queue_lines=1000, max_subscribers=100)
        subs = [slow.subscribe(LogFilter()) for _ in range(100)]
        for s in subs:
            assert s is not None
            s.offer([b""] * 1000, 0, 1000)  # full: a reader that does not keep up
        bounded = LogHub(max_subscribers=HttpSettings().logs_max_subscribers)  # the default bound
        admitted = [s for s in (bounded.subscribe(LogFilter(container=f"quiet-{i}")) for i in range(100)) if s]
        got: dict[str, list[float]] = {"none": [], "idle_100": [], "slow_100": [], "idle_admitted": []}
        for _ in range(ROUNDS):  # alternated, so that the machine's noise hits all alike
            got["none"].append(per_line(None))
            got["idle_100"].append(per_line(idle))
            got["slow_100"].append(per_line(slow))
            got["idle_admitted"].append(per_line(bounded))
        res = {k: round(statistics.median(v), 3) for k, v in got.items()}
        res.update({"default_bound": bounded.max_subscribers, "admitted_of_100": len(admitted),
                    "refused_of_100": 100 - len(admitted)})
        return res

    res = asyncio.run(measure())
    res["idle_vs_none_pct"] = round((res["idle_100"] / res["none"] - 1) * 100, 1)
    res["slow_vs_none_pct"] = round((res["slow_100"] / res["none"] - 1) * 100, 1)
    res["idle_admitted_vs_none_pct"] = round((res["idle_admitted"] / res["none"] - 1) * 100, 1)
    res["loadavg_1m"] = os.getloadavg()[0]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
