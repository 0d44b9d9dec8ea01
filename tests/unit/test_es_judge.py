"""The sink's judgement of Elasticsearch's bulk answers, on canned answers of every kind:
item statuses 2xx, 409, 400 (mapping errors), 429, 5xx and cluster blocks; whole-request
failures (HTTP 5xx, transport errors). No Elasticsearch: tests/fakes.FakeBulkSession."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, cast

import aiohttp
import orjson
import pytest

from shipper.config import ElasticsearchSettings
from shipper.core.container import Container
from shipper.core.record import Record
from shipper.sinks.elasticsearch.judge import Verdict, item_results, verdict
from shipper.sinks.elasticsearch.sink import ElasticsearchSink, Item
from tests.fakes import BulkAnswer, FakeBulkSession

C = Container(id="c" * 64, name="web", image="i")
T0 = 1_795_219_200_000_000_000

# Item answers as Elasticsearch 8 writes them (the `create` action).
CREATED = {"status": 201, "result": "created", "_version": 1}
CONFLICT = {"status": 409, "error": {"type": "version_conflict_engine_exception",
                                     "reason": "[x]: version conflict, document already exists (current version [1])"}}
MAPPING = {"status": 400, "error": {"type": "document_parsing_exception",
                                    "reason": "[1:42] failed to parse field [log.level] of type [keyword]"}}
REJECTED = {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution"}}
UNAVAILABLE = {"status": 503, "error": {"type": "unavailable_shards_exception",
                                        "reason": "primary shard is not active"}}
INTERNAL = {"status": 500, "error": {"type": "illegal_state_exception", "reason": "boom"}}
BLOCK_WRITE = {"status": 403, "error": {"type": "cluster_block_exception",
                                        "reason": "index [p-2026.11.21] blocked by: [FORBIDDEN/8/index write (api)];"}}
BLOCK_DISK = {"status": 429, "error": {"type": "cluster_block_exception",
                                       "reason": "index [p-2026.11.21] blocked by: [TOO_MANY_REQUESTS/12/"
                                                 "disk usage exceeded flood-stage watermark, index has "
                                                 "read-only-allow-delete block];"}}


def answer(*results: dict[str, Any]) -> bytes:
    errors = any(r["status"] >= 300 for r in results)  # a 409 counts as an error for Elasticsearch
    items = [{"create": {"_index": "p-2026.11.21", "_id": f"id{i}", **r}} for i, r in enumerate(results)]
    return orjson.dumps({"took": 3, "errors": errors, "items": items})


@pytest.mark.parametrize("status, error, dead, want", [
    (200, {}, False, Verdict.HELD), (201, {}, False, Verdict.HELD),
    (409, CONFLICT["error"], False, Verdict.HELD),
    (400, MAPPING["error"], False, Verdict.DEAD_LETTER), (400, MAPPING["error"], True, Verdict.GIVE_UP),
    (429, REJECTED["error"], False, Verdict.RETRY), (429, REJECTED["error"], True, Verdict.RETRY),
    (500, INTERNAL["error"], False, Verdict.RETRY), (502, {}, False, Verdict.RETRY),
    (503, UNAVAILABLE["error"], False, Verdict.RETRY), (504, {}, False, Verdict.RETRY),
    # Cluster blocks: the cluster refuses writes, the document is not at fault: held back and
    # retried, never dead-lettered, whatever the status (429 flood stage, 403 write block), even
    # for a dead letter.
    (429, BLOCK_DISK["error"], False, Verdict.BLOCKED),
    (403, BLOCK_WRITE["error"], False, Verdict.BLOCKED),
    (403, BLOCK_WRITE["error"], True, Verdict.BLOCKED),
])
def test_verdict_of_each_item_status(status, error, dead, want):
    assert verdict(status, error, dead) is want


def test_item_results_fast_path_and_order():
    assert item_results(b'{"took":7,"errors":false,"items":[{"create":{"status":201}}]}') is None
    assert item_results(orjson.dumps({"errors": False, "took": 1, "items": []})) is None  # not at the head
    assert item_results(answer(CREATED, MAPPING, REJECTED)) == [
        (201, {}), (400, MAPPING["error"]), (429, REJECTED["error"])]


def items(sink: ElasticsearchSink, n: int, acked: list[int]) -> list[Item]:
    """n encoded lines whose acknowledgements append their number to `acked`."""
    def acker(i: int) -> Callable[[Record], None]:
        return lambda r: acked.append(i)
    recs = [Record(message=f"line {i}".encode(), time_ns=T0 + i, stream="stdout", container=C,
                   on_delivered=acker(i)) for i in range(n)]
    return [(r, sink.encode(r, {"message": r.message.decode()})) for r in recs]


def msg(item: Item) -> bytes:
    return item[0].message if item[0] is not None else b""


def send(sink: ElasticsearchSink, session: FakeBulkSession, batch: list[Item]) -> tuple[list[Item], bool]:
    sink._session = cast(Any, session)  # the fake answers post() like aiohttp
    return asyncio.run(sink._send_once(batch))


def new_sink() -> ElasticsearchSink:
    return ElasticsearchSink(ElasticsearchSettings(url=("http://es:9200",), index_prefix="p", setup=False))


def test_mixed_answer_acks_the_held_retries_the_busy_and_dead_letters_the_refused():
    sink = new_sink()
    acked: list[int] = []
    batch = items(sink, 7, acked)
    session = FakeBulkSession(BulkAnswer(200, answer(CREATED, CONFLICT, MAPPING, REJECTED, UNAVAILABLE,
                                                     BLOCK_WRITE, BLOCK_DISK)))
    again, failed = send(sink, session, batch)
    assert failed and sorted(acked) == [0, 1]  # 201 and 409 are held
    assert session.sent == [b"".join(d for _, d in batch)]
    assert [msg(it) for it in again] == [b"line 2", b"line 3", b"line 4", b"line 5", b"line 6"]
    retried = {msg(it) for it in again if it in batch}
    assert retried == {b"line 3", b"line 4", b"line 5", b"line 6"}  # 429, 503, both blocks: the same bytes again
    dead = [(msg(it), orjson.loads(it[1].split(b"\n")[0])) for it in again if msg(it) not in retried]
    assert [m for m, _ in dead] == [b"line 2"]
    assert all(a["create"]["_index"] == "p-deadletter-2026.11.21" for _, a in dead)


def test_an_answer_short_of_items_retries_the_unanswered():
    sink = new_sink()
    acked: list[int] = []
    batch = items(sink, 3, acked)
    again, failed = send(sink, FakeBulkSession(BulkAnswer(200, answer(CREATED, MAPPING))), batch)
    assert failed and acked == [0]
    assert msg(again[-1]) == b"line 2" and again[-1] == batch[2]  # never silently dropped


def test_a_refused_dead_letter_is_given_up_and_acknowledged():
    sink = new_sink()
    acked: list[int] = []
    first, _ = send(sink, FakeBulkSession(BulkAnswer(200, answer(MAPPING))), items(sink, 1, acked))
    again, failed = send(sink, FakeBulkSession(BulkAnswer(200, answer(MAPPING))), first)
    assert (again, failed, acked) == ([], False, [0])  # counted and logged, never retried forever


@pytest.mark.parametrize("reply", [BulkAnswer(503, b'{"error":"unavailable"}'), BulkAnswer(429, b"busy"),
                                   BulkAnswer(exc=aiohttp.ClientConnectionError("refused")),
                                   BulkAnswer(exc=asyncio.TimeoutError())])
def test_a_failed_request_retries_every_item_and_acks_none(reply):
    sink = new_sink()
    acked: list[int] = []
    batch = items(sink, 3, acked)
    again, failed = send(sink, FakeBulkSession(reply), batch)
    assert (again, failed, acked) == (batch, True, [])


def test_a_node_stopped_mid_bulk_then_409_on_the_retry_acks_each_line_once():
    """SIGTERM of the node a bulk is in flight to: the connection breaks after some items were stored.
    The whole bulk is sent again (to another node: this one is skipped for its backoff), and the
    items stored before answer 409 there, which is held: each line acknowledged once, none dead-lettered."""
    sink = ElasticsearchSink(ElasticsearchSettings(url=("http://a:9200", "http://b:9200"), index_prefix="p",
                                                   setup=False))
    acked: list[int] = []
    batch = items(sink, 3, acked)
    session = FakeBulkSession(BulkAnswer(exc=aiohttp.ServerDisconnectedError()),
                              BulkAnswer(200, answer(CONFLICT, CREATED, CONFLICT)))
    again, failed = send(sink, session, batch)
    assert (again, failed, acked) == (batch, True, [])
    again, failed = send(sink, session, again)
    assert (again, failed, sorted(acked)) == ([], False, [0, 1, 2])
    assert len(set(session.urls)) == 2  # the retry went to the other node


def test_a_timed_out_bulk_is_logged_by_its_kind(caplog):
    sink = new_sink()
    send(sink, FakeBulkSession(BulkAnswer(exc=asyncio.TimeoutError())), items(sink, 1, []))
    assert "bulk of 1 failed: TimeoutError; retrying" in caplog.text  # a timeout's own text is empty


def test_all_good_answer_acks_everything_and_clears_the_failure_clock():
    sink = new_sink()
    acked: list[int] = []
    batch = items(sink, 3, acked)
    send(sink, FakeBulkSession(BulkAnswer(503, b"")), batch)
    assert sink._failing_since is not None
    again, failed = send(sink, FakeBulkSession(BulkAnswer(200, b'{"took":1,"errors":false,"items":[]}')), batch)
    assert (again, failed, sorted(acked), sink._failing_since) == ([], False, [0, 1, 2], None)
