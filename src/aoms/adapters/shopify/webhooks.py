"""Shopify webhooks: signature check over the raw bytes, and order payloads → domain orders.

A webhook body for orders/* is the REST Order resource. Amounts are strings, ids are 64-bit
integers (kept exact: Python's json reads them as int, we store them as text).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aoms.domain.errors import AomsError, InvalidPayload
from aoms.domain.geo import Point
from aoms.domain.money import Money
from aoms.domain.orders import Address, Order, OrderLine

ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/cancelled",
        "orders/paid",
        "orders/fulfilled",
        "orders/partially_fulfilled",
        "orders/edited_full",
    }
)


def sign(body: bytes, secret: str) -> str:
    """The X-Shopify-Hmac-Sha256 value: base64 of HMAC-SHA256 over the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True when the header matches the body under any of the secrets (rotation: old + new)."""
    if not header:
        return False
    return any(
        hmac.compare_digest(sign(body, secret).encode(), header.strip().encode())
        for secret in secrets
        if secret
    )


def _money(value: Any, currency: str, field: str) -> Money:
    if value is None or value == "":
        return Money.zero(currency)
    try:
        return Money.of(str(value) if not isinstance(value, str) else value, currency)
    except AomsError as exc:
        raise InvalidPayload(f"{field}: {exc.message}", field=field) from exc


def _set_amount(obj: Mapping[str, Any], key: str) -> Any:
    """Read `key`, or the shop-money amount of `key_set` when only that is present."""
    if obj.get(key) is not None:
        return obj[key]
    money_set = obj.get(f"{key}_set") or {}
    return (money_set.get("shop_money") or {}).get("amount")


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidPayload(f"{field} is missing", field=field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidPayload(f"{field} is not an ISO-8601 time: {value!r}", field=field) from exc
    if parsed.tzinfo is None:
        raise InvalidPayload(f"{field} has no UTC offset: {value!r}", field=field)
    return parsed


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _address(raw: Mapping[str, Any] | None) -> Address:
    if not raw:
        return Address()
    lat, lng = _float(raw.get("latitude")), _float(raw.get("longitude"))
    return Address(
        country_code=raw.get("country_code"),
        province_code=raw.get("province_code"),
        city=raw.get("city"),
        zip=raw.get("zip"),
        address1=raw.get("address1"),
        name=raw.get("name"),
        point=Point(lat, lng) if lat is not None and lng is not None else None,
    )


def _sum(items: Iterable[Mapping[str, Any]], key: str, currency: str, field: str) -> Money:
    result = Money.zero(currency)
    for item in items:
        result = result + _money(_set_amount(item, key), currency, field)
    return result


def _line(index: int, raw: Mapping[str, Any], currency: str) -> OrderLine:
    field = f"line_items[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidPayload(f"{field} is not an object", field=field)
    quantity = raw.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise InvalidPayload(f"{field}.quantity must be a whole number ≥ 0", field=field)
    variant = raw.get("variant_id")
    # A line without a SKU still ships: it is stocked under its variant id.
    sku = raw.get("sku") or (f"variant:{variant}" if variant is not None else None)
    if not sku:
        raise InvalidPayload(f"{field} has neither sku nor variant_id", field=f"{field}.sku")
    allocations = raw.get("discount_allocations") or []
    discount = (
        _sum(allocations, "amount", currency, f"{field}.discount_allocations")
        if allocations
        else _money(_set_amount(raw, "total_discount"), currency, f"{field}.total_discount")
    )
    grams = raw.get("grams") or 0
    return OrderLine(
        line_no=index + 1,
        sku=str(sku),
        quantity=quantity,
        unit_price=_money(_set_amount(raw, "price"), currency, f"{field}.price"),
        discount=discount,
        tax=_sum(raw.get("tax_lines") or [], "price", currency, f"{field}.tax_lines"),
        grams=int(grams) if isinstance(grams, int | float) and grams >= 0 else 0,
        requires_shipping=bool(raw.get("requires_shipping", True)),
        external_id=str(raw["id"]) if raw.get("id") is not None else None,
        variant_id=str(variant) if variant is not None else None,
        title=raw.get("name") or raw.get("title"),
        properties=tuple(
            (str(p.get("name")), str(p.get("value")))
            for p in raw.get("properties") or []
            if isinstance(p, Mapping)
        ),
    )


def parse_order(shop: str, payload: Mapping[str, Any]) -> Order:
    """A Shopify REST Order (a webhook body) as a domain Order. Raises InvalidPayload."""
    if not isinstance(payload, Mapping):
        raise InvalidPayload("the body is not a JSON object")
    order_id = payload.get("id")
    if not isinstance(order_id, int) or isinstance(order_id, bool):
        raise InvalidPayload("id must be the numeric Shopify order id", field="id")
    currency = payload.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise InvalidPayload("currency must be an ISO 4217 code", field="currency")
    raw_lines = payload.get("line_items")
    if not isinstance(raw_lines, list):
        raise InvalidPayload("line_items must be a list", field="line_items")
    lines = tuple(_line(i, raw, currency) for i, raw in enumerate(raw_lines))
    shipping_lines = payload.get("shipping_lines") or []
    line_discounts = sum((ln.discount.amount for ln in lines), Decimal(0))
    total_discounts = _money(_set_amount(payload, "total_discounts"), currency, "total_discounts")
    order_level = total_discounts.amount - line_discounts
    created = _time(payload.get("created_at"), "created_at")
    updated = _time(payload.get("updated_at") or payload.get("created_at"), "updated_at")
    cancelled = payload.get("cancelled_at")
    tags = payload.get("tags") or ""
    total_price = _set_amount(payload, "total_price")
    try:
        return Order(
            shop=shop,
            channel="shopify",
            external_id=str(order_id),
            name=str(payload.get("name") or f"#{payload.get('order_number', order_id)}"),
            currency=currency,
            placed_at=created,
            source_updated_at=updated,
            lines=lines,
            shipping_address=_address(payload.get("shipping_address")),
            financial_status=payload.get("financial_status"),
            cancelled_at=_time(cancelled, "cancelled_at") if cancelled else None,
            shipping=_sum(shipping_lines, "price", currency, "shipping_lines"),
            shipping_tax=_sum(
                [t for s in shipping_lines for t in s.get("tax_lines") or []],
                "price",
                currency,
                "shipping_lines.tax_lines",
            ),
            order_discount=Money(max(order_level, Decimal(0)), currency),
            total_tax=_money(_set_amount(payload, "total_tax"), currency, "total_tax"),
            total_price=_money(total_price, currency, "total_price")
            if total_price is not None
            else None,
            taxes_included=bool(payload.get("taxes_included")),
            tags=tuple(t.strip() for t in str(tags).split(",") if t.strip()),
        )
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise InvalidPayload(f"cannot read the order: {exc}") from exc


def parse_delivery(shop: str, topic: str, body: bytes) -> Order | None:
    """The order carried by a stored delivery, or None for a topic that carries none."""
    if topic not in ORDER_TOPICS:
        return None
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayload(f"the body is not JSON: {exc}") from exc
    return parse_order(shop, payload)
