"""Record -> document: field names, times, parse results, flags."""

from __future__ import annotations

import json
import time
from typing import Any

from shipper.core.container import Container
from shipper.core.timefmt import iso_ns
from shipper.transforms.enrich import Enricher
from shipper.core.record import FILE, SYSLOG, Record

C = Container(id="c" * 64, name="web", image="local/busybox",
              labels={"com.docker.compose.project": "shop", "com.docker.compose.service": "web"})


def test_iso_ns_keeps_nanoseconds():
    assert iso_ns(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert iso_ns(0) == "1970-01-01T00:00:00.000000000Z"


def test_document_has_the_design_fields():
    doc = Enricher("h1").document(Record(message=b"hello", time_ns=1_700_000_000_000_000_001, stream="stderr",
                                         container=C))
    assert doc["@timestamp"] == "2023-11-14T22:13:20.000000001Z"
    assert doc["message"] == "hello" and doc["stream"] == "stderr" and doc["host.name"] == "h1"
    assert doc["container.id"] == C.id and doc["container.name"] == "web"
    assert doc["container.image.name"] == "local/busybox"


def test_write_time_is_the_timestamp_and_the_line_time_is_kept():
    line = b"2024-01-01 12:00:00,123 ERROR [main] com.shop.Cart - payment failed"
    doc = Enricher("h").document(Record(message=line, time_ns=1_700_000_000_000_000_000, stream="stdout", container=C))
    assert doc["@timestamp"].startswith("2023-11-14T22:13:20")
    assert doc["logship.line_timestamp"] == "2024-01-01T12:00:00.123000000Z"
    assert doc["log.level"] == "error"


def test_syslog_datagram_is_parsed_as_syslog_and_the_record_process_wins():
    r = Record(message=b"<155>Jan  2 03:04:05 app[7]: db down", time_ns=1, stream=SYSLOG, container=C,
               source="ebpf", pid=4242, tid=4243, comm="app")
    doc = Enricher("h").document(r)
    assert doc["log.syslog.facility.code"] == 19 and doc["log.syslog.severity.code"] == 3
    assert doc["process.pid"] == 4242 and doc["process.thread.id"] == 4243


def test_invalid_utf8_and_flags_are_kept():
    r = Record(message=b"bad \xff\xfe bytes", time_ns=1, stream=FILE, container=C, path="/var/log/app.log",
               truncated=True, partial_merged=True)
    doc = Enricher("h").document(r)
    assert "\ufffd" in doc["message"]
    assert doc["log.file.path"] == "/var/log/app.log"
    assert doc["logship.truncated"] is True and doc["logship.partial_merged"] is True


def test_doc_id_is_deterministic_and_distinguishes_position():
    a = Record(message=b"x", time_ns=5, stream="stdout", container=C)
    b = Record(message=b"different text", time_ns=5, stream="stdout", container=C)
    assert a.doc_id() == b.doc_id()  # same position in the same stream: the same document
    assert a.doc_id() != Record(message=b"x", time_ns=5, stream="stdout", container=C, seq=1).doc_id()
    assert a.doc_id() != Record(message=b"x", time_ns=5, stream="stderr", container=C).doc_id()


def test_snapshot_id_becomes_a_field_and_does_not_stop_parsing():
    r = Record(message=b"2024-01-01 12:00:00,123 ERROR [main] a.B - Database error", time_ns=1, stream=FILE,
               container=C, source="ebpf", pid=1, tid=1, path="/var/log/app.log", snapshot_id="S9")
    doc = Enricher("h").document(r)
    assert doc["logship.snapshot.id"] == "S9" and doc["log.level"] == "error" and doc["message"] == "Database error"


def test_document_json_has_the_document_fields_without_duplicate_keys():
    import json

    e = Enricher("h1")
    plain = Record(message=b"hello", time_ns=1_700_000_000_000_000_001, stream="stderr", container=C, seq=3)
    # parsed fields named like shared ones (parsers prefix them today): the shared values win, each key once
    clash = Record(message=b"m", time_ns=2, stream="stdout", container=C)
    clash.fields = {"message": "m", "stream": "mine", "host.name": "other", "container.name": "x"}
    ebpf = Record(message=b"x", time_ns=3, stream=FILE, container=C, source="ebpf", pid=1, tid=2, comm="a", path="/l")
    flagged = Record(message=b"f", time_ns=1_700_000_000_999_999_999, stream="stdout", container=C, truncated=True,
                     partial_merged=True, snapshot_id="s1")
    stamped = Record(message=b'{"@timestamp":"2020-01-01T00:00:00Z","msg":"hi","level":"warn"}', time_ns=10**18,
                     stream="stdout", container=C)
    for r in (plain, clash, ebpf, flagged, stamped, plain):  # twice: the second time from the cache
        raw = e.document_json(r)
        pairs = json.loads(raw, object_pairs_hook=lambda kv: kv)
        assert len(pairs) == len({k for k, _ in pairs})
        assert dict(pairs) == e.document(r)
        if r is not clash:  # (a clashing key sits where document()'s update left it)
            assert pairs == list(e.document(r).items())  # the same fields in the same order
        assert dict(pairs)["@timestamp"] == iso_ns(r.time_ns)  # the write time, never the line's own
    batch = [plain, clash, ebpf, plain, flagged, stamped, plain, ebpf]  # runs of streams interleaved
    assert e.documents_json(batch) == [e.document_json(r) for r in batch]
    unparsed = Record(message=b"\xffraw", time_ns=4, stream="stdout", container=C)
    e2 = Enricher("h1", parse=False)
    assert json.loads(e2.document_json(unparsed)) == e2.document(unparsed)
    assert e2.document(unparsed)["message"] == "\ufffdraw"
    assert json.loads(e.document_json(clash))["stream"] == "stdout"
    C.name = "renamed"
    try:
        assert json.loads(e.document_json(plain))["container.name"] == "renamed"
    finally:
        C.name = "web"


def test_bulk_action_carries_the_records_doc_id_and_day_index():
    from shipper.config import ElasticsearchSettings
    from shipper.sinks.elasticsearch.sink import ElasticsearchSink
    sink = ElasticsearchSink(ElasticsearchSettings(index_prefix="pfx"))
    for r in (Record(message=b"x", time_ns=1_700_000_000_123_456_789, stream="stdout", container=C, seq=11),
              Record(message=b"y", time_ns=5, stream="file", container=C, source="ebpf", path="/var/log/a.log")):
        action, doc, end = sink.encode_json(r, b'{"message":"x"}').split(b"\n")
        day = time.strftime("%Y.%m.%d", time.gmtime(r.time_ns // 10**9))
        assert json.loads(action) == {"create": {"_index": "pfx-" + day, "_id": r.doc_id()}}
        assert doc == b'{"message":"x"}' and end == b""
        assert len(r.doc_id()) == 16 + 16 + 1 + len(f"{r.seq:x}")
    # A batch: the index and the id's stream part follow each record across days and streams.
    other = Container(id="b" * 64, name="other", image="img")
    batch = [Record(message=b"x", time_ns=t, stream=s, container=c, source=src, path=p, seq=q)
             for q, (t, s, c, src, p) in enumerate([
                 (86_400 * 10**9 - 1, "stdout", C, "docker", None), (86_400 * 10**9, "stdout", C, "docker", None),
                 (86_400 * 10**9, "stderr", C, "docker", None), (5, "stderr", other, "docker", None),
                 (5, "file", C, "ebpf", "/a.log"), (5, "file", C, "ebpf", "/b.log"), (5, "file", C, "ebpf", "/b.log")])]
    docs = [b'{"n":%d}' % i for i in range(len(batch))]
    assert sink.encode_batch(batch, docs) == [sink.encode_json(r, d) for r, d in zip(batch, docs, strict=True)]
    assert len({line.split(b"\n")[0] for line in sink.encode_batch(batch, docs)}) == len(batch)


def test_second_prefix_formats_any_second_like_strftime():
    import random
    import time

    from shipper.core.timefmt import SECOND_PREFIX_CACHE, second_prefix

    r = random.Random(3)
    # years 1000-9999 and beyond (strftime pads years < 1000 differently; ISO 8601 wants 4 digits)
    for s in [0, 86399, 1795217699, -1, -86401, 253402300799, 253402300800, 10**12]:
        SECOND_PREFIX_CACHE.clear()
        assert second_prefix(s)[0] == time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(s)), s
    for _ in range(20000):
        s = r.randrange(-30_610_224_000, 2**38)
        assert second_prefix(s)[0] == time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(s)), s
    assert second_prefix(-62135596800)[0] == "0001-01-01T00:00:00."


def test_doc_ids_are_time_ordered_across_streams():
    """Time leads the id: Lucene's id lookups stay local (bench/end_to_end.py)."""
    other = Container(id="f" * 64, name="other", image="img")
    rs = [Record(message=b"x", time_ns=t, stream=s, container=c, seq=q)
          for t, s, c, q in [(5, "stdout", C, 0), (5, "stdout", C, 1), (6, "stderr", other, 0),
                             (2**62, "stdout", C, 0)]]
    ids = [r.doc_id() for r in rs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert ids[0].startswith(f"{5:016x}")


def test_a_record_orjson_refuses_is_repaired_alone_and_flagged():
    """One line with a 20-digit pid (and other things orjson refuses) in a batch: every
    other line is encoded as usual, that one repaired (big integers as strings) and flagged."""
    import orjson

    from shipper.core.container import Container
    from shipper.core.record import Record
    from shipper.transforms.enrich import Enricher

    c = Container(id="c" * 64, name="app", image="img")
    e = Enricher("host")
    good = [Record(b"plain %d" % i, 1_700_000_000_000_000_000 + i, "stdout", c) for i in range(3)]
    # A parser that turns a 20-digit pid into an int (syslog's did): the fields as it would leave them.
    pid = Record(b"app[99999999999999999999]: hello", 1_700_000_000_000_000_010, "stdout", c,
                 fields={"message": "hello", "process.pid": 99999999999999999999})
    odd_fields: dict[Any, Any] = {"message": "odd", 1: "int key", "n": float("nan"), "b": b"\xff", "s": "\ud800",
                                  "o": object()}
    odd = Record(b"odd", 1_700_000_000_000_000_011, "stdout", c, fields=odd_fields)
    docs = [orjson.loads(d) for d in e.documents_json([good[0], pid, good[1], odd, good[2]])]
    assert [d["message"] for d in docs] == ["plain 0", "hello", "plain 1", "odd", "plain 2"]
    assert all("logship.repaired" not in d for d in (docs[0], docs[2], docs[4]))
    assert docs[1]["process.pid"] == "99999999999999999999" and docs[1]["logship.repaired"] == ["big_int"]
    assert docs[3]["1"] == "int key" and docs[3]["n"] is None and docs[3]["b"] == "\ufffd"
    assert docs[3]["s"] == "?" and docs[3]["o"].startswith("<object")
    assert docs[3]["logship.repaired"] == ["bytes", "key_type", "not_finite", "surrogates", "type"]


def test_a_parser_failure_costs_only_that_line(monkeypatch):
    import orjson

    import parsers
    from shipper.core.container import Container
    from shipper.core.record import Record
    from shipper.transforms.enrich import Enricher

    real = parsers.parse

    def flaky(data, **kw):
        if data == b"boom":
            raise ValueError("parser bug")
        return real(data, **kw)

    monkeypatch.setattr(parsers, "parse", flaky)
    c = Container(id="c" * 64, name="app", image="img")
    docs = [orjson.loads(d) for d in Enricher("host").documents_json(
        [Record(m, 1_700_000_000_000_000_000, "stdout", c) for m in (b"a", b"boom", b"b")])]
    assert [d["message"] for d in docs] == ["a", "boom", "b"] and "parser bug" in docs[1]["logship.parse_error"]
