"""Scarcity prices for a live store, over the HTTP API, on SQLite and PostgreSQL.

The network (as in test_waves): A at the door of a cluster of customers (0 km), B 700 km
east; handling 1.50; the builders' card (up to 1 kg: 0-100 km 4.00, 100-500 km 6.00,
500-1000 km 8.00). One X weighs 500 g. A door customer costs 5.50 from A and 9.50 from B; a
customer 250 km east of A (450 km from B) costs 7.50 from either.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.domain.routing import Policy
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, east, network, services_card

SHOP = "shop.myshopify.com"
POLICIES = f"/v1/shops/{SHOP}/routing-policies"
SCARCITY = {"horizon_days": 1, "window": 50, "refresh_minutes": 60}


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    network(runtime.engine, {("X", "a"): 6, ("X", "b"): 10}, locations={"a": 0, "b": 700},
            policy=Policy.OPTIMAL)  # fmt: skip
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def place(
    client: TestClient, external_id: str, km: float, hours_ago: float, method: str | None = None
) -> int:
    p = east(km)
    body: dict[str, Any] = {
        "shop": SHOP,
        "external_id": external_id,
        "currency": "USD",
        "placed_at": (T0 - timedelta(hours=hours_ago)).isoformat(),
        "shipping_address": {"country_code": "US", "latitude": p.lat, "longitude": p.lng},
        "lines": [{"sku": "X", "quantity": 1, "unit_price": "10.00", "grams": 500}],
    }
    if method:
        body["shipping_method"] = method
    answer = client.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    order_id: int = answer.json()["order"]["id"]
    return order_id


def shipped_from(client: TestClient, order_id: int) -> tuple[list[str], str]:
    order: dict[str, Any] = client.get(f"/v1/orders/{order_id}").json()
    where = sorted(f["location_id"] for f in order["fulfilment_orders"])
    return where, order["routing"][-1]["explanation"]


def test_stock_priced_by_the_orders_to_come_sends_a_tied_order_to_the_plentiful_location(
    client: TestClient, runtime: Runtime
) -> None:
    body = {"document": {"policy": "optimal", "scarcity": SCARCITY}, "note": "scarcity"}
    assert client.post(POLICIES, json=body).status_code == 201
    assert client.post(f"{POLICIES}/1/activate").status_code == 200
    # Four door customers over the last 12 hours take four of A's six; a 250 km customer, with
    # no prices yet, ties and takes a fifth from A (the nearer). A has 1 left, B 10.
    for i, hours in enumerate((12, 9, 6, 3)):
        assert shipped_from(client, place(client, f"door-{i}", 0, hours))[0] == ["a"]
    assert shipped_from(client, place(client, "far-0", 250, 1))[0] == ["a"]
    # The window: 5 orders over 12 hours; the horizon is 1 day, so each counts 24/12 = 2 times
    # (fewer than 100 orders: demand taken to persist). Expected: 8 door units and 2 far ones
    # against A's 1 and B's 10. A's last unit is worth a door order's saving, 9.50 - 5.50 =
    # 4.00; B's stock is not short (9 units would come from it), so it is free.
    answer = client.post(f"/v1/shops/{SHOP}/scarcity/refresh")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["orders"], report["each"], report["persistence"]) == (5, 2.0, 1.0)
    prices = client.get(f"/v1/shops/{SHOP}/scarcity").json()
    assert [(p["location_id"], p["sku"], p["price_minor"]) for p in prices["prices"]] == [
        ("a", "X", 400.0)
    ]
    # The next 250 km customer: 7.50 from either, + 4.00 for A's last unit: B.
    where, words = shipped_from(client, place(client, "far-1", 250, 0))
    assert where == ["b"]
    assert "Scarcity prices per unit taken, added to the plan's score: X at A 4.00 USD." in words
    # And a door customer still takes A's last unit: 5.50 + 4.00 < 9.50 from B.
    assert shipped_from(client, place(client, "door-4", 0, 0))[0] == ["a"]


def test_the_orders_to_come_are_priced_by_the_carrier_services_their_methods_need(
    client: TestClient, runtime: Runtime
) -> None:
    """As above, but the card's prices are a `ground` service (1, 3, 5, 6 days by distance
    band) beside `express` at twice the price (1, 1, 1, 2 days), and the door customers order
    Express, which the policy gives 1 day. From A (0 km) ground arrives in a day: 5.50; from B
    (700 km) only express does: 16.00 + 1.50 = 17.50. So A's last unit is worth 17.50 - 5.50 =
    12.00 to the Express orders to come, not the 4.00 of ground from B."""
    card = services_card([1, 3, 5, 6], [1, 1, 1, 2])
    assert client.put("/v1/rate-cards/USD", json=card).status_code == 200
    doc = {"policy": "optimal", "scarcity": SCARCITY, "delivery_days": {"Express": 1}}
    assert client.post(POLICIES, json={"document": doc, "note": "x"}).status_code == 201
    assert client.post(f"{POLICIES}/1/activate").status_code == 200
    for i, hours in enumerate((12, 9, 6, 3)):
        assert shipped_from(client, place(client, f"door-{i}", 0, hours, "Express"))[0] == ["a"]
    assert shipped_from(client, place(client, "far-0", 250, 1))[0] == ["a"]
    answer = client.post(f"/v1/shops/{SHOP}/scarcity/refresh")
    assert answer.status_code == 200, answer.text
    prices_now = client.get(f"/v1/shops/{SHOP}/scarcity").json()["prices"]
    assert [(p["location_id"], p["sku"], p["price_minor"]) for p in prices_now] == [
        ("a", "X", 1200.0)
    ]


def test_the_workers_refresh_prices_when_they_are_older_than_the_policy_says(
    client: TestClient, runtime: Runtime
) -> None:
    body = {"document": {"policy": "optimal", "scarcity": SCARCITY}, "note": "scarcity"}
    client.post(POLICIES, json=body)
    client.post(f"{POLICIES}/1/activate")
    place(client, "door-0", 0, 2)
    (first,) = runtime.refresh_due_prices()
    assert (first["orders"], first["computed_at"]) == (1, T0)
    runtime.clock = lambda: T0 + timedelta(minutes=59)
    assert runtime.refresh_due_prices() == []
    runtime.clock = lambda: T0 + timedelta(minutes=60)
    (second,) = runtime.refresh_due_prices()
    assert second["computed_at"] == T0 + timedelta(minutes=60)


def test_a_shop_without_the_setting_is_not_priced_and_an_unknown_shop_is_refused(
    client: TestClient, runtime: Runtime
) -> None:
    answer = client.post(f"/v1/shops/{SHOP}/scarcity/refresh").json()
    assert answer["skipped"] == "no scarcity setting"
    assert runtime.refresh_due_prices() == []
    missing = client.post("/v1/shops/nobody.example/scarcity/refresh")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_shop")
    bad = {"document": {"policy": "optimal", "scarcity": {"window": 5}}, "note": "x"}
    refused = client.post(POLICIES, json=bad)
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_input")
