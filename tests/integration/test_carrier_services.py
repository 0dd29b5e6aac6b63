"""Routing over locations and carrier services together, over the HTTP API on SQLite and
PostgreSQL: the cheapest service that meets the order's delivery days, chosen with its
location.

The network of tests/builders.py: A at 50 km and C at 700 km east of the customer, each with
X in stock. The rate card has two services over its bands (0-100 km, -1000 km; 0-1 kg, -10 kg):

    ground   4.00 / 6.00 (≤100 km), 8.00 / 12.00 (≤1000 km); 2 days (≤100 km), 5 days
    express  9.00 / 12.00,          15.00 / 20.00;            1 day,            2 days

The active policy makes A's handling 6.00 (C keeps 1.50) and gives Standard 3 days, Express 1.
One 500 g unit, by hand:

* no shipping method (no limit): A 4.00 + 6.00 = 10.00; C by ground 8.00 + 1.50 = 9.50 → C;
* Standard (3 days): A by ground (2 days) 10.00; C's ground takes 5, so express 15.00 + 1.50 =
  16.50 → A by ground;
* Express (1 day): A's ground takes 2, so express 9.00 + 6.00 = 15.00; from C nothing is that
  fast, so its fastest, express (2 days), 16.50 → A by express.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, network

SHOP = "shop.myshopify.com"
CARD = {
    "distance_km": [100, 1000],
    "weight_g": [1000, 10000],
    "prices": [["4.00", "6.00"], ["8.00", "12.00"]],
    "service": "ground",
    "transit_days": [2, 5],
    "services": [
        {
            "name": "express",
            "transit_days": [1, 2],
            "prices": [["9.00", "12.00"], ["15.00", "20.00"]],
        }
    ],
}


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        put = c.put("/v1/rate-cards/USD", json=CARD)
        assert put.status_code == 200, put.text
        doc = {"policy": "optimal", "locations": {"a": {"handling": "6.00"}},
               "delivery_days": {"Standard": 3, "express": 1}}  # fmt: skip
        drafted = c.post(f"/v1/shops/{SHOP}/routing-policies", json={"document": doc, "note": "x"})
        assert drafted.status_code == 201, drafted.text
        assert c.post(f"/v1/shops/{SHOP}/routing-policies/1/activate").status_code == 200
        yield c


def place(client: TestClient, external_id: str, method: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "shop": SHOP, "external_id": external_id, "currency": "USD", "placed_at": T0.isoformat(),
        "shipping_address": {"country_code": "US", "latitude": 0.0, "longitude": 10.0},
        "lines": [{"sku": "X", "quantity": 1, "unit_price": "10.00", "grams": 500}],
    }  # fmt: skip
    if method:
        body["shipping_method"] = method
    answer = client.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    order: dict[str, Any] = answer.json()["order"]
    return order


def chosen(runtime: Runtime, order_id: int) -> list[tuple[str, str | None, str]]:
    d = t.routing_decisions.c
    with runtime.store.read() as conn:
        detail = (
            conn.execute(select(d.detail).where(d.order_id == order_id).order_by(d.id.desc()))
            .scalars()
            .first()
        )
    return [
        (s["location_id"], s.get("service"), s["shipping"]) for s in detail["chosen"]["shipments"]
    ]


@pytest.mark.parametrize(
    ("method", "expected", "cost"),
    [
        (None, [("c", "ground", "8.00")], "9.50"),
        ("Standard", [("a", "ground", "4.00")], "10.00"),
        ("EXPRESS", [("a", "express", "9.00")], "15.00"),
    ],
)
def test_each_shipment_goes_by_the_cheapest_service_that_meets_the_order_s_days(
    client: TestClient, runtime: Runtime, method: str | None,
    expected: list[tuple[str, str, str]], cost: str,
) -> None:  # fmt: skip
    order = place(client, f"o-{method}", method)
    assert chosen(runtime, order["id"]) == expected
    assert client.get(f"/v1/orders/{order['id']}").json()["shipping_method"] == method
    decision = order["routing"][-1]
    assert decision["cost"] == cost
    if method == "EXPRESS":
        assert "A by express (1 day)" in decision["explanation"]
        assert "within 1 day (EXPRESS)" in decision["explanation"]
    d = t.routing_decisions.c
    with runtime.store.read() as conn:
        detail = conn.execute(select(d.detail).where(d.order_id == order["id"])).scalar_one()
    # What label buying meets later: the method's days, and each shipment's service's days.
    assert detail.get("within_days") == {None: None, "Standard": 3, "EXPRESS": 1}[method]
    assert [s["transit_days"] for s in detail["chosen"]["shipments"]] == [
        {None: 5, "Standard": 2, "EXPRESS": 1}[method]
    ]


def test_a_rate_card_s_services_must_fit_its_bands(client: TestClient) -> None:
    bad = {**CARD, "services": [{"name": "express", "transit_days": [1],
                                 "prices": [["9.00", "12.00"], ["15.00", "20.00"]]}]}  # fmt: skip
    answer = client.put("/v1/rate-cards/USD", json=bad)
    assert answer.status_code == 422
    assert "one value per distance band (2)" in answer.json()["detail"]
    same = {**CARD, "services": [{**CARD["services"][0], "name": "ground"}]}  # type: ignore[index]
    assert client.put("/v1/rate-cards/USD", json=same).status_code == 422


def test_a_shopify_order_s_shipping_line_is_its_shipping_method(
    client: TestClient, runtime: Runtime
) -> None:
    from tests.builders import shopify_payload
    from tests.integration.test_shopify_pushes import webhook

    body = shopify_payload(9001, lines=[("X", 1, "10.00")], financial_status="paid")
    body["shipping_lines"] = [{"title": "Express", "code": "EXP", "price": "12.00",
                               "tax_lines": []}]  # fmt: skip
    webhook(client, runtime, "orders/create", body, 1)
    o = t.orders.c
    with runtime.store.read() as conn:
        row = conn.execute(select(o.id, o.shipping_method).where(o.external_id == "9001")).one()
    assert row.shipping_method == "Express"
    assert chosen(runtime, row.id) == [("a", "express", "9.00")]  # within 1 day: as above


def test_the_card_reads_back_and_delivery_days_are_whole_days_once_per_method(
    client: TestClient,
) -> None:
    assert client.get("/v1/rate-cards/USD").json()["services"][0]["name"] == "express"
    assert client.get("/v1/rate-cards/EUR").status_code == 404
    policies = f"/v1/shops/{SHOP}/routing-policies"
    twice = {"policy": "optimal", "delivery_days": {"Express": 1, "express": 3}}
    answer = client.post(policies, json={"document": twice, "note": "x"})
    assert answer.status_code == 422 and "given twice" in answer.json()["detail"], answer.text
    text = {"policy": "optimal", "delivery_days": {"Express": "2"}}
    assert client.post(policies, json={"document": text, "note": "x"}).status_code == 422


def test_a_base_service_of_unstated_days_is_not_taken_to_keep_a_promise(
    client: TestClient, runtime: Runtime
) -> None:
    """The card's own prices state no days: an Express order (1 day) goes by express, the
    one service known to arrive in time (A: 9.00 + 6.00)."""
    unstated = {k: v for k, v in CARD.items() if k not in ("service", "transit_days")}
    assert client.put("/v1/rate-cards/USD", json=unstated).status_code == 200
    order = place(client, "u-1", "Express")
    assert chosen(runtime, order["id"]) == [("a", "express", "9.00")]
