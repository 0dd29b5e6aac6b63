"""Inventory use cases: adjustments with a reason, idempotent by key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aoms.domain import events as ev
from aoms.domain.errors import Conflict, InsufficientStock, InvalidInput
from aoms.domain.events import Event
from aoms.domain.inventory import StockLevel
from aoms.services.ports import Tx


@dataclass(frozen=True, slots=True)
class Adjusted:
    level: StockLevel
    applied: bool  # False when the idempotency key had been used already


def adjust_stock(
    tx: Tx,
    *,
    sku: str,
    location_id: str,
    reason: str,
    now: datetime,
    delta: int | None = None,
    set_on_hand: int | None = None,
    safety_stock: int | None = None,
    reference: str | None = None,
    idempotency_key: str | None = None,
    warehouse_count: bool = False,
) -> Adjusted:
    """Change on_hand by `delta`, or set it to an absolute count (`set_on_hand`).

    A `warehouse_count` is what is physically there: it is taken even below what open orders
    hold (available goes negative), and then raises a `stock.count_below_reserved` alert so
    those orders are re-routed or cancelled."""
    if (delta is None) == (set_on_hand is None):
        raise InvalidInput("give exactly one of delta and set_on_hand", field="delta")
    if not reason:
        raise InvalidInput("every adjustment needs a reason", field="reason")
    earlier = tx.movement_for(idempotency_key) if idempotency_key is not None else None
    if earlier is not None and earlier != (sku, location_id):
        raise Conflict(
            f"idempotency key {idempotency_key!r} was used for {earlier[0]} at {earlier[1]}",
            field="idempotency_key",
        )
    if earlier is not None:
        found = [lv for lv in tx.lock_stock([sku]) if lv.location_id == location_id]
        return Adjusted(found[0] if found else StockLevel(sku, location_id, 0, 0), applied=False)
    current = next((lv for lv in tx.lock_stock([sku]) if lv.location_id == location_id), None)
    on_hand_now = current.on_hand if current else 0
    change = delta if delta is not None else (set_on_hand or 0) - on_hand_now
    if on_hand_now + change < 0:
        raise InvalidInput(
            f"on_hand would be {on_hand_now + change}; it cannot go below zero", field="delta"
        )
    reserved = current.reserved if current else 0
    short = on_hand_now + change < reserved
    if short and not (warehouse_count and set_on_hand is not None):
        # Taking the count below what open orders hold would oversell them. Until rejected
        # work is re-routed automatically, the operator cancels or moves those orders first.
        raise InsufficientStock(
            f"{sku} at {location_id}: on_hand would be {on_hand_now + change} but "
            f"{reserved} unit(s) are reserved for open orders",
            field="set_on_hand" if set_on_hand is not None else "delta",
            reserved=reserved,
        )
    level = tx.change_stock(
        sku,
        location_id,
        on_hand=change,
        reason=reason,
        reference=reference,
        now=now,
        idempotency_key=idempotency_key,
        safety_stock=safety_stock,
    )
    tx.emit(
        [
            Event(
                ev.STOCK_ADJUSTED,
                f"stock:{sku}@{location_id}",
                {
                    "sku": sku,
                    "location_id": location_id,
                    "on_hand_delta": change,
                    "reason": reason,
                    "reference": reference,
                    "on_hand": level.on_hand,
                    "reserved": level.reserved,
                    "available": level.available,
                },
            )
        ],
        now,
    )
    if short:
        tx.emit([Event(ev.STOCK_COUNT_NEGATIVE, f"stock:{sku}@{location_id}", {
            "sku": sku, "location_id": location_id, "counted": level.on_hand,
            "reserved": level.reserved, "short": level.oversold, "reason": reason,
            "reference": reference,
        })], now)  # fmt: skip
    return Adjusted(level, applied=True)
