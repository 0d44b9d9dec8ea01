"""Stand-ins the pure-logic tests share: what a sink or Elasticsearch would do, on canned inputs."""

from __future__ import annotations

from shipper.core.record import Record


def ack(r: Record) -> None:
    """What the sink does once Elasticsearch holds `r`: call its `on_delivered`."""
    assert r.on_delivered is not None, "the record has no ack window"
    r.on_delivered(r)


class BulkAnswer:
    """One canned answer to a POST /_bulk: (status, body), or an exception raised on send."""

    def __init__(self, status: int = 200, body: bytes = b"", exc: BaseException | None = None) -> None:
        self.status, self.body, self.exc = status, body, exc

    async def __aenter__(self) -> BulkAnswer:
        if self.exc is not None:
            raise self.exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self) -> bytes:
        return self.body


class FakeBulkSession:
    """Stands in for the sink's aiohttp session: answers each bulk with the next canned answer
    and keeps the bodies it was sent."""

    def __init__(self, *answers: BulkAnswer) -> None:
        self.answers = list(answers)
        self.sent: list[bytes] = []

    def post(self, url: str, data: bytes) -> BulkAnswer:
        self.sent.append(data)
        return self.answers.pop(0)
