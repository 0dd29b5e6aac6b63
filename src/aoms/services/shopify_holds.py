"""Holds on Shopify's side: when aoms holds an order, its fulfillment orders on Shopify are
held too, so nobody fulfils them from the Shopify admin; released when aoms releases.

Each aoms hold type is one Shopify hold with its own `handle` (`aoms-<type>`), so an order
held for two reasons carries two holds and releasing one leaves the other. Both calls are
idempotent: holding what is already held, or releasing what is not, changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

# aoms hold type -> Shopify FulfillmentHoldReason
SHOPIFY_HOLD_REASONS = {
    "awaiting_payment": "AWAITING_PAYMENT",
    "high_fraud_risk": "HIGH_RISK_OF_FRAUD",
    "incorrect_address": "INCORRECT_ADDRESS",
    "out_of_stock": "INVENTORY_OUT_OF_STOCK",
    "manual_review": "OTHER",
    "merchant_rule": "OTHER",
}


class HoldAdmin(Protocol):
    def fulfillment_order_holds(self, fulfillment_order_id: str) -> list[dict[str, Any]]: ...
    def fulfillment_order_hold(
        self,
        fulfillment_order_id: str,
        *,
        reason: str,
        notes: str | None = ...,
        handle: str | None = ...,
        notify_merchant: bool = ...,
    ) -> dict[str, Any]: ...
    def fulfillment_order_release_hold(
        self, fulfillment_order_id: str, *, hold_ids: Sequence[str] | None = ...
    ) -> dict[str, Any]: ...


def handle_for(hold_type: str) -> str:
    if hold_type not in SHOPIFY_HOLD_REASONS:
        raise ValueError(f"unknown hold type {hold_type!r}")
    return f"aoms-{hold_type.replace('_', '-')}"


def hold_type_of(handle: str) -> str:
    """The aoms hold type a handle of `handle_for` stands for."""
    return handle.removeprefix("aoms-").replace("-", "_")


def hold_on_shopify(
    admin: HoldAdmin, fulfillment_order_id: str, hold_type: str, *, notes: str | None = None
) -> str:
    """Hold the fulfillment order for `hold_type`; the Shopify hold's id (the existing one
    if aoms had already held it for that reason)."""
    handle = handle_for(hold_type)
    for hold in admin.fulfillment_order_holds(fulfillment_order_id):
        if hold.get("handle") == handle:
            return str(hold["id"])
    created = admin.fulfillment_order_hold(
        fulfillment_order_id,
        reason=SHOPIFY_HOLD_REASONS[hold_type],
        notes=notes or f"aoms: {hold_type.replace('_', ' ')}",
        handle=handle,
    )
    return str(created["id"])


def release_on_shopify(admin: HoldAdmin, fulfillment_order_id: str, hold_type: str) -> bool:
    """Release aoms's hold of `hold_type`, leaving any other hold; False if there was none."""
    handle = handle_for(hold_type)
    ids = [
        str(h["id"])
        for h in admin.fulfillment_order_holds(fulfillment_order_id)
        if h.get("handle") == handle
    ]
    if not ids:
        return False
    admin.fulfillment_order_release_hold(fulfillment_order_id, hold_ids=ids)
    return True
