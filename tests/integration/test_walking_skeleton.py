"""The thin slice through the real systems: container stdout/stderr -> shipper -> Elasticsearch."""

from __future__ import annotations

from tests.conftest import count_docs, search_all, wait_until


def _docs_of(es, prefix: str, container_id: str) -> list[dict]:
    return search_all(es, f"{prefix}-*", {"term": {"container.id": container_id}})


def test_stdout_and_stderr_lines_arrive_exactly_once(es, index_prefix, shipper, containers, busybox):
    shipper()
    c = containers(busybox, ["sh", "-c", "seq 1 1000 | sed 's/^/out /'; seq 1 1000 | sed 's/^/err /' >&2"],
                   name=f"skel-{index_prefix}")
    c.wait(timeout=60)
    q = {"term": {"container.id": c.id}}
    wait_until(lambda: count_docs(es, f"{index_prefix}-*", q) >= 2000, 60, what="2000 documents")
    docs = _docs_of(es, index_prefix, c.id)
    assert len(docs) == 2000
    out = sorted(int(d["message"].split()[1]) for d in docs if d["stream"] == "stdout")
    err = sorted(int(d["message"].split()[1]) for d in docs if d["stream"] == "stderr")
    assert out == list(range(1, 1001)) and err == list(range(1, 1001))
    assert all(d["message"].startswith("out ") for d in docs if d["stream"] == "stdout")
    d = docs[0]
    assert d["container.name"] == f"skel-{index_prefix}"
    assert d["container.image.name"] == busybox
    assert d["host.name"] and d["@timestamp"].endswith("Z")


def test_logspout_ignore_is_never_shipped(es, index_prefix, shipper, containers, busybox):
    s = shipper()
    ignored = containers(busybox, ["sh", "-c", "seq 1 200"], environment={"LOGSPOUT": "ignore"})
    shipped = containers(busybox, ["sh", "-c", "seq 1 200"])
    ignored.wait(timeout=60), shipped.wait(timeout=60)
    wait_until(lambda: count_docs(es, f"{index_prefix}-*", {"term": {"container.id": shipped.id}}) >= 200, 60,
               what="the shipped container's lines")
    assert count_docs(es, f"{index_prefix}-*", {"term": {"container.id": ignored.id}}) == 0
    assert "LOGSPOUT=ignore" in s.log()


def test_container_running_before_the_shipper_starts(es, index_prefix, shipper, containers, busybox):
    c = containers(busybox, ["sh", "-c", "echo early; sleep 600"])
    wait_until(lambda: b"early" in c.logs(), 30, what="the container's first line")
    shipper()
    wait_until(lambda: count_docs(es, f"{index_prefix}-*", {"term": {"container.id": c.id}}) >= 1, 60,
               what="the early line")
    assert [d["message"] for d in _docs_of(es, index_prefix, c.id)] == ["early"]
