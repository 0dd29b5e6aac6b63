"""Shopify's fulfillment orders of one order, read and changed through the Admin API.

Shopify splits each order into fulfillment orders, one per location it assigned; a
fulfillment is made against their line items, at one location a call. aoms routes on its
own, so before it tells Shopify that units left a location it moves them there
(`fulfillmentOrderMove`), and then fulfils them with the tracking (`fulfillmentCreate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aoms.adapters.shopify.admin import (
    FULFILLMENT_CREATE,
    MUTATION_COST,
    ShopifyAdminClient,
    _payload,
)
from aoms.domain.errors import ShopifyError
from aoms.services.shopify_pushes import ShopifyFo, ShopifyFoLine, ShopifyOrderState, Take

FO_FIELDS = """
id status
assignedLocation { location { id } }
fulfillmentHolds { id handle }
lineItems(first: 20, after: $after) {
  nodes { id remainingQuantity totalQuantity lineItem { id } }
  pageInfo { hasNextPage endCursor }
}"""

ORDER_FOS_QUERY = (
    "query OrderFulfillmentOrders($id: ID!, $after: String, $fos: String) {\n"
    "  order(id: $id) {\n    id tags\n"
    "    fulfillments(first: 10) { id trackingInfo(first: 2) { number }\n"
    "      fulfillmentLineItems(first: 10) { nodes { quantity lineItem { id } } } }\n"
    "    fulfillmentOrders(first: 10, after: $fos) {\n"
    "      nodes {" + FO_FIELDS + "}\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n}"
)
# 1 (order) + 10 × (1 + 1 + 2 + 10 × 2) (fulfillments with their tracking and line items)
# + 2 + 10 × (1 + 2 + 1 + 2 + 20 × 2) (fulfillment orders): 703 of the 1,000 a query may
ORDER_FOS_COST = 1 + 10 * 24 + 2 + 10 * 46
MORE_FO_LINES_QUERY = (
    "query MoreFoLines($id: ID!, $after: String) {\n"
    "  fulfillmentOrder(id: $id) {" + FO_FIELDS + "}\n}"
)
MORE_FO_LINES_COST = 48

MOVE = """
mutation Move($id: ID!, $to: ID!, $lines: [FulfillmentOrderLineItemInput!]) {
  fulfillmentOrderMove(id: $id, newLocationId: $to, fulfillmentOrderLineItems: $lines) {
    movedFulfillmentOrder {
      id status assignedLocation { location { id } }
      lineItems(first: 50) { nodes { id remainingQuantity totalQuantity lineItem { id } } }
    }
    userErrors { code field message }
  }
}"""

RETURNABLE_QUERY = """
query Returnable($id: ID!, $after: String) {
  returnableFulfillments(orderId: $id, first: 10, after: $after) {
    nodes {
      returnableFulfillmentLineItems(first: 20) {
        nodes { quantity fulfillmentLineItem { id lineItem { id } } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""
RETURNABLE_COST = 2 + 10 * (1 + 2 + 20 * 3)

TAGS_REMOVE = """
mutation TagsRemove($id: ID!, $tags: [String!]!) {
  tagsRemove(id: $id, tags: $tags) { node { id } userErrors { field message } }
}"""


def _fo(node: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> ShopifyFo:
    location = (node.get("assignedLocation") or {}).get("location") or {}
    return ShopifyFo(
        id=str(node["id"]),
        status=str(node["status"]),
        location_gid=location.get("id"),
        lines=tuple(
            ShopifyFoLine(
                id=str(li["id"]),
                line_item_gid=str(li["lineItem"]["id"]),
                remaining=int(li["remainingQuantity"]),
            )
            for li in lines
        ),
        holds=tuple(
            (str(h["id"]), str(h.get("handle") or "")) for h in node.get("fulfillmentHolds") or ()
        ),
    )


def read_order(client: ShopifyAdminClient, order_gid: str) -> ShopifyOrderState:
    """The order's fulfillment orders (every page of them and of their line items), the
    tracking numbers of its fulfillments, and its tags."""
    fos: list[ShopifyFo] = []
    tracked: dict[str, dict[str, int]] = {}
    tags: tuple[str, ...] = ()
    after_fos: str | None = None
    while True:
        data = client.execute(
            ORDER_FOS_QUERY, {"id": order_gid, "after": None, "fos": after_fos}, cost=ORDER_FOS_COST
        )
        order = data.get("order")
        if order is None:
            raise ShopifyError(f"no order {order_gid}", shop=client.shop)
        tags = tuple(order.get("tags") or ())
        if after_fos is None:
            for f in order.get("fulfillments") or []:
                lines = (f.get("fulfillmentLineItems") or {}).get("nodes") or []
                for t in f.get("trackingInfo") or []:
                    if not t.get("number"):
                        continue
                    units = tracked.setdefault(str(t["number"]), {})
                    for ln in lines:
                        gid = str(ln["lineItem"]["id"])
                        units[gid] = units.get(gid, 0) + int(ln.get("quantity") or 0)
        page = order["fulfillmentOrders"]
        for node in page["nodes"]:
            fos.append(_fo(node, _all_lines(client, node)))
        if not page["pageInfo"]["hasNextPage"]:
            return ShopifyOrderState(tuple(fos), tracked, tags)
        after_fos = page["pageInfo"]["endCursor"]


def _all_lines(client: ShopifyAdminClient, node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    lines = list(node["lineItems"]["nodes"])
    info = node["lineItems"]["pageInfo"]
    while info["hasNextPage"]:
        data = client.execute(
            MORE_FO_LINES_QUERY,
            {"id": node["id"], "after": info["endCursor"]},
            cost=MORE_FO_LINES_COST,
        )
        more = (data.get("fulfillmentOrder") or {}).get("lineItems") or {}
        lines += more.get("nodes") or []
        info = more.get("pageInfo") or {"hasNextPage": False}
    return lines


def move(
    client: ShopifyAdminClient, fo_id: str, location_gid: str, lines: Mapping[str, int]
) -> ShopifyFo:
    """Move `lines` (fulfillment order line item id -> units) of a fulfillment order to a
    location; the fulfillment order that holds them there."""
    data = client.execute(
        MOVE,
        {"id": fo_id, "to": location_gid,
         "lines": [{"id": k, "quantity": v} for k, v in lines.items()]},
        cost=MUTATION_COST,
    )  # fmt: skip
    moved = _payload(data, "fulfillmentOrderMove", "movedFulfillmentOrder")
    return _fo(moved, moved["lineItems"]["nodes"])


def tags_remove(client: ShopifyAdminClient, resource_id: str, tags: Sequence[str]) -> None:
    data = client.execute(TAGS_REMOVE, {"id": resource_id, "tags": list(tags)}, cost=MUTATION_COST)
    _payload(data, "tagsRemove", "node")


class ShopifyPushAdmin:
    """The calls services.shopify_pushes makes, on one shop's client."""

    def __init__(self, client: ShopifyAdminClient) -> None:
        self.client = client

    def read_order(self, order_gid: str) -> ShopifyOrderState:
        return read_order(self.client, order_gid)

    def move(self, fo_id: str, location_gid: str, lines: Mapping[str, int]) -> ShopifyFo:
        return move(self.client, fo_id, location_gid, lines)

    def fulfil(self, groups: Sequence[Take], tracking: Mapping[str, str | None],
               notify: bool) -> str:  # fmt: skip
        """One fulfillment over the groups' line items (one location), with the tracking."""
        fulfillment: dict[str, Any] = {
            "lineItemsByFulfillmentOrder": [
                {"fulfillmentOrderId": g.fo.id,
                 "fulfillmentOrderLineItems": [{"id": k, "quantity": v}
                                               for k, v in g.lines.items()]}
                for g in groups
            ],
            "notifyCustomer": notify,
        }  # fmt: skip
        info = {k: v for k, v in tracking.items() if v and k in ("number", "company", "url")}
        if info:
            fulfillment["trackingInfo"] = info
        data = self.client.execute(
            FULFILLMENT_CREATE, {"fulfillment": fulfillment}, cost=MUTATION_COST
        )
        return str(_payload(data, "fulfillmentCreate", "fulfillment")["id"])

    def returnable(self, order_gid: str) -> list[tuple[str, str, int]]:
        found: list[tuple[str, str, int]] = []
        after: str | None = None
        while True:
            data = self.client.execute(
                RETURNABLE_QUERY, {"id": order_gid, "after": after}, cost=RETURNABLE_COST
            )
            page = data["returnableFulfillments"]
            for node in page["nodes"]:
                for item in node["returnableFulfillmentLineItems"]["nodes"]:
                    fli = item["fulfillmentLineItem"]
                    found.append(
                        (str(fli["id"]), str(fli["lineItem"]["id"]), int(item["quantity"]))
                    )
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]

    def return_create(self, order_gid: str, lines: Sequence[Mapping[str, Any]]) -> str:
        return str(self.client.return_create(order_gid, lines)["id"])

    def tags_add(self, order_gid: str, tags: Sequence[str]) -> Any:
        return self.client.tags_add(order_gid, tags)

    def tags_remove(self, order_gid: str, tags: Sequence[str]) -> None:
        tags_remove(self.client, order_gid, tags)

    def fulfillment_order_holds(self, fulfillment_order_id: str) -> list[dict[str, Any]]:
        return self.client.fulfillment_order_holds(fulfillment_order_id)

    def fulfillment_order_hold(
        self,
        fulfillment_order_id: str,
        *,
        reason: str,
        notes: str | None = None,
        handle: str | None = None,
        notify_merchant: bool = False,
    ) -> dict[str, Any]:
        return self.client.fulfillment_order_hold(
            fulfillment_order_id, reason=reason, notes=notes, handle=handle,
            notify_merchant=notify_merchant,
        )  # fmt: skip

    def fulfillment_order_release_hold(
        self, fulfillment_order_id: str, *, hold_ids: Sequence[str] | None = None
    ) -> dict[str, Any]:
        return self.client.fulfillment_order_release_hold(fulfillment_order_id, hold_ids=hold_ids)
