"""A stack trace printed by a container arrives as one document."""

from __future__ import annotations

from tests.conftest import count_docs, search_all, wait_until

TRACE = (r"""printf '%s\n' 'starting' '2024-05-01 10:00:00,001 ERROR [main] com.shop.Cart - payment failed' """
         r"""'java.lang.IllegalStateException: card declined' '	at com.shop.Cart.pay(Cart.java:42)' """
         r"""'	at com.shop.Main.main(Main.java:7)' 'Caused by: java.io.IOException: timeout' '	... 2 more' 'done'""")


def test_java_trace_is_one_document(es, index_prefix, shipper, containers, busybox):
    shipper()
    c = containers(busybox, ["sh", "-c", TRACE])
    q = {"term": {"container.id": c.id}}
    wait_until(lambda: count_docs(es, f"{index_prefix}-*", q) >= 4, 60, what="4 documents")
    docs = sorted(search_all(es, f"{index_prefix}-*", q), key=lambda d: d["@timestamp"])
    # As fluent-bit's java rule: the exception line starts the trace record.
    assert [d["message"].split("\n")[0] for d in docs] == [
        "starting", "payment failed", "java.lang.IllegalStateException: card declined", "done"]
    assert docs[1]["log.level"] == "error"
    trace = docs[2]["message"]
    assert "\tat com.shop.Main.main(Main.java:7)" in trace and "Caused by: java.io.IOException: timeout" in trace
    assert trace.endswith("\t... 2 more")
