"""GraphQL Admin API orders → the REST Order shape webhooks carry → domain orders.

Reconciliation reads orders over GraphQL, but an order must become exactly the Order its
webhook would have made (the same ids, quantities, amounts and `updated_at`), or a later
webhook would look like a change. So a GraphQL Order node is rewritten field by field into
the REST resource's names and read by the same `parse_order` the webhooks use:

| GraphQL                                   | REST                              |
|-------------------------------------------|-----------------------------------|
| legacyResourceId (UnsignedInt64, a string) | id (an integer)                   |
| displayFinancialStatus (PAID)              | financial_status (paid)           |
| tags (a list)                              | tags (comma-separated)            |
| *Set.shopMoney.amount                      | price, total_tax, … (strings)     |
| lineItems.nodes[].currentQuantity          | line_items[].current_quantity     |
| variant.inventoryItem.measurement.weight   | line_items[].grams                |
| lineItem id gid://shopify/LineItem/N       | line_items[].id = N               |
| shippingAddress.countryCodeV2              | shipping_address.country_code     |
| billingAddress, email, customer.legacyResourceId | billing_address, email, customer.id |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aoms.adapters.shopify.webhooks import parse_order
from aoms.domain.errors import InvalidPayload
from aoms.domain.orders import Order

GRAMS_PER = {"GRAMS": 1.0, "KILOGRAMS": 1000.0, "OUNCES": 28.349523125, "POUNDS": 453.59237}


def _amount(bag: Any) -> str | None:
    if not isinstance(bag, Mapping):
        return None
    money = bag.get("shopMoney")
    return str(money["amount"]) if isinstance(money, Mapping) and "amount" in money else None


def _gid_number(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    tail = value.rsplit("/", 1)[-1].split("?")[0]
    return int(tail) if tail.isdigit() else None


def _int(value: Any, field: str) -> int:
    try:
        return int(str(value))
    except ValueError as exc:
        raise InvalidPayload(f"{field} must be a whole number", field=field) from exc


def _grams(variant: Any) -> int:
    weight = (((variant or {}).get("inventoryItem") or {}).get("measurement") or {}).get(
        "weight"
    ) or {}
    unit, value = weight.get("unit"), weight.get("value")
    if unit not in GRAMS_PER or not isinstance(value, int | float):
        return 0
    return round(value * GRAMS_PER[unit])


def _tax_lines(items: Any) -> list[dict[str, Any]]:
    return [{"price": _amount(t.get("priceSet"))} for t in items or [] if isinstance(t, Mapping)]


def rest_order(node: Mapping[str, Any]) -> dict[str, Any]:
    """A GraphQL Order node (as `ORDER_FIELDS` selects it) in the REST Order's shape."""
    if not isinstance(node, Mapping):
        raise InvalidPayload("the order node is not an object")
    lines = []
    for raw in ((node.get("lineItems") or {}).get("nodes")) or []:
        variant = raw.get("variant")
        lines.append(
            {
                "id": _gid_number(raw.get("id")),
                "sku": raw.get("sku"),
                "name": raw.get("name"),
                "quantity": raw.get("quantity"),
                "current_quantity": raw.get("currentQuantity", raw.get("quantity")),
                "requires_shipping": raw.get("requiresShipping", True),
                "variant_id": _int(variant["legacyResourceId"], "variant.legacyResourceId")
                if isinstance(variant, Mapping) and variant.get("legacyResourceId") is not None
                else None,
                "grams": _grams(variant),
                "price": _amount(raw.get("originalUnitPriceSet")),
                "total_discount": _amount(raw.get("totalDiscountSet")),
                "discount_allocations": [
                    {"amount": _amount(d.get("allocatedAmountSet"))}
                    for d in raw.get("discountAllocations") or []
                ],
                "tax_lines": _tax_lines(raw.get("taxLines")),
                "properties": [
                    {"name": a.get("key"), "value": a.get("value")}
                    for a in raw.get("customAttributes") or []
                ],
            }
        )
    shipping = [
        {
            "price": _amount(s.get("originalPriceSet")),
            "tax_lines": _tax_lines(s.get("taxLines")),
            "title": s.get("title"),
        }
        for s in ((node.get("shippingLines") or {}).get("nodes")) or []
    ]
    address = node.get("shippingAddress")
    billing = node.get("billingAddress")
    customer = node.get("customer")
    status = node.get("displayFinancialStatus")
    return {
        "id": _int(node.get("legacyResourceId"), "legacyResourceId"),
        "name": node.get("name"),
        "currency": node.get("currencyCode"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "financial_status": status.lower() if isinstance(status, str) else None,
        "taxes_included": bool(node.get("taxesIncluded")),
        "tags": ", ".join(str(t) for t in node.get("tags") or []),
        "total_price": _amount(node.get("totalPriceSet")),
        "total_tax": _amount(node.get("totalTaxSet")),
        "total_discounts": _amount(node.get("totalDiscountsSet")),
        "line_items": lines,
        "shipping_lines": shipping,
        "shipping_address": _rest_address(address),
        "billing_address": _rest_address(billing),
        "email": node.get("email"),
        "customer": {"id": _int(customer["legacyResourceId"], "customer.legacyResourceId")}
        if isinstance(customer, Mapping) and customer.get("legacyResourceId") is not None
        else None,
    }


def _rest_address(address: Any) -> dict[str, Any] | None:
    if not isinstance(address, Mapping):
        return None
    return {
        "address1": address.get("address1"),
        "city": address.get("city"),
        "country_code": address.get("countryCodeV2"),
        "province_code": address.get("provinceCode"),
        "zip": address.get("zip"),
        "name": address.get("name"),
        "latitude": address.get("latitude"),
        "longitude": address.get("longitude"),
    }


def parse_graphql_order(shop: str, node: Mapping[str, Any]) -> Order:
    """A GraphQL Admin API Order as a domain Order, read exactly as its webhook would be."""
    try:
        rest = rest_order(node)
    except (TypeError, AttributeError, KeyError) as exc:
        raise InvalidPayload(f"cannot read the order: {type(exc).__name__}: {exc}") from exc
    return parse_order(shop, rest)
