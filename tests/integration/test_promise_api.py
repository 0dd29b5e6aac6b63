"""Delivery promises over the API on SQLite and PostgreSQL: import a history, fit, promise an
order before and after routing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aoms.adapters.db import schema as t
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, east, network


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


REGIONS = {"a": "NJ", "b": "NY", "c": "PA"}
KM = {"a": 50, "b": 80, "c": 700}


def _setup(client: TestClient, runtime: Runtime, stock: dict[tuple[str, str], int]) -> None:
    network(runtime.engine, stock, locations=KM)
    for loc, km in KM.items():  # the same locations, now with their state
        p = east(km)
        body = {"name": loc.upper(), "lat": p.lat, "lng": p.lng, "country_code": "US",
                "region": REGIONS[loc], "handling_cost": "1.50", "currency": "USD"}  # fmt: skip
        assert client.put(f"/v1/locations/{loc}", json=body).json()["region"] == REGIONS[loc]


def _delivery(i: int, origin: str, took: int, **extra: Any) -> dict[str, Any]:
    ordered = date(2026, 10, 1) + timedelta(days=i)
    return {
        "external_id": f"{origin}-{i}",
        "origin_location_id": origin,
        "destination_country": "US",
        "destination_region": "CA",
        "ordered_at": f"{ordered}T10:00:00Z",
        "delivered_at": f"{ordered + timedelta(days=took)}T15:00:00Z",
        **extra,
    }


# Lane NJ→CA (location a): 5 deliveries of 6 days; NY→CA (b): 5 of 3 days; none from PA (c).
HISTORY = [_delivery(i, "a", 6) for i in range(5)] + [_delivery(i, "b", 3) for i in range(5)]


def _order(client: TestClient, external_id: str, quantity: int, currency: str = "USD") -> int:
    body = {
        "shop": "b2b.example", "channel": "b2b", "external_id": external_id,
        "currency": currency, "placed_at": "2026-11-02T12:00:00Z",
        "shipping_address": {"country_code": "US", "province_code": "CA",
                             "latitude": 0.0, "longitude": 10.0},
        "lines": [{"sku": "X", "quantity": quantity, "unit_price": "10.00", "grams": 500}],
    }  # fmt: skip
    response = client.post("/v1/orders", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["order"]["id"])


def test_a_promise_whose_date_has_passed_says_when_it_would_arrive_counted_from_today(
    client: TestClient, runtime: Runtime
) -> None:
    """The EUR order of the test below (not routed; c by CA's 3 days): placed 2026-11-02, so
    promised by 2026-11-05. Asked on 2026-12-02 it has not shipped: counted from that day it
    would arrive by 2026-12-05. Asked on its own day, there is no such note."""
    _setup(client, runtime, {("X", "a"): 5, ("X", "b"): 1, ("X", "c"): 5})
    assert client.post("/v1/delivery-history", json={"deliveries": HISTORY}).status_code == 200
    fitted = client.post("/v1/promise-model/fit", json={"confidence": 0.5, "prior_weight": 0})
    assert fitted.status_code == 201, fitted.text
    waiting = _order(client, "PO-LATE", 2, currency="EUR")
    runtime.clock = lambda: T0
    assert client.get(f"/v1/orders/{waiting}/promise").json()["notes"] == []
    runtime.clock = lambda: T0 + timedelta(days=30)
    late = client.get(f"/v1/orders/{waiting}/promise").json()
    assert late["arrives_by"] == "2026-11-05"
    assert late["notes"] == [
        "placed on 2026-11-02, it has not shipped and this date has passed: counted from today "
        "it would arrive by 2026-12-05"
    ]


def test_a_model_is_fitted_with_the_defaults_when_the_request_has_no_body(
    client: TestClient, runtime: Runtime
) -> None:
    _setup(client, runtime, {("X", "a"): 5})
    assert client.post("/v1/delivery-history", json={"deliveries": HISTORY}).status_code == 200
    fitted = client.post("/v1/promise-model/fit")
    assert fitted.status_code == 201, fitted.text
    assert fitted.json()["deliveries"] == 10


def test_an_order_is_promised_from_the_fastest_able_location_then_from_its_plan(
    client: TestClient, runtime: Runtime
) -> None:
    _setup(client, runtime, {("X", "a"): 5, ("X", "b"): 1, ("X", "c"): 5})
    assert client.post("/v1/delivery-history", json={"deliveries": HISTORY}).json() == {
        "imported": 10,
        "duplicates": 0,
    }
    # No prior: each lane is its own median. NJ→CA 6 days, NY→CA 3; destination CA over all
    # ten: the least value whose cumulative share reaches 0.5 is 3 (five 3s of ten).
    fitted = client.post("/v1/promise-model/fit", json={"confidence": 0.5, "prior_weight": 0})
    assert fitted.status_code == 201, fitted.text
    assert (fitted.json()["deliveries"], fitted.json()["lanes"]) == (10, 2)
    model = client.get("/v1/promise-model").json()
    assert [(x["origin"], x["days"]) for x in model["lanes"]] == [("US-NJ", 6.0), ("US-NY", 3.0)]
    assert model["destinations"] == [{"destination": "US-CA", "samples": 10, "days": 3.0}]
    with runtime.store.read() as conn:
        events = conn.execute(
            select(t.outbox.c.name, t.outbox.c.aggregate, t.outbox.c.data)
            .where(t.outbox.c.name.in_(["delivery_history.imported", "promise_model.fitted"]))
            .order_by(t.outbox.c.id)
        ).all()
    assert [(e.name, e.aggregate) for e in events] == [
        ("delivery_history.imported", "delivery_history"),
        ("promise_model.fitted", f"promise_model:{fitted.json()['id']}"),
    ]
    assert events[0].data == {"imported": 10, "duplicates": 0}

    # An order in EUR has no rate card: it is not routed. Two units: a (5) and c (5) can ship
    # it whole, b (1) cannot. a's lane says 6 days; c has no lane, so CA's 3 days: c wins.
    waiting = _order(client, "PO-EUR", 2, currency="EUR")
    before = client.get(f"/v1/orders/{waiting}/promise").json()
    assert before["stage"] == "before_routing"
    assert before["arrives_by"] == "2026-11-05"  # placed 2026-11-02 + 3 days
    assert before["statement"] == "arrives by 2026-11-05 with 50% confidence"
    assert [(s["location_id"], s["basis"], s["days"]) for s in before["shipments"]] == [
        ("c", "destination", 3)
    ]

    # Six units in USD: routing splits them over a (5) and b (1), the two nearest. The
    # promise is the later of a's 6 days and b's 3 days.
    routed = _order(client, "PO-USD", 6)
    plan = client.get(f"/v1/orders/{routed}").json()["fulfilment_orders"]
    assert sorted(f["location_id"] for f in plan) == ["a", "b"]
    after = client.get(f"/v1/orders/{routed}/promise").json()
    assert after["stage"] == "after_routing"
    assert after["arrives_by"] == "2026-11-08"
    assert sorted((s["location_id"], s["arrives_by"]) for s in after["shipments"]) == [
        ("a", "2026-11-08"),
        ("b", "2026-11-05"),
    ]
    assert {s["lane"]["origin"] for s in after["shipments"]} == {"US-NJ", "US-NY"}


def test_a_repeated_history_is_stored_once_and_a_bad_row_stores_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    _setup(client, runtime, {("X", "a"): 5})
    assert client.post("/v1/delivery-history", json={"deliveries": HISTORY[:3]}).json() == {
        "imported": 3,
        "duplicates": 0,
    }
    again = client.post("/v1/delivery-history", json={"deliveries": HISTORY[:4]})
    assert again.json() == {"imported": 1, "duplicates": 3}
    bad = [*HISTORY[5:], _delivery(9, "a", -2)]  # delivered before it was ordered
    refused = client.post("/v1/delivery-history", json={"deliveries": bad})
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_input"
    assert refused.json()["field"] == "deliveries[5].delivered_at"
    unknown = client.post("/v1/delivery-history", json={"deliveries": [_delivery(0, "zz", 2)]})
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_location")
    naive = {**_delivery(20, "a", 2), "ordered_at": "2026-10-01T10:00:00"}
    assert client.post("/v1/delivery-history", json={"deliveries": [naive]}).status_code == 422
    with runtime.store.read() as conn:
        stored = conn.execute(select(func.count()).select_from(t.delivery_history)).scalar_one()
    assert stored == 4  # only the two good imports


def test_without_a_model_or_stock_a_promise_is_a_clear_problem(
    client: TestClient, runtime: Runtime
) -> None:
    _setup(client, runtime, {("X", "a"): 1})
    order = _order(client, "PO-EUR", 2, currency="EUR")
    none = client.get(f"/v1/orders/{order}/promise")
    assert (none.status_code, none.json()["code"]) == (409, "no_promise_model")
    assert client.post("/v1/promise-model/fit", json={}).json()["code"] == "invalid_input"
    client.post("/v1/delivery-history", json={"deliveries": HISTORY})
    assert client.post("/v1/promise-model/fit", json={}).status_code == 201
    short = client.get(f"/v1/orders/{order}/promise")  # one unit in stock, two ordered
    assert (short.status_code, short.json()["code"]) == (409, "no_location_can_ship")
    assert client.get("/v1/orders/999/promise").status_code == 404


def test_a_fit_can_choose_its_confidence_on_the_last_month_of_the_history(
    client: TestClient, runtime: Runtime
) -> None:
    _setup(client, runtime, {("X", "a"): 5})
    # September and October on lane a: 2, 4, 6, 8, 10 days in turn; each promised in 9 days,
    # so the history was on time 4 times in 5. The least confidence tried (0.80) already
    # gives 8 days, on time 4 in 5 in October: chosen.
    rows = []
    for month in (9, 10):
        for i in range(10):
            ordered = date(2026, month, 1 + i)
            took = 2 + 2 * (i % 5)
            rows.append(
                _delivery(0, "a", took, external_id=f"{month}-{i}",
                          ordered_at=f"{ordered}T10:00:00Z",
                          delivered_at=f"{ordered + timedelta(days=took)}T10:00:00Z",
                          promised_at=f"{ordered + timedelta(days=9)}T10:00:00Z")
            )  # fmt: skip
    client.post("/v1/delivery-history", json={"deliveries": rows})
    fitted = client.post("/v1/promise-model/fit", json={"tune": True, "validation_months": 1})
    assert fitted.status_code == 201, fitted.text
    chosen = fitted.json()
    assert chosen["confidence"] == 0.8
    assert chosen["chosen_on_validation"]["target_on_time"] == 0.8
    assert chosen["chosen_on_validation"]["validation"]["mean_promised_days"] == 8.0


def test_a_wholly_backordered_order_is_not_promised_and_says_how_many_units_wait(
    client: TestClient, runtime: Runtime
) -> None:
    _setup(client, runtime, {("X", "a"): 1})
    client.post("/v1/delivery-history", json={"deliveries": HISTORY})
    assert client.post("/v1/promise-model/fit", json={}).status_code == 201
    _order(client, "PO-1", 1)  # takes the one X
    waiting = _order(client, "PO-2", 3)  # nothing left: all 3 units backordered
    answer = client.get(f"/v1/orders/{waiting}/promise")
    assert (answer.status_code, answer.json()["code"]) == (409, "no_location_can_ship")
    assert "(3 backordered unit(s); it is promised once stock arrives" in answer.json()["detail"]


def express_world(client: TestClient, runtime: Runtime, stock: dict[tuple[str, str], int]) -> None:
    """NJ→CA (A): 5 deliveries by express in 2 days and 10 by ground in 6, fitted at the
    median with no prior; a card of ground and express; the shop b2b.example's active policy
    gives Express 1 day and Standard 5."""
    _setup(client, runtime, stock)
    history = [_delivery(i, "a", 2, service="express") for i in range(5)]
    history += [_delivery(10 + i, "a", 6, service="ground") for i in range(10)]
    assert client.post("/v1/delivery-history", json={"deliveries": history}).status_code == 200
    fit = client.post("/v1/promise-model/fit", json={"confidence": 0.5, "prior_weight": 0})
    assert fit.status_code == 201, fit.text
    card = {"distance_km": [100, 1000], "weight_g": [1000, 10000],
            "prices": [["4.00", "6.00"], ["8.00", "12.00"]], "service": "ground",
            "transit_days": [3, 5],
            "services": [{"name": "express", "transit_days": [1, 2],
                          "prices": [["9.00", "12.00"], ["15.00", "20.00"]]}]}  # fmt: skip
    assert client.put("/v1/rate-cards/USD", json=card).status_code == 200
    shop = {"routing_policy": "optimal", "currency": "USD"}
    assert client.put("/v1/shops/b2b.example", json=shop).status_code == 200
    policies = "/v1/shops/b2b.example/routing-policies"
    doc = {"policy": "optimal", "delivery_days": {"Express": 1, "Standard": 5}}
    assert client.post(policies, json={"document": doc, "note": "x"}).status_code == 201
    assert client.post(f"{policies}/1/activate").status_code == 200


def test_after_routing_each_shipment_is_promised_by_the_service_routing_chose(
    client: TestClient, runtime: Runtime
) -> None:
    """NJ→CA: 5 deliveries by express in 2 days and 10 by ground in 6 (the route over both:
    median 6). The card prices ground (3 days within 100 km) and express (1 day, dearer); an
    Express order (1 day) goes from A by express, so its promise is the express lane's 2 days,
    not the route's 6; a Standard order (5 days) goes by ground, promised by the ground lane.
    Both are routed on the day they are placed."""
    runtime.clock = lambda: T0
    express_world(client, runtime, {("X", "a"): 5})

    def promised(method: str) -> tuple[str, str, str]:
        body = {
            "shop": "b2b.example", "channel": "b2b", "external_id": f"S-{method}",
            "currency": "USD", "placed_at": "2026-11-02T12:00:00Z", "shipping_method": method,
            "shipping_address": {"country_code": "US", "province_code": "CA",
                                 "latitude": 0.0, "longitude": 10.0},
            "lines": [{"sku": "X", "quantity": 1, "unit_price": "10.00", "grams": 500}],
        }  # fmt: skip
        order_id = client.post("/v1/orders", json=body).json()["order"]["id"]
        answer = client.get(f"/v1/orders/{order_id}/promise").json()
        [s] = answer["shipments"]
        return s["lane"]["service"], s["basis"], answer["arrives_by"]

    assert promised("Express") == ("express", "lane", "2026-11-04")
    assert promised("Standard") == ("ground", "lane", "2026-11-08")
