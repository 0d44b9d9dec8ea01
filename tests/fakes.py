"""Stand-ins the pure-logic tests share: what a sink or Elasticsearch would do, on canned inputs."""

from __future__ import annotations

from shipper.core.record import Record


def ack(r: Record) -> None:
    """What the sink does once Elasticsearch holds `r`: call its `on_delivered`."""
    assert r.on_delivered is not None, "the record has no ack window"
    r.on_delivered(r)
