"""Refunds aoms makes, told to Shopify through the Admin API (`refundCreate`).

The lines go with their units and `NO_RESTOCK`: aoms keeps the stock and pushes what is
available to sell itself (docs/shopify-sync.md), so a restock in Shopify as well would count
the returned units twice. The shipping refunded goes as `shipping.amount`, each payment's part
as one REFUND transaction on its gateway (with the sale it refunds, when its id is known), and
the note carries `aoms-refund:<id>`, by which the `refunds/create` webhook that follows is
recognised as aoms's own (docs/returns.md)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aoms.adapters.shopify.admin import ShopifyAdminClient
from aoms.services.ports import RefundToPush


class ShopifyRefundPublisher:
    """One Admin API client per shop, kept: its pacing knows the shop's bucket."""

    def __init__(self, client_for: Callable[[str], ShopifyAdminClient]) -> None:
        self._make = client_for  # shop -> a new Admin API client for it
        self._clients: dict[str, ShopifyAdminClient] = {}
        self._lock = threading.Lock()

    def client_for(self, shop: str) -> ShopifyAdminClient:
        with self._lock:
            if shop not in self._clients:
                self._clients[shop] = self._make(shop)
            return self._clients[shop]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

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
