"""Small builders so each test states only what matters to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from aoms.adapters.db import setup
from aoms.adapters.db.store import SqlTx
from aoms.domain.geo import Point
from aoms.domain.money import Money
from aoms.domain.orders import Address, Order, OrderLine
from aoms.domain.routing import Candidate, Policy, RateCard

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
KM_PER_DEGREE = 111.19508  # along the equator, for the mean Earth radius used by haversine


def east(km: float) -> Point:
    """A point `km` east of the customer, who lives at (0°, 10°E) on the equator."""
    return Point(0.0, 10.0 + km / KM_PER_DEGREE)


def card(
    prices: list[list[str]], distance_km: list[float], weight_g: list[int], currency: str = "USD"
) -> RateCard:
    return RateCard(
        currency,
        tuple(distance_km),
        tuple(weight_g),
        tuple(tuple(Decimal(p) for p in row) for row in prices),
    )


# Distance bands 0-100, -500, -1000, -3000 km; weight bands 0-1000, -3000, -10000 g.
CARD = card(
    [
        ["4.00", "6.00", "9.00"],
        ["6.00", "8.00", "12.00"],
        ["8.00", "11.00", "16.00"],
        ["12.00", "16.00", "24.00"],
    ],
    [100, 500, 1000, 3000],
    [1000, 3000, 10000],
)


def candidate(location_id: str, km: float, handling: str = "1.50", **stock: int) -> Candidate:
    return Candidate(location_id, location_id.upper(), east(km), Money.of(handling, "USD"), stock)


def order(
    *lines: tuple[str, int],
    external_id: str = "1001",
    shop: str = "shop.myshopify.com",
    dest: Point | None = None,
    updated: datetime = T0,
    grams: int = 500,
    cancelled_at: datetime | None = None,
    financial_status: str = "paid",
) -> Order:
    return Order(
        shop=shop,
        channel="shopify",
        external_id=external_id,
        name=f"#{external_id}",
        currency="USD",
        placed_at=T0,
        source_updated_at=updated,
        lines=tuple(
            OrderLine(
                line_no=i + 1,
                sku=sku,
                quantity=q,
                unit_price=Money.of("10.00", "USD"),
                discount=Money.zero("USD"),
                tax=Money.zero("USD"),
                grams=grams,
            )
            for i, (sku, q) in enumerate(lines)
        ),
        shipping_address=Address(country_code="US", point=dest or east(0)),
        financial_status=financial_status,
        cancelled_at=cancelled_at,
    )


def network(
    engine: Engine,
    stock: dict[tuple[str, str], int],
    *,
    locations: dict[str, float] | None = None,
    policy: Policy = Policy.LANDED_COST,
    shop: str = "shop.myshopify.com",
) -> None:
    """Locations at `km` east of the destination (0, 0), the test card, and stock counts."""
    locations = locations or {"a": 50, "b": 80, "c": 700}
    with engine.begin() as conn:
        setup.upsert_shop(conn, shop, policy, "USD", T0)
        setup.set_rate_card(conn, CARD, T0)
        for loc_id, km in locations.items():
            p = east(km)
            setup.upsert_location(
                conn,
                id=loc_id,
                name=loc_id.upper(),
                lat=p.lat,
                lng=p.lng,
                country_code="US",
                handling=Money.of("1.50", "USD"),
                now=T0,
            )
        tx = SqlTx(conn, conn.dialect.name)
        for (sku, loc_id), n in stock.items():
            tx.change_stock(
                sku, loc_id, on_hand=n, reason="initial_count", reference="test", now=T0
            )
        tx.flush()  # the movements' ledger entries


def shopify_payload(
    order_id: int,
    *,
    lines: list[tuple[str, int, str]],
    updated_at: datetime = T0,
    financial_status: str = "pending",
    cancelled_at: datetime | None = None,
) -> dict[str, Any]:
    """A Shopify REST Order body, trimmed to the fields aoms reads."""
    subtotal = sum(Decimal(price) * q for _, q, price in lines)
    return {
        "id": order_id,
        "name": f"#{order_id % 10000}",
        "currency": "USD",
        "created_at": T0.isoformat(),
        "updated_at": updated_at.isoformat(),
        "cancelled_at": cancelled_at.isoformat() if cancelled_at else None,
        "financial_status": financial_status,
        "taxes_included": False,
        "total_discounts": "0.00",
        "total_tax": "0.00",
        "total_price": str(subtotal),
        "line_items": [
            {
                "id": order_id * 10 + i,
                "sku": sku,
                "quantity": q,
                "price": price,
                "grams": 500,
                "requires_shipping": True,
                "variant_id": 1000 + i,
                "tax_lines": [],
                "discount_allocations": [],
                "properties": [],
            }
            for i, (sku, q, price) in enumerate(lines)
        ],
        "shipping_lines": [],
        "shipping_address": {
            "country_code": "US",
            "zip": "10001",
            "latitude": 0.0,
            "longitude": 10.0,
        },
    }


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def post_order(
    client: Any, shop: str, external_id: str, *lines: tuple[str, int], method: str | None = None
) -> Any:
    """POST a neutral order of 500 g units at 10.00 to the customer at (0°, 10°E), placed at
    T0 (by shipping `method`, if given); the answer."""
    body: dict[str, Any] = {
        "shop": shop,
        "external_id": external_id,
        "currency": "USD",
        "placed_at": T0.isoformat(),
        "shipping_address": {"country_code": "US", "latitude": 0.0, "longitude": 10.0},
        "lines": [
            {"sku": sku, "quantity": q, "unit_price": "10.00", "grams": 500} for sku, q in lines
        ],
    }
    if method is not None:
        body["shipping_method"] = method
    return client.post("/v1/orders", json=body)


def place_order(
    client: Any, shop: str, external_id: str, *lines: tuple[str, int], method: str | None = None
) -> Any:
    """`post_order`, which must be accepted; the order as the API shows it."""
    answer = post_order(client, shop, external_id, *lines, method=method)
    assert answer.status_code == 201, answer.text
    return answer.json()["order"]


def services_card(ground_days: list[int], express_days: list[int]) -> dict[str, Any]:
    """CARD's prices as the service `ground` taking `ground_days` per distance band, beside
    `express` at twice the price taking `express_days`: a body for PUT /v1/rate-cards/USD."""
    prices = [[str(p) for p in row] for row in CARD.prices]
    return {
        "distance_km": list(CARD.distance_km), "weight_g": list(CARD.weight_g), "prices": prices,
        "service": "ground", "transit_days": ground_days,
        "services": [{"name": "express", "transit_days": express_days,
                      "prices": [[str(2 * p) for p in row] for row in CARD.prices]}],
    }  # fmt: skip
