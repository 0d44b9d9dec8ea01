"""Writes refused for a cluster reason: the cluster, not the line, is at fault.

A flood-stage disk watermark sets `index.blocks.read_only_allow_delete` on every index with
a shard on the full node (items answer 429 `cluster_block_exception`); an operator's
`index.blocks.write`/`read_only` or a cluster-wide `cluster.blocks.read_only` answers 403
`cluster_block_exception`, per item or for the whole request; a cluster shedding load
answers 429 on every item. None of these says anything about the document: sending it to
the dead-letter index (itself blocked, most likely) would lose it exactly when the operator
is busiest. Such items are held (retried, spooled once that lasts `spool.after_s`) and
delivered when the block lifts. The sink keeps one `WriteBlock`: one log line when writes
become blocked, one when they are accepted again, and its state on /health and /metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from shipper.core.metrics import METRICS
from shipper.sinks.elasticsearch.judge import is_block

__all__ = ["WriteBlock", "block_reason", "is_block"]

log = logging.getLogger("logship.es")

WRITES_BLOCKED = "logship_es_writes_blocked"
BLOCKED_ITEMS = "logship_es_blocked_items_total"
# Described at import, not per instance: /metrics carries HELP for it before any sink exists.
METRICS.describe(WRITES_BLOCKED, "1 while Elasticsearch refuses writes for a cluster reason "
                                 "(read-only block, 429 on every item): lines are held and spooled.")
LIFT_HINT = ("free disk space (the flood-stage block lifts by itself below the high watermark) or lift the block "
             "(PUT <index>/_settings {\"index.blocks.read_only_allow_delete\": null})")
OVERLOAD_HINT = "the cluster rejects every write (write queues full): it needs more capacity or fewer writers"


def block_reason(error: Mapping[str, Any]) -> str:
    return f"{error.get('type')}: {str(error.get('reason'))[:300]}"


class WriteBlock:
    """Whether Elasticsearch currently refuses our writes for a cluster reason, since when and why."""

    def __init__(self) -> None:
        self.since: float | None = None  # wall clock, for /health
        self.reason = ""
        self.held = 0  # items refused while blocked
        METRICS.set(WRITES_BLOCKED, 0)

    @property
    def active(self) -> bool:
        return self.since is not None

    def refused(self, reason: str, items: int, hint: str = LIFT_HINT) -> None:
        """Items were refused for a cluster reason: logs the first time only."""
        METRICS.count(BLOCKED_ITEMS, items)
        self.held += items
        if self.since is None:
            self.since, self.reason = time.time(), reason
            METRICS.set(WRITES_BLOCKED, 1)
            log.error("elasticsearch: writes blocked (%s); holding lines (spooling to disk if it lasts), never "
                      "dead-lettering them; %s", reason, hint)

    def accepted(self) -> None:
        """A write went through: the block, if there was one, is over."""
        if self.since is None:
            return
        log.warning("elasticsearch: writes accepted again after %.0f s blocked (%d item refusals held and "
                    "re-sent)", time.time() - self.since, self.held)
        self.since, self.reason, self.held = None, "", 0
        METRICS.set(WRITES_BLOCKED, 0)

    def status(self) -> dict[str, Any]:
        if self.since is None:
            return {"writes_blocked": False}
        return {"writes_blocked": True, "reason": self.reason, "held_item_refusals": self.held,
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since))}
