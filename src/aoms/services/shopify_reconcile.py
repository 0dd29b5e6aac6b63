"""Repair what webhooks missed: page Shopify's orders updated since a time and ingest each.

Every order goes through `receive_order`, the use case the webhook inbox uses, so an order
the webhooks already brought is `stale` (nothing changes), a newer version is applied, and
a missing one is created: nothing is ever duplicated, and running it twice changes nothing
the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aoms.domain.errors import AomsError, Conflict
from aoms.domain.orders import Order
from aoms.services.orders import Outcome, receive_order
from aoms.services.ports import Clock, Geocoder, Store

log = logging.getLogger(__name__)

GraphqlOrderParser = Callable[[str, Mapping[str, Any]], Order]


@dataclass
class ReconcileReport:
    shop: str
    since: datetime
    seen: int = 0
    created: list[str] = field(default_factory=list)  # Shopify order ids
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    newest_update: datetime | None = None  # pass it as the next run's `since`

    def as_dict(self) -> dict[str, Any]:
        return {
            "shop": self.shop,
            "since": self.since.isoformat(),
            "seen": self.seen,
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": self.unchanged,
            "failed": self.failed,
            "created_ids": self.created,
            "updated_ids": self.updated,
            "newest_update": self.newest_update.isoformat() if self.newest_update else None,
        }


def reconcile_orders(
    store: Store,
    nodes: Iterable[Mapping[str, Any]],
    shop: str,
    since: datetime,
    *,
    parse: GraphqlOrderParser,
    geocode: Geocoder,
    clock: Clock,
) -> ReconcileReport:
    """Ingest every order in `nodes` (GraphQL Order objects), each in its own transaction."""
    report = ReconcileReport(shop, since)
    for node in nodes:
        report.seen += 1
        try:
            order = parse(shop, node)
        except AomsError as exc:
            report.failed.append(
                {"id": str(node.get("id")), "code": exc.code, "message": exc.message}
            )
            continue
        if report.newest_update is None or order.source_updated_at > report.newest_update:
            report.newest_update = order.source_updated_at
        try:
            outcome = _receive(store, order, geocode, clock)
        except AomsError as exc:
            log.warning("reconciling order %s of %s failed: %s", order.external_id, shop, exc)
            report.failed.append(
                {"id": order.external_id, "code": exc.code, "message": exc.message}
            )
            continue
        if outcome is Outcome.CREATED:
            report.created.append(order.external_id)
        elif outcome is Outcome.UPDATED:
            report.updated.append(order.external_id)
        else:
            report.unchanged += 1
        store.pause_between_writes()
    return report


def _receive(store: Store, order: Order, geocode: Geocoder, clock: Clock) -> Outcome:
    # A webhook worker may be applying the same order right now: the loser of the race
    # retries and then sees the winner's order (newer wins), as the inbox does.
    for attempt in range(5):
        try:
            with store.transaction() as tx:
                return receive_order(tx, order, geocode=geocode, now=clock()).outcome
        except Conflict:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")
