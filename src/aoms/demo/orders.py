"""Generate realistic Shopify `orders/create` payloads for the demo store (no I/O)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any


def demo_store() -> dict[str, Any]:
    text = resources.files("aoms.demo").joinpath("store.json").read_text("utf-8")
    return dict(json.loads(text))


def _zip3_points() -> list[tuple[str, float, float]]:
    text = resources.files("aoms.adapters.geodata").joinpath("us_zip3.json").read_text("utf-8")
    return [(k, v[0], v[1]) for k, v in sorted(json.loads(text).items())]


def generate_orders(
    store: dict[str, Any],
    count: int,
    *,
    seed: int = 1,
    start: datetime | None = None,
    first_id: int = 820982911946154508,
    step: timedelta = timedelta(seconds=37),
) -> list[dict[str, Any]]:
    """`count` Shopify REST Order payloads: 1–4 lines, popular SKUs more often, US addresses.

    Ids start above 2^53 like real Shopify ids. Amounts are strings and add up:
    line prices − discounts + tax + shipping = total_price.
    """
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    products = store["products"]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(products))]
    places = _zip3_points()
    payloads = []
    for n in range(count):
        placed = start + step * n
        n_lines = min(4, 1 + int(rng.expovariate(1.3)))
        picked = rng.choices(products, weights=weights, k=n_lines)
        zip3, lat, lng = rng.choice(places)
        lines = []
        for i, p in enumerate(picked):
            qty = 1 if rng.random() < 0.8 else 2
            price = Decimal(p["price"])
            tax = (price * qty * Decimal("0.07")).quantize(Decimal("0.01"))
            lines.append(
                {
                    "id": first_id * 10 + n * 10 + i,
                    "variant_id": 40_000_000_000 + n * 10 + i,
                    "product_id": 7_000_000_000 + products.index(p),
                    "sku": p["sku"],
                    "title": p["title"],
                    "name": p["title"],
                    "quantity": qty,
                    "price": str(price),
                    "grams": p["grams"],
                    "requires_shipping": True,
                    "taxable": True,
                    "fulfillment_status": None,
                    "properties": [],
                    "discount_allocations": [],
                    "tax_lines": [{"title": "Sales tax", "rate": 0.07, "price": str(tax)}],
                }
            )
        subtotal = sum(Decimal(li["price"]) * li["quantity"] for li in lines)
        tax_total = sum(Decimal(li["tax_lines"][0]["price"]) for li in lines)
        shipping = Decimal("0.00") if subtotal >= 100 else Decimal("7.95")
        total = subtotal + tax_total + shipping
        stamp = placed.isoformat().replace("+00:00", "Z")
        payloads.append(
            {
                "id": first_id + n,
                "admin_graphql_api_id": f"gid://shopify/Order/{first_id + n}",
                "name": f"#{1001 + n}",
                "order_number": 1001 + n,
                "email": f"customer{n}@example.com",
                "created_at": stamp,
                "updated_at": stamp,
                "processed_at": stamp,
                "cancelled_at": None,
                "financial_status": "paid",
                "fulfillment_status": None,
                "currency": "USD",
                "taxes_included": False,
                "subtotal_price": str(subtotal),
                "total_line_items_price": str(subtotal),
                "total_discounts": "0.00",
                "total_tax": str(tax_total),
                "total_price": str(total),
                "tags": "",
                "line_items": lines,
                "shipping_lines": [
                    {
                        "title": "Standard",
                        "code": "STANDARD",
                        "price": str(shipping),
                        "source": "shopify",
                        "tax_lines": [],
                    }
                ],
                "shipping_address": {
                    "name": f"Customer {n}",
                    "address1": f"{n} Main St",
                    "city": "",
                    "zip": f"{zip3}01",
                    "province_code": None,
                    "country_code": "US",
                    "latitude": round(lat, 5),
                    "longitude": round(lng, 5),
                },
            }
        )
    return payloads
