"""Versioned routing policies per shop over the HTTP API, on SQLite and PostgreSQL.

The network of tests/builders.py: A at 50 km, B at 80 km, C at 700 km east of the customer,
handling 1.50, the builders' card; one unit of 500 g from A costs 4.00 + 1.50 = 5.50, from B
the same (both below 100 km), from C 8.00 + 1.50 = 9.50.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.routing_policy import PolicyDocument
from aoms.entrypoints.api.app import create_app
from aoms.services import orders, routing_policies
from tests.builders import T0, later, network, order, place_order, services_card
from tests.integration.test_race import _together

SHOP = "shop.myshopify.com"
POLICIES = f"/v1/shops/{SHOP}/routing-policies"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def draft(client: TestClient, note: str = "a change", **document: Any) -> Any:
    return client.post(POLICIES, json={"document": {"policy": "optimal", **document}, "note": note})


def place(client: TestClient, external_id: str, *lines: tuple[str, int]) -> dict[str, Any]:
    order: dict[str, Any] = place_order(client, SHOP, external_id, *lines)
    return order


def shipped_from(order: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {f["location_id"]: f["items"] for f in order["fulfilment_orders"]}


def events(runtime: Runtime, name: str) -> list[dict[str, Any]]:
    with runtime.store.read() as conn:
        rows = conn.execute(select(t.outbox.c.data).where(t.outbox.c.name == name)).all()
    return [r.data for r in rows]


def test_drafts_are_numbered_per_shop_and_listed_newest_first(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    first = draft(client, note="first")
    assert first.status_code == 201
    assert (first.json()["version"], first.json()["status"]) == (1, "draft")
    assert first.json()["document"]["currency"] == "USD"  # the shop's, when not given
    assert draft(client, note="second", max_shipments=2).json()["version"] == 2
    listed = client.get(POLICIES).json()["items"]
    assert [(v["version"], v["note"]) for v in listed] == [(2, "second"), (1, "first")]
    assert client.get(f"{POLICIES}/2").json()["document"]["max_shipments"] == 2
    missing = client.get(f"{POLICIES}/3")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert [e["version"] for e in events(runtime, "routing_policy.drafted")] == [1, 2]


def test_activating_retires_the_previous_active_version_and_emits_an_event(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    for _ in range(3):
        draft(client)
    one = client.post(f"{POLICIES}/1/activate").json()
    assert (one["status"], one["retired"], one["changed"]) == ("active", None, True)
    two = client.post(f"{POLICIES}/2/activate").json()
    assert (two["status"], two["retired"]) == ("active", 1)
    again = client.post(f"{POLICIES}/2/activate").json()
    assert (again["status"], again["changed"]) == ("active", False)
    back = client.post(f"{POLICIES}/1/activate").json()  # going back to an older version
    assert (back["status"], back["retired"]) == ("active", 2)
    statuses = {v["version"]: v["status"] for v in client.get(POLICIES).json()["items"]}
    assert statuses == {1: "active", 2: "retired", 3: "draft"}
    activated = events(runtime, "routing_policy.activated")
    assert [(e["version"], e["previous"]) for e in activated] == [(1, None), (2, 1), (1, 2)]
    missing = client.post(f"{POLICIES}/9/activate")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    "document, status, code, field",
    [
        ({"policy": "cheapest"}, 422, "unknown_routing_policy", "policy"),
        ({"locations": {"nowhere": {"daily_capacity": 3}}}, 422, "unknown_location", "document"),
        (
            {"eligibility": {"ship_together": [["X", "Y"], ["Y", "Z"]]}},
            422,
            "invalid_policy_document",
            "document.eligibility.ship_together.1",
        ),
        ({"weights": {"shipping": 1.5}}, 422, "invalid_input", "document.weights.shipping"),
        ({"max_shipments": 0}, 422, "invalid_input", "document.max_shipments"),
        (
            {"weights": {"split_penalty": "1.005"}},  # USD has two decimals
            422,
            "invalid_policy_document",
            "document.weights.split_penalty",
        ),
        ({"surprise": True}, 422, "invalid_input", "document.surprise"),
    ],
)
def test_bad_documents_are_refused_with_a_code_and_nothing_is_stored(
    client: TestClient,
    runtime: Runtime,
    document: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    answer = draft(client, **document)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert (answer.json()["code"], answer.json()["field"]) == (code, field)
    assert client.get(POLICIES).json()["items"] == []
    assert events(runtime, "routing_policy.drafted") == []


def test_a_policy_for_an_unknown_shop_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/v1/shops/nobody.example/routing-policies",
        json={"document": {"policy": "optimal", "currency": "USD"}, "note": "x"},
    )
    assert (answer.status_code, answer.json()["code"]) == (404, "unknown_shop")


def test_a_shop_without_versions_routes_as_before(client: TestClient, runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    order = place(client, "1", ("X", 1))
    assert shipped_from(order) == {"a": {"X": 1}}
    assert (order["routing"][0]["policy"], order["routing"][0]["policy_version"]) == (
        "landed_cost",
        None,
    )


def test_only_the_active_version_governs_live_routing_and_the_decision_names_it(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    draft(client, eligibility={"no_ship_to": {"a": ["US"], "b": ["US"]}})
    before = place(client, "1", ("X", 1))
    assert shipped_from(before) == {"a": {"X": 1}}  # a draft changes nothing
    client.post(f"{POLICIES}/1/activate")
    after = place(client, "2", ("X", 1))
    assert shipped_from(after) == {"c": {"X": 1}}  # A may not ship to the US now
    decision = after["routing"][-1]
    assert (decision["policy"], decision["policy_version"], decision["cost"]) == (
        "optimal",
        1,
        "9.50",
    )
    assert "Routing policy v1" in decision["explanation"]
    assert "A may not ship to US." in decision["explanation"]
    routed = events(runtime, "order.routed")
    assert [e.get("policy_version") for e in routed] == [None, 1]


def test_a_location_at_its_daily_capacity_gets_no_more_orders_that_day(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    draft(client, locations={"a": {"daily_capacity": 2}})
    client.post(f"{POLICIES}/1/activate")
    firsts = [shipped_from(place(client, str(i), ("X", 1))) for i in range(3)]
    # A takes two shipments today (5.50 each), then is full; C (9.50) takes the third.
    assert firsts == [{"a": {"X": 1}}, {"a": {"X": 1}}, {"c": {"X": 1}}]
    runtime.clock = lambda: later(24 * 60)  # the next UTC day, A has room again
    assert shipped_from(place(client, "next-day", ("X", 1))) == {"a": {"X": 1}}


def test_an_order_backordered_by_a_full_day_is_routed_when_the_next_day_begins(
    client: TestClient, runtime: Runtime
) -> None:
    """Only A stocks X and it ships one parcel a day: the second order of the day waits, and
    the workers route it once the UTC day has turned (not before, and only once)."""
    network(runtime.engine, {("X", "a"): 5})
    draft(client, locations={"a": {"daily_capacity": 1}})
    client.post(f"{POLICIES}/1/activate")
    assert shipped_from(place(client, "1", ("X", 1))) == {"a": {"X": 1}}
    second = place(client, "2", ("X", 1))
    assert second["status"] == "backordered"
    assert "No location that may ship this order has any" in second["routing"][-1]["explanation"]
    assert "A is at its daily capacity" in second["routing"][-1]["explanation"]
    assert runtime.retry_earlier_backorders() is None  # routed today: not tried again today
    assert runtime.retry_earlier_backorders() is None  # the same day: nothing to do
    runtime.clock = lambda: later(24 * 60)
    assert runtime.retry_earlier_backorders() == {"routed": 1}
    again = client.get(f"/v1/orders/{second['id']}").json()
    assert (again["status"], shipped_from(again)) == ("routed", {"a": {"X": 1}})
    assert runtime.retry_earlier_backorders() is None


def test_a_backorder_routed_days_later_takes_a_service_fast_enough_for_the_days_left(
    client: TestClient, runtime: Runtime
) -> None:
    """Standard promises 3 days from the day of placing. A (50 km, the only stock of X) ships
    one parcel a day by `ground` (3 days there, 4.00 for 500 g) or `express` (1 day, 8.00).
    The first order goes by ground (4.00 + 1.50 handling = 5.50); the second, placed the same
    day, waits for A's capacity. Routed the next day it has 2 days left: ground no longer
    keeps the promise, express does (8.00 + 1.50 = 9.50). Three days later still, with no day
    left, it goes by the fastest, express, and says that none is faster."""
    network(runtime.engine, {("X", "a"): 5})
    card = services_card([3, 3, 5, 6], [1, 1, 1, 2])
    assert client.put("/v1/rate-cards/USD", json=card).status_code == 200
    draft(client, locations={"a": {"daily_capacity": 1}}, delivery_days={"Standard": 3})
    client.post(f"{POLICIES}/1/activate")
    first = place_order(client, SHOP, "1", ("X", 1), method="Standard")
    assert (first["routing"][-1]["cost"], first["fulfilment_orders"][0]["location_id"]) == (
        "5.50",
        "a",
    )
    assert "A by ground (3 days)" in first["routing"][-1]["explanation"]
    second = place_order(client, SHOP, "2", ("X", 1), method="Standard")
    assert second["status"] == "backordered"
    assert runtime.retry_earlier_backorders() is None  # routed today
    runtime.clock = lambda: later(24 * 60)
    assert runtime.retry_earlier_backorders() == {"routed": 1}
    decision = client.get(f"/v1/orders/{second['id']}").json()["routing"][-1]
    assert decision["cost"] == "9.50"
    assert "A by express (1 day)." in decision["explanation"]
    assert "within 3 days (Standard) of being placed, 2 days from today" in decision["explanation"]
    runtime.clock = lambda: later(4 * 24 * 60)  # T0 + 4 days: the promise is already missed
    assert client.post(f"/v1/orders/{second['id']}/route").status_code == 200
    words = client.get(f"/v1/orders/{second['id']}").json()["routing"][-1]["explanation"]
    assert "A by express (1 day: none is faster from there)" in words
    assert "0 days from today" in words


def test_routing_an_order_again_keeps_its_own_place_in_the_days_capacity(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    draft(client, locations={"a": {"daily_capacity": 1}})
    client.post(f"{POLICIES}/1/activate")
    first = place(client, "1", ("X", 1))
    route_again = client.post(f"/v1/orders/{first['id']}/route").json()
    # Routing again releases its own shipment from A first, so A still has room for it.
    assert {
        f["location_id"] for f in route_again["fulfilment_orders"] if f["status"] == "open"
    } == {"a"}
    assert shipped_from(place(client, "2", ("X", 1))) == {"c": {"X": 1}}


def test_a_product_tag_rule_sends_tagged_products_to_the_listed_location(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    tagged = client.put("/v1/products/X", json={"title": "Lithium cells", "tags": ["hazmat"]})
    assert tagged.status_code == 200
    draft(client, eligibility={"only_from": [{"tags": ["hazmat"], "locations": ["c"]}]})
    client.post(f"{POLICIES}/1/activate")
    order = place(client, "1", ("X", 1))
    assert shipped_from(order) == {"c": {"X": 1}}
    assert "X may not ship from A." in order["routing"][-1]["explanation"]


def test_a_split_penalty_in_the_active_version_ships_the_order_whole(
    client: TestClient, runtime: Runtime
) -> None:
    # Two units: A and B have one each (500 g under 100 km: 5.50 each), C has both, 2000 km.
    network(
        runtime.engine,
        {("X", "a"): 1, ("X", "b"): 1, ("X", "c"): 2},
        locations={"a": 50, "b": 80, "c": 2000},
    )
    # Without a penalty: A + B = 11.00 beats C (2000 km, 1000 g: 12.00 + 1.50 = 13.50).
    draft(client)
    client.post(f"{POLICIES}/1/activate")
    split = place(client, "1", ("X", 2))
    assert shipped_from(split) == {"a": {"X": 1}, "b": {"X": 1}}
    client.post(f"/v1/orders/{split['id']}/cancel")
    # 3.00 per extra shipment: A + B scores 14.00 > 13.50, so C ships it whole.
    draft(client, weights={"split_penalty": "3.00"})
    client.post(f"{POLICIES}/2/activate")
    whole = place(client, "2", ("X", 2))
    assert shipped_from(whole) == {"c": {"X": 2}}
    assert whole["routing"][-1]["policy_version"] == 2


def test_two_orders_racing_for_a_locations_last_shipment_of_the_day_get_one_each(
    runtime: Runtime,
) -> None:
    # Different SKUs, so no stock row is shared: only the lock on A's row keeps the second
    # order from counting A's shipments before the first commits.
    rounds = 40 if runtime.engine.dialect.name == "postgresql" else 15
    stock = {(f"{s}-{n}", loc): 1 for n in range(rounds) for s in "XY" for loc in "ac"}
    network(runtime.engine, stock)
    document = PolicyDocument.from_dict(
        {"policy": "optimal", "currency": "USD", "locations": {"a": {"daily_capacity": 1}}}
    )
    with runtime.store.transaction() as tx:
        registry = runtime.store.policies
        version = routing_policies.create_draft(
            tx, SHOP, document, "cap", registry=registry, now=T0
        )
        routing_policies.activate(tx, SHOP, version, registry=registry, now=T0)
    for n in range(rounds):
        day = later(24 * 60 * (n + 1))  # a fresh day each round

        def place_one(sku: str, n: int = n, day: datetime = day) -> None:
            with runtime.store.transaction() as tx:
                orders.receive_order(
                    tx, order((sku, 1), external_id=f"{sku}", shop=SHOP), geocode=geocode, now=day
                )

        _together(lambda n=n: place_one(f"X-{n}"), lambda n=n: place_one(f"Y-{n}"))
        with runtime.store.read() as conn:
            at = conn.execute(
                select(t.fulfilment_orders.c.location_id).where(
                    t.fulfilment_orders.c.created_at == day
                )
            ).scalars()
            assert sorted(at) == ["a", "c"], n


def test_a_line_without_weight_is_priced_at_the_catalogues_weight(
    client: TestClient, runtime: Runtime
) -> None:
    # The builders' card: up to 1 kg 4.00, up to 3 kg 6.00 (0-100 km); A is 50 km away with
    # handling 1.50. The catalogue says X weighs 2,500 g; the order line gives no weight: the
    # parcel is priced as 2.5 kg, 6.00 + 1.50 = 7.50, not as 0 g (5.50).
    network(runtime.engine, {("X", "a"): 5})
    assert client.put("/v1/products/X", json={"title": "X", "grams": 2500}).status_code == 200
    body = {
        "shop": SHOP,
        "external_id": "w1",
        "currency": "USD",
        "placed_at": T0.isoformat(),
        "shipping_address": {"country_code": "US", "latitude": 0.0, "longitude": 10.0},
        "lines": [{"sku": "X", "quantity": 1, "unit_price": "10.00"}],
    }
    answer = client.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    fulfilment = answer.json()["order"]["fulfilment_orders"][0]
    assert (fulfilment["location_id"], fulfilment["weight_g"]) == ("a", 2500)
    assert answer.json()["order"]["routing"][-1]["cost"] == "7.50"


def test_an_order_placed_only_by_its_country_says_its_distances_are_approximate(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    body = {
        "shop": SHOP,
        "external_id": "c1",
        "currency": "USD",
        "placed_at": T0.isoformat(),
        "shipping_address": {"country_code": "US", "province_code": "NY"},
        "lines": [{"sku": "X", "quantity": 1, "unit_price": "10.00", "grams": 500}],
    }
    answer = client.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    words = answer.json()["order"]["routing"][-1]["explanation"]
    assert "placed only by its country" in words
