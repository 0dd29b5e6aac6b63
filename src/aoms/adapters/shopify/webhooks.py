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
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aoms.domain.errors import AomsError, InvalidPayload
from aoms.domain.geo import Point
from aoms.domain.lifecycle import RiskAssessment
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


MAX_AMOUNT = Decimal(10) ** 12  # larger amounts are refused: no order is worth a trillion
MAX_QUANTITY = 1_000_000
MAX_GRAMS = 10_000_000


def _money(value: Any, currency: str, field: str) -> Money:
    if value is None or value == "":
        return Money.zero(currency)
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InvalidPayload(f"{field} must be an amount", field=field)
    try:
        money = Money.of(str(value) if not isinstance(value, str) else value, currency)
    except AomsError as exc:
        raise InvalidPayload(f"{field}: {exc.message}", field=field) from exc
    if abs(money.amount) >= MAX_AMOUNT:
        raise InvalidPayload(f"{field} is out of range: {money.amount}", field=field)
    return money


def _text(value: Any, limit: int) -> str | None:
    """Free text from the payload, as valid UTF-8 of at most `limit` characters (a lone
    surrogate escaped in the JSON becomes "?")."""
    if value is None:
        return None
    return str(value)[:limit].encode("utf-8", "replace").decode("utf-8")


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
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidPayload(f"{field} is out of range: {value!r}", field=field) from exc
    if not 1970 <= utc.year <= 2999:
        raise InvalidPayload(f"{field} is out of range: {value!r}", field=field)
    return utc


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _address(raw: Any) -> Address:
    if not raw:
        return Address()
    if not isinstance(raw, Mapping):
        raise InvalidPayload("shipping_address must be an object", field="shipping_address")
    lat, lng = _float(raw.get("latitude")), _float(raw.get("longitude"))
    return Address(
        country_code=_text(raw.get("country_code"), 2),
        province_code=_text(raw.get("province_code"), 16),
        city=_text(raw.get("city"), 255),
        zip=_text(raw.get("zip"), 32),
        address1=_text(raw.get("address1"), 255),
        name=_text(raw.get("name"), 255),
        point=Point(lat, lng) if lat is not None and lng is not None else None,
    )


def _objects(value: Any, field: str) -> list[Mapping[str, Any]]:
    """A list of JSON objects (or nothing)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidPayload(f"{field} must be a list of objects", field=field)
    return value


def _sum(items: Any, key: str, currency: str, field: str) -> Money:
    result = Money.zero(currency)
    for item in _objects(items, field):
        result = result + _money(_set_amount(item, key), currency, field)
    return result


def _line(index: int, raw: Mapping[str, Any], currency: str) -> OrderLine:
    field = f"line_items[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidPayload(f"{field} is not an object", field=field)
    # current_quantity (API 2024-01+) is the quantity after edits removed units.
    quantity = raw.get("current_quantity", raw.get("quantity"))
    if (
        not isinstance(quantity, int)
        or isinstance(quantity, bool)
        or not (0 <= quantity <= MAX_QUANTITY)
    ):
        raise InvalidPayload(
            f"{field}.quantity must be a whole number from 0 to {MAX_QUANTITY}", field=field
        )
    variant = raw.get("variant_id")
    # A line without a SKU still ships: it is stocked under its variant id.
    sku = raw.get("sku") or (f"variant:{variant}" if variant is not None else None)
    if not sku:
        raise InvalidPayload(f"{field} has neither sku nor variant_id", field=f"{field}.sku")
    if not isinstance(sku, str | int) or len(str(sku)) > 255 or _text(sku, 255) != str(sku):
        raise InvalidPayload(f"{field}.sku must be valid text of at most 255 characters",
                             field=f"{field}.sku")  # fmt: skip
    allocations = raw.get("discount_allocations") or []
    discount = (
        _sum(allocations, "amount", currency, f"{field}.discount_allocations")
        if allocations
        else _money(_set_amount(raw, "total_discount"), currency, f"{field}.total_discount")
    )
    grams = raw.get("grams") or 0
    if (
        not isinstance(grams, int | float)
        or isinstance(grams, bool)
        or not (0 <= grams <= MAX_GRAMS)
    ):
        raise InvalidPayload(f"{field}.grams must be a weight from 0 to {MAX_GRAMS} g",
                             field=f"{field}.grams")  # fmt: skip
    return OrderLine(
        line_no=index + 1,
        sku=str(sku),
        quantity=quantity,
        unit_price=_money(_set_amount(raw, "price"), currency, f"{field}.price"),
        discount=discount,
        tax=_sum(raw.get("tax_lines") or [], "price", currency, f"{field}.tax_lines"),
        grams=int(grams),
        requires_shipping=bool(raw.get("requires_shipping", True)),
        external_id=_text(raw.get("id"), 64),
        variant_id=_text(variant, 64),
        title=_text(raw.get("name") or raw.get("title"), 512),
        properties=tuple(
            (str(p.get("name"))[:255], str(p.get("value"))[:1000])
            for p in _objects(raw.get("properties"), f"{field}.properties")
        ),
    )


def parse_order(shop: str, payload: Mapping[str, Any]) -> Order:
    """A Shopify REST Order (a webhook body) as a domain Order. Raises InvalidPayload."""
    try:
        return _parse_order(shop, payload)
    except (TypeError, AttributeError, ValueError, OverflowError, InvalidOperation) as exc:
        raise InvalidPayload(f"cannot read the order: {type(exc).__name__}: {exc}") from exc


def _parse_order(shop: str, payload: Mapping[str, Any]) -> Order:
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
    shipping_lines = _objects(payload.get("shipping_lines"), "shipping_lines")
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
            name=str(payload.get("name") or f"#{payload.get('order_number', order_id)}")[:255],
            currency=currency,
            placed_at=created,
            source_updated_at=updated,
            lines=lines,
            shipping_address=_address(payload.get("shipping_address")),
            financial_status=_text(payload.get("financial_status"), 32),
            cancelled_at=_time(cancelled, "cancelled_at") if cancelled else None,
            shipping=_sum(shipping_lines, "price", currency, "shipping_lines"),
            shipping_tax=_sum(
                [t for s in shipping_lines for t in _objects(s.get("tax_lines"), "tax_lines")],
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
            tags=tuple(t.strip()[:255] for t in str(tags).split(",") if t.strip())[:250],
            billing_address=_address(payload["billing_address"])
            if isinstance(payload.get("billing_address"), Mapping)
            else None,
            customer_key=_customer_key(payload),
            shipping_method=_shipping_method(shipping_lines),
        )
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise InvalidPayload(f"cannot read the order: {exc}") from exc


def _shipping_method(shipping_lines: list[Mapping[str, Any]]) -> str | None:
    """The first shipping line's title (what the buyer chose, e.g. "Express"), else its code."""
    for s in shipping_lines:
        for key in ("title", "code"):
            if isinstance(s.get(key), str) and s[key].strip():
                return str(s[key]).strip()[:255]
    return None


def _customer_key(payload: Mapping[str, Any]) -> str | None:
    """Who placed the order, for velocity checks: Shopify's customer id, else the e-mail."""
    customer = payload.get("customer")
    if isinstance(customer, Mapping) and isinstance(customer.get("id"), int):
        return f"customer:{customer['id']}"
    email = payload.get("email") or payload.get("contact_email")
    return f"email:{email.strip().lower()[:240]}" if isinstance(email, str) and email else None


def parse_delivery(shop: str, topic: str, body: bytes) -> Order | None:
    """The order carried by a stored delivery, or None for a topic that carries none."""
    if topic not in ORDER_TOPICS:
        return None
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidPayload(f"the body is not JSON: {exc}") from exc
    return parse_order(shop, payload)


RISK_TOPIC = "orders/risk_assessment_changed"


def parse_risk_assessment(topic: str, body: bytes) -> tuple[str, RiskAssessment] | None:
    """(Shopify order id, assessment) from an orders/risk_assessment_changed delivery, whose
    body is {"order_id", "admin_graphql_api_order_id", "risk_level", "provider_title", ...};
    None for any other topic."""
    if topic != RISK_TOPIC:
        return None
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidPayload(f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, Mapping):
        raise InvalidPayload("the body is not a JSON object")
    raw_id = payload.get("order_id") or payload.get("admin_graphql_api_order_id")
    order_id = str(raw_id).rsplit("/", 1)[-1] if raw_id is not None else ""
    if not order_id.isdigit():
        raise InvalidPayload("order_id must name a Shopify order", field="order_id")
    return order_id, RiskAssessment.from_shopify(payload)
