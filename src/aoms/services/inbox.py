"""Process what the webhook endpoint stored: each delivery in its own transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from aoms.domain.errors import AomsError, Conflict, Unavailable
from aoms.services.orders import Outcome, receive_order
from aoms.services.ports import AfterReceive, Clock, Delivery, Geocoder, OrderParser, Store, Tx

TopicHandler = Callable[[Tx, Delivery, datetime], int | None]
"""Applies a delivery of a topic that carries no order (a refund, a transaction, a
fulfilment) in the delivery's transaction; returns the order it touched, or None to ignore."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchResult:
    processed: int = 0
    ignored: int = 0
    failed: int = 0


def process_delivery(
    store: Store,
    delivery: Delivery,
    *,
    parse: OrderParser,
    geocode: Geocoder,
    clock: Clock,
    handlers: Mapping[str, TopicHandler] | None = None,
    after_receive: AfterReceive | None = None,
) -> str:
    """Apply one stored delivery; the order change and the inbox mark commit together.

    A write conflict with a concurrent worker (the same order arriving twice at once) is
    retried: the second attempt sees the first one's order and applies the newer-wins rule.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            with store.transaction() as tx:
                if not tx.claim_delivery(delivery.id):
                    return "skipped"  # another worker has it, or had it
                handler = (handlers or {}).get(delivery.topic)
                if handler is not None:
                    touched = handler(tx, delivery, clock())
                    status = "processed" if touched is not None else "ignored"
                    tx.finish_delivery(delivery.id, status=status, now=clock(), order_id=touched)
                    return status
                order = parse(delivery.shop, delivery.topic, delivery.body)
                if order is None:
                    tx.finish_delivery(delivery.id, status="ignored", now=clock())
                    return "ignored"
                result = receive_order(tx, order, geocode=geocode, now=clock())
                if after_receive is not None and result.outcome is not Outcome.STALE:
                    after_receive(tx, order, result.order_id, result.outcome is Outcome.CREATED)
                status = "ignored" if result.outcome is Outcome.STALE else "processed"
                tx.finish_delivery(
                    delivery.id, status=status, now=clock(), order_id=result.order_id
                )
                return status
        except Conflict as exc:
            if attempt < 5:
                continue
            return _fail(store, delivery, exc, clock)
        except Unavailable:
            raise  # leave it pending: the next pass tries again
        except AomsError as exc:
            return _fail(store, delivery, exc, clock)
        except Exception as exc:
            # A payload we did not foresee must not block the deliveries behind it.
            log.exception("webhook %s (%s) could not be processed", delivery.id, delivery.topic)
            internal = AomsError(f"{type(exc).__name__}: {exc}"[:500])
            internal.code = "internal_error"
            return _fail(store, delivery, internal, clock)


def _fail(store: Store, delivery: Delivery, exc: AomsError, clock: Clock) -> str:
    # The order change rolled back; record why, in a transaction of its own.
    log.warning("webhook %s (%s) failed: %s", delivery.id, delivery.topic, exc.message)
    with store.transaction() as tx:
        tx.finish_delivery(
            delivery.id, status="failed", now=clock(), error_code=exc.code, error=exc.message
        )
    return "failed"


def process_pending(
    store: Store,
    *,
    parse: OrderParser,
    geocode: Geocoder,
    clock: Clock,
    limit: int = 100,
    lane: int = 0,
    lanes: int = 1,
    handlers: Mapping[str, TopicHandler] | None = None,
    after_receive: AfterReceive | None = None,
) -> BatchResult:
    counts = {"processed": 0, "ignored": 0, "failed": 0, "skipped": 0}
    for delivery in store.pending_deliveries(limit, lane, lanes):
        outcome = process_delivery(
            store, delivery, parse=parse, geocode=geocode, clock=clock, handlers=handlers,
            after_receive=after_receive,
        )  # fmt: skip
        counts[outcome] += 1
        store.pause_between_writes()
    del counts["skipped"]
    return BatchResult(**counts)
