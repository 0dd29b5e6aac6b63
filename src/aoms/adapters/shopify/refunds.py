"""Refunds aoms makes, told to Shopify through the Admin API (`refundCreate`).

The lines go with their units and `NO_RESTOCK`: aoms keeps the stock and pushes what is
available to sell itself (docs/shopify-sync.md), so a restock in Shopify as well would count
the returned units twice. The shipping refunded goes as `shipping.amount`, each payment's part
as one REFUND transaction on its gateway (with the sale it refunds, when its id is known), and
the note carries `aoms-refund:<id>`, by which the `refunds/create` webhook that follows is
recognised as aoms's own (docs/returns.md)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aoms.adapters.shopify.admin import ShopifyAdminClient
from aoms.services.ports import RefundToPush


class ShopifyRefundPublisher:
    def __init__(self, client_for: Callable[[str], ShopifyAdminClient]) -> None:
        self.client_for = client_for  # shop -> its Admin API client (kept by the runtime)

    def publish_refund(self, refund: RefundToPush) -> str | None:
        if refund.channel != "shopify":
            return None  # another channel's order: nobody to tell
        order_gid = f"gid://shopify/Order/{refund.order_external_id}"
        lines = [
            {"lineItemId": f"gid://shopify/LineItem/{line_id}", "quantity": units,
             "restockType": "NO_RESTOCK"}
            for line_id, units, _ in refund.lines
            if line_id is not None and units > 0
        ]  # fmt: skip
        transactions: list[dict[str, Any]] = []
        for gateway, amount, external_id in refund.payments:
            if Decimal(amount) <= 0:
                continue
            tx: dict[str, Any] = {"amount": amount, "gateway": gateway, "kind": "REFUND"}
            if external_id is not None:
                tx["parentId"] = f"gid://shopify/OrderTransaction/{external_id}"
            transactions.append(tx)
        created = self.client_for(refund.shop).refund_create(
            order_gid,
            lines=lines,
            transactions=transactions,
            shipping_amount=refund.shipping if Decimal(refund.shipping) > 0 else None,
            note=refund.note,
        )
        found = created.get("id")
        return str(found).rsplit("/", 1)[-1] if found else None
