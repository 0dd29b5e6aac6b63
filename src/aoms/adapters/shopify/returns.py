"""Shopify deliveries that carry no order: refunds, payment transactions and fulfilments.

- `refunds/create` (the REST Refund resource): a refund made in Shopify's admin is recorded
  once, its units counted as refunded and, when Shopify restocked them at a location aoms
  knows by the same id, restocked here too. A refund aoms pushed itself comes back with
  `aoms-refund:<id>` in its note (or the id the push stored) and is not counted again.
- `order_transactions/create`: a successful `sale` or `capture` becomes one of the order's
  payments (method = gateway), kept once per transaction id.
- `fulfillments/create` and `fulfillments/update`: the fulfilment date, and the delivery date
  once `shipment_status` is `delivered`, make the order's units returnable. A fulfillment
  aoms made itself (services.shopify_pushes: known by its id or its tracking number) is
  not taken as the rest of the order leaving: its units were counted when they shipped.
- `returns/approve`, `returns/decline`, `returns/cancel`: the same decision for a return aoms
  holds under that Shopify return id.

A delivery for an order aoms does not hold is ignored (marked so in the inbox).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.adapters.db.returns import SqlReturnsTx
from aoms.adapters.db.shopify_pushes import aoms_location, first_word_of, own_fulfilment
from aoms.adapters.db.store import SqlTx
from aoms.adapters.geocode import geocode
from aoms.adapters.shopify.webhooks import _money, _objects, _set_amount, _time
from aoms.domain.errors import InvalidPayload
from aoms.domain.money import Money
from aoms.domain.orders import OrderStatus
from aoms.domain.returns import TRANSITIONS, ReturnStatus
from aoms.services import refunds
from aoms.services import returns as svc
from aoms.services.inbox import TopicHandler
from aoms.services.ports import Delivery, Tx
from aoms.services.returns_ports import NewPayment, OrderFacts


def _payload(delivery: Delivery) -> Mapping[str, Any]:
    try:
        payload = json.loads(delivery.body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidPayload(f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, Mapping):
        raise InvalidPayload("the body is not a JSON object")
    return payload


def _returns_tx(tx: Tx) -> SqlReturnsTx:
    if not isinstance(tx, SqlTx):
        raise TypeError("Shopify return deliveries are stored through the SQL store")
    return SqlReturnsTx(tx)


def _order(rtx: SqlReturnsTx, shop: str, payload: Mapping[str, Any]) -> OrderFacts | None:
    order_id = payload.get("order_id")
    if not isinstance(order_id, int) or isinstance(order_id, bool):
        raise InvalidPayload("order_id must be the numeric Shopify order id", field="order_id")
    found = rtx.find_order(shop, "shopify", str(order_id))
    return rtx.lock_order(found) if found is not None else None


def refund_from_payload(
    payload: Mapping[str, Any], facts: OrderFacts, known_locations: set[str]
) -> refunds.ExternalRefund:
    cur = facts.order.currency
    by_external = {ln.external_id: ln for ln in facts.order.lines if ln.external_id}
    refund_id = payload.get("id")
    if refund_id is None:
        raise InvalidPayload("a refund needs its id", field="id")
    lines: dict[int, tuple[int, Money, Money]] = {}
    restock: dict[int, str] = {}
    for i, raw in enumerate(_objects(payload.get("refund_line_items"), "refund_line_items")):
        field = f"refund_line_items[{i}]"
        line = by_external.get(str(raw.get("line_item_id")))
        if line is None:
            raise InvalidPayload(
                f"{field}: the order has no line {raw.get('line_item_id')}", field=field
            )
        quantity = raw.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise InvalidPayload(f"{field}.quantity must be a whole number", field=field)
        subtotal = _money(_set_amount(raw, "subtotal"), cur, f"{field}.subtotal")
        tax = _money(_set_amount(raw, "total_tax"), cur, f"{field}.total_tax")
        goods = subtotal - tax if facts.order.taxes_included else subtotal
        units, g, x = lines.get(line.line_no, (0, Money.zero(cur), Money.zero(cur)))
        lines[line.line_no] = (units + quantity, g + goods, x + tax)
        location = raw.get("location_id")
        restocked = raw.get("restock_type") in ("return", "cancel", "legacy_restock")
        if restocked and location and str(location) in known_locations:
            restock[line.line_no] = str(location)
    shipping, shipping_tax = Money.zero(cur), Money.zero(cur)
    for i, raw in enumerate(
        _objects(payload.get("refund_shipping_lines"), "refund_shipping_lines")
    ):
        field = f"refund_shipping_lines[{i}]"
        amount = _set_amount(raw, "subtotal_amount") or _set_amount(raw, "amount")
        shipping = shipping + _money(amount, cur, field)
        shipping_tax = shipping_tax + _money(_set_amount(raw, "tax_amount"), cur, field)
    transactions = [
        (
            str(tr.get("gateway") or "unknown"),
            _money(_set_amount(tr, "amount"), cur, "transactions"),
        )
        for tr in _objects(payload.get("transactions"), "transactions")
        if tr.get("kind") == "refund" and tr.get("status") == "success"
    ]
    note = payload.get("note")
    return refunds.ExternalRefund(
        order_id=facts.id,
        external_id=str(refund_id),
        lines=lines,
        shipping=shipping,
        shipping_tax=shipping_tax,
        transactions=transactions,
        restock=restock,
        note=str(note) if note is not None else None,
    )


def handle_refund(tx: Tx, delivery: Delivery, now: datetime) -> int | None:
    rtx = _returns_tx(tx)
    payload = _payload(delivery)
    facts = _order(rtx, delivery.shop, payload)
    if facts is None:
        return None
    locations = {
        str(r.get("location_id"))
        for r in _objects(payload.get("refund_line_items"), "refund_line_items")
    }
    ext = refund_from_payload(payload, facts, rtx.core.known_locations(locations))
    refunds.record_external_refund(rtx, ext, now=now)
    return facts.id


def handle_transaction(tx: Tx, delivery: Delivery, now: datetime) -> int | None:
    rtx = _returns_tx(tx)
    payload = _payload(delivery)
    if payload.get("kind") not in ("sale", "capture") or payload.get("status") != "success":
        return None
    facts = _order(rtx, delivery.shop, payload)
    if facts is None:
        return None
    currency = payload.get("currency") or facts.order.currency
    if not isinstance(currency, str) or len(currency) != 3:
        raise InvalidPayload("currency must be an ISO 4217 code", field="currency")
    amount = _money(_set_amount(payload, "amount"), currency, "amount")
    payment = NewPayment(
        str(payload.get("gateway") or "unknown")[:64], amount, str(payload.get("id"))[:64]
    )
    refunds.record_channel_transaction(rtx, facts.id, payment, now=now)
    return facts.id


def handle_fulfilment(tx: Tx, delivery: Delivery, now: datetime) -> int | None:
    rtx = _returns_tx(tx)
    payload = _payload(delivery)
    facts = _order(rtx, delivery.shop, payload)
    if facts is None or payload.get("status") not in ("success", None):
        return None
    if facts.status is OrderStatus.CANCELLED:
        return None  # a cancelled order's units are not returnable
    fulfilled = _time(payload.get("created_at"), "created_at")
    delivered = None
    if payload.get("shipment_status") == "delivered":
        delivered = _time(payload.get("updated_at") or payload.get("created_at"), "updated_at")
    ours = own_fulfilment(rtx.conn, facts.id, payload)
    first = first_word_of(rtx.conn, facts.id, payload.get("id"), now)
    refunds.mark_delivered(rtx, facts.id, delivered_at=delivered, fulfilled_at=fulfilled,
                           source="shopify", now=now, consume=first and not ours,
                           units=_fulfilled_lines(rtx, facts.id, payload),
                           at=aoms_location(rtx.conn, delivery.shop,
                                            payload.get("location_id")))  # fmt: skip
    return facts.id


def _fulfilled_lines(
    rtx: SqlReturnsTx, order_id: int, payload: Mapping[str, Any]
) -> dict[int, int] | None:
    """The fulfillment's units by aoms order line, from its `line_items` (Shopify's line item
    ids); None when it names none of the order's lines (then all the order still holds is
    taken as fulfilled)."""
    items = payload.get("line_items")
    if not isinstance(items, list) or not items:
        return None
    ol = t.order_lines.c
    by_external = {
        str(r.external_id): r.line_no
        for r in rtx.conn.execute(select(ol.line_no, ol.external_id).where(ol.order_id == order_id))
        if r.external_id
    }
    units: dict[int, int] = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        line_no = by_external.get(str(item.get("id")))
        qty = item.get("quantity")
        if line_no is not None and isinstance(qty, int) and qty > 0:
            units[line_no] = units.get(line_no, 0) + qty
    return units or None


def handle_return_status(tx: Tx, delivery: Delivery, now: datetime) -> int | None:
    """returns/approve, returns/decline and returns/cancel for a return aoms holds under the
    same Shopify return id: the same decision here, when the return's state allows it.
    (returns/request carries no line items, so a return is opened over the API.)"""
    rtx = _returns_tx(tx)
    payload = _payload(delivery)
    return_id = rtx.find_return(delivery.shop, str(payload.get("id")))
    if return_id is None:
        return None
    rec = rtx.get_return(return_id)
    assert rec is not None
    topic = delivery.topic
    if topic in ("returns/approve", "returns/decline") and rec.status is ReturnStatus.REVIEW:
        decline = payload.get("decline") if isinstance(payload.get("decline"), Mapping) else {}
        note = str((decline or {}).get("note") or (decline or {}).get("reason") or "in Shopify")
        svc.review_return(
            rtx,
            return_id,
            approve=topic == "returns/approve",
            note=f"{topic.split('/')[1]}d in Shopify: {note}"[:2000],
            geocode=geocode,
            now=now,
        )
        return rec.order_id
    if topic == "returns/cancel" and ReturnStatus.CANCELLED in TRANSITIONS[rec.status]:
        svc.cancel_return(rtx, return_id, now=now)
        return rec.order_id
    return None


TOPIC_HANDLERS: dict[str, TopicHandler] = {
    "returns/approve": handle_return_status,
    "returns/decline": handle_return_status,
    "returns/cancel": handle_return_status,
    "refunds/create": handle_refund,
    "order_transactions/create": handle_transaction,
    "fulfillments/create": handle_fulfilment,
    "fulfillments/update": handle_fulfilment,
}
