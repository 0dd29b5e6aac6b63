"""Domain events: facts, named in the past tense, written with the state they describe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    name: str  # e.g. "order.routed"
    aggregate: str  # e.g. "order:<id>" or "stock:<sku>@<location>"
    data: dict[str, Any] = field(default_factory=dict)


ORDER_RECEIVED = "order.received"
ORDER_UPDATED = "order.updated"
ORDER_ROUTED = "order.routed"
ORDER_BACKORDERED = "order.backordered"
ORDER_UNROUTABLE = "order.unroutable"
ORDER_CANCELLED = "order.cancelled"
STOCK_RESERVED = "stock.reserved"
STOCK_RELEASED = "stock.released"
STOCK_ADJUSTED = "stock.adjusted"
DELIVERY_HISTORY_IMPORTED = "delivery_history.imported"
PROMISE_MODEL_FITTED = "promise_model.fitted"
ROUTING_POLICY_DRAFTED = "routing_policy.drafted"
ROUTING_POLICY_ACTIVATED = "routing_policy.activated"
EXPERIMENT_STARTED = "routing_experiment.started"
EXPERIMENT_STOPPED = "routing_experiment.stopped"
WAVE_REPLANNED = "wave.replanned"
SCARCITY_PRICED = "scarcity.priced"

FULFILMENT_REQUESTED = "fulfilment_order.requested"
FULFILMENT_ACCEPTED = "fulfilment_order.accepted"
FULFILMENT_REJECTED = "fulfilment_order.rejected"
FULFILMENT_SHIPPED = "fulfilment_order.shipped"
FULFILMENT_CANCEL_REQUESTED = "fulfilment_order.cancel_requested"
FULFILMENT_CANCEL_REFUSED = "fulfilment_order.cancel_refused"
FULFILMENT_CANCELLED = "fulfilment_order.cancelled"
FULFILMENT_SPLIT = "fulfilment_order.split"
FULFILMENT_MERGED = "fulfilment_order.merged"
FULFILMENT_HANDOFF_FAILED = "fulfilment_order.handoff_failed"
STOCK_OVERSOLD = "stock.oversold"
HOLD_PLACED = "order.hold_placed"
HOLD_RELEASED = "order.hold_released"
ORDER_RELEASED_FOR_FULFILMENT = "order.released_for_fulfilment"
FRAUD_ASSESSED = "order.fraud_assessed"
ORDER_EDITED = "order.edited"
STOCK_INVARIANT_BROKEN = "stock.invariant_broken"
STOCK_COUNT_NEGATIVE = "stock.count_below_reserved"
ORDER_CHANGED_AFTER_HANDOFF = "order.changed_after_handoff"
