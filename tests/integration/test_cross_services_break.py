"""Carrier services beyond routing, where they still go wrong, on SQLite and PostgreSQL: what
a merchant hits when an order's shipping method changes after it was routed, and what the
scarcity refresh makes of orders to come whose method needs a dearer service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.bootstrap import Runtime
from aoms.domain.routing import Policy
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, east, network, services_card
from tests.integration.test_shipping_api import LA, World, _ok, world  # noqa: F401

SHOP = "shop.myshopify.com"
POLICIES = f"/v1/shops/{SHOP}/routing-policies"


def test_a_shipping_method_changed_after_routing_is_the_one_the_label_meets(
    world: World,  # noqa: F811
) -> None:
    """The policy gives Express 3 days. An order placed Monday the 7th with no method is
    routed with no limit; the channel then says the customer upgraded to Express (same lines,
    same address). Its label, bought with no date, must arrive by the 7th + 3 = Thursday the
    10th: usps_priority at 8.79 (the quotes of test_shipping_api), not the 4-day ground at
    5.71 the order's old method allowed."""
    client = world.client
    policies = "/v1/shops/acme.myshopify.com/routing-policies"
    doc = {"policy": "nearest", "delivery_days": {"Express": 3}}
    _ok(client.post(policies, json={"document": doc, "note": "promise Express"}), 201)
    _ok(client.post(f"{policies}/1/activate"))
    body: dict[str, Any] = {
        "shop": "acme.myshopify.com", "channel": "web", "external_id": "U-1", "currency": "USD",
        "placed_at": "2026-12-07T09:00:00Z", "updated_at": "2026-12-07T09:00:00Z",
        "shipping_address": LA,
        "lines": [{"sku": "mug", "quantity": 2, "unit_price": "12.00", "grams": 300}],
    }  # fmt: skip
    order_id = int(_ok(client.post("/v1/orders", json=body), 201)["order"]["id"])
    upgraded = {**body, "updated_at": "2026-12-07T09:30:00Z", "shipping_method": "Express"}
    answer = client.post("/v1/orders", json=upgraded)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "updated"), answer.text
    o = t.orders.c
    with world.runtime.store.read() as conn:
        method = conn.execute(select(o.shipping_method).where(o.id == order_id)).scalar_one()
    assert method == "Express"  # the order now says Express
    fos = _ok(client.get(f"/v1/orders/{order_id}"))["fulfilment_orders"]
    [fo] = [f for f in fos if f["status"] != "cancelled"]
    shipment = _ok(client.post(f"/v1/fulfilment-orders/{fo['id']}/shipments", json={}), 201)
    assert shipment["deliver_by"] == "2026-12-10"
    assert (shipment["parcels"][0]["service"], shipment["parcels"][0]["amount"]) == (
        "usps_priority",
        "8.79",
    )


# -- scarcity ------------------------------------------------------------------------------


@pytest.fixture
def shop(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    network(runtime.engine, {("X", "a"): 6, ("X", "b"): 0}, locations={"a": 0, "b": 700},
            policy=Policy.OPTIMAL)  # fmt: skip
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def test_stock_the_express_orders_to_come_want_is_priced_above_what_they_would_pay_for_it(
    shop: TestClient,
) -> None:
    """The card of test_scarcity_live's services test: `ground` (the card's own prices, 1, 3,
    5, 6 days by distance band) beside `express` at twice the price (1, 1, 1, 2 days); the
    policy gives Express 1 day. Only A (0 km) has X: 6 units. Four Express customers 2000 km
    away (band 4) each buy one 2 kg X (weight band 2) over 12 hours: no service arrives in a
    day from there, so each goes by the fastest, express (2 days), at 32.00 + 1.50 handling
    = 33.50, from A, which keeps 2 units.

    The refresh expects each of the four twice over the 1-day horizon: 8 units against A's
    2, so A's stock is scarce. A unit not shipped is counted at the dearest price of the card
    the orders are routed with plus the dearest handling: express's 48.00 + 1.50 = 49.50, so
    A's unit is worth at least 49.50 - 33.50 = 16.00. Counted at the base card's dearest
    (ground 24.00 + 1.50 = 25.50, less than shipping), the forecast backorders every Express
    order instead (which routing never does) and A's last units are free."""
    card = services_card([1, 3, 5, 6], [1, 1, 1, 2])
    assert shop.put("/v1/rate-cards/USD", json=card).status_code == 200
    scarcity = {"horizon_days": 1, "window": 50, "refresh_minutes": 60}
    doc = {"policy": "optimal", "scarcity": scarcity, "delivery_days": {"Express": 1}}
    assert shop.post(POLICIES, json={"document": doc, "note": "x"}).status_code == 201
    assert shop.post(f"{POLICIES}/1/activate").status_code == 200
    far = east(2000)
    for i, hours in enumerate((12, 9, 6, 3)):
        body = {
            "shop": SHOP, "external_id": f"far-{i}", "currency": "USD",
            "placed_at": (T0 - timedelta(hours=hours)).isoformat(), "shipping_method": "Express",
            "shipping_address": {"country_code": "US", "latitude": far.lat,
                                 "longitude": far.lng},
            "lines": [{"sku": "X", "quantity": 1, "unit_price": "60.00", "grams": 2000}],
        }  # fmt: skip
        answer = shop.post("/v1/orders", json=body)
        assert answer.status_code == 201, answer.text
        order = shop.get(f"/v1/orders/{answer.json()['order']['id']}").json()
        assert [f["location_id"] for f in order["fulfilment_orders"]] == ["a"]
        words = order["routing"][-1]["explanation"]
        assert "A by express (2 days: none is faster from there)" in words
    answer = shop.post(f"/v1/shops/{SHOP}/scarcity/refresh")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["orders"], answer.json()["each"]) == (4, 2.0)
    prices = shop.get(f"/v1/shops/{SHOP}/scarcity").json()["prices"]
    assert [(p["location_id"], p["sku"]) for p in prices] == [("a", "X")]
    assert prices[0]["price_minor"] >= 1600
