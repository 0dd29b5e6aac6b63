"""The live wave re-plan at its edges, on SQLite and PostgreSQL.

The network of tests/integration/test_waves.py: A at the customer's door (0 km), B 700 km east;
handling 1.50; the builders' card (up to 1 kg: 0-100 km 4.00, 500-1000 km 8.00). One X (500 g)
to the customer at A's door costs 4.00 + 1.50 = 5.50 from A and 8.00 + 1.50 = 9.50 from B.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aoms.adapters.db import schema as t
from aoms.bootstrap import Runtime
from aoms.domain.routing import Policy
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, east, network, place_order

SHOP = "shop.myshopify.com"
WAVE = f"/v1/shops/{SHOP}/waves/replan"
POLICIES = f"/v1/shops/{SHOP}/routing-policies"
SINCE = {"since": (T0 - timedelta(hours=1)).isoformat()}


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    with TestClient(
        create_app(runtime, migrate_on_start=False), raise_server_exceptions=False
    ) as c:
        yield c


def setup(runtime: Runtime, a: int, b: int) -> None:
    network(
        runtime.engine,
        {("X", "a"): a, ("X", "b"): b},
        locations={"a": 0, "b": 700},
        policy=Policy.OPTIMAL,
    )


def use(client: TestClient, document: dict[str, Any]) -> None:
    created = client.post(POLICIES, json={"document": document, "note": "x"})
    assert created.status_code == 201, created.text
    version = created.json()["version"]
    assert client.post(f"{POLICIES}/{version}/activate").status_code == 200


def open_at(client: TestClient, order_id: int) -> list[str]:
    order = client.get(f"/v1/orders/{order_id}").json()
    return sorted(f["location_id"] for f in order["fulfilment_orders"] if f["status"] == "open")


DAY_TWO = (T0 + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


@contextmanager
def a_capped_late_on_day_one(runtime: Runtime) -> Iterator[TestClient]:
    """23:00 on day 1 (DAY_TWO is the midnight after), the shop's policy `optimal` with A
    shipping one parcel a day: a client of the API (the network set up beforehand)."""
    runtime.clock = lambda: DAY_TWO - timedelta(hours=1)
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        use(c, {"policy": "optimal", "locations": {"a": {"daily_capacity": 1}}})
        yield c


def order_now(
    client: TestClient, runtime: Runtime, ref: str, km: float, *lines: tuple[str, int]
) -> dict[str, Any]:
    """POST an order placed at the runtime's clock by a customer `km` east of the equator
    point the builders measure from (500 g units at 10.00); the order as the API shows it."""
    body = {"shop": SHOP, "external_id": ref, "currency": "USD",
            "placed_at": runtime.clock().isoformat(),
            "shipping_address": {"country_code": "US", "latitude": 0.0,
                                 "longitude": east(km).lng},
            "lines": [{"sku": s, "quantity": q, "unit_price": "10.00", "grams": 500}
                      for s, q in lines]}  # fmt: skip
    made = client.post("/v1/orders", json=body)
    assert made.status_code == 201, made.text
    return dict(made.json()["order"])


def consistent(runtime: Runtime) -> None:
    """stock_levels.reserved is the sum of the active reservations at every SKU and location,
    and no location holds more than it has."""
    s, r = t.stock_levels.c, t.reservations.c
    with runtime.engine.connect() as conn:
        levels = {(x.sku, x.location_id): (x.on_hand, x.reserved) for x in conn.execute(
            select(s.sku, s.location_id, s.on_hand, s.reserved))}  # fmt: skip
        held = {
            (sku, loc): int(n)
            for sku, loc, n in conn.execute(
                select(r.sku, r.location_id, func.sum(r.quantity))
                .where(r.status == "active")
                .group_by(r.sku, r.location_id)
            )
        }
    for key, (on_hand, reserved) in levels.items():
        assert reserved == held.get(key, 0), key
        assert reserved <= on_hand, key


def test_a_wave_never_sends_a_location_more_shipments_than_its_daily_capacity(
    client: TestClient, runtime: Runtime
) -> None:
    # A may ship one parcel a day. A is empty when two customers at its door order: both go
    # to B (9.50 each). Two X then arrive at A. A still has its one shipment for today, so the
    # re-plan may move one order to A (5.50: saves 4.00) but not both.
    setup(runtime, a=0, b=5)
    use(client, {"policy": "optimal", "locations": {"a": {"daily_capacity": 1}}})
    first, second = (
        place_order(client, SHOP, "1", ("X", 1)),
        place_order(client, SHOP, "2", ("X", 1)),
    )
    assert open_at(client, first["id"]) == open_at(client, second["id"]) == ["b"]
    got = client.post(
        "/v1/inventory/adjustments",
        json={"sku": "X", "location_id": "a", "delta": 2, "reason": "receipt"},
    )
    assert got.status_code == 200, got.text
    answer = client.post(WAVE, json=SINCE)
    assert answer.status_code == 200, answer.text
    at_a = [o for o in (first, second) if open_at(client, o["id"]) == ["a"]]
    assert len(at_a) <= 1, answer.json()
    consistent(runtime)


def test_a_wave_whose_own_orders_filled_a_locations_daily_capacity_is_not_a_server_error(
    client: TestClient, runtime: Runtime
) -> None:
    # A may ship one parcel a day. The first customer at A's door takes it (5.50); the second
    # goes to B (9.50). A is at capacity because of an order of the wave itself; nothing can
    # move (both customers live at the same place), so the answer is 200 with nothing moved.
    setup(runtime, a=5, b=5)
    use(client, {"policy": "optimal", "locations": {"a": {"daily_capacity": 1}}})
    first, second = (
        place_order(client, SHOP, "1", ("X", 1)),
        place_order(client, SHOP, "2", ("X", 1)),
    )
    assert (open_at(client, first["id"]), open_at(client, second["id"])) == (["a"], ["b"])
    answer = client.post(WAVE, json=SINCE)
    assert answer.status_code == 200, answer.text
    assert answer.json()["moved"] == 0
    assert (open_at(client, first["id"]), open_at(client, second["id"])) == (["a"], ["b"])
    consistent(runtime)


def test_a_wave_with_an_order_at_a_location_the_new_version_bars_is_not_a_server_error(
    client: TestClient, runtime: Runtime
) -> None:
    # Routed with no version: the first customer at A's door ships from A, the second (A is
    # empty then) from B. A version that bars A from the US is then activated. The re-plan
    # must not answer 500, and must not send any order to A.
    setup(runtime, a=1, b=5)
    first, second = (
        place_order(client, SHOP, "1", ("X", 1)),
        place_order(client, SHOP, "2", ("X", 1)),
    )
    assert (open_at(client, first["id"]), open_at(client, second["id"])) == (["a"], ["b"])
    use(client, {"policy": "optimal", "eligibility": {"no_ship_to": {"a": ["US"]}}})
    answer = client.post(WAVE, json=SINCE)
    assert answer.status_code == 200, answer.text
    assert open_at(client, second["id"]) == ["b"]
    consistent(runtime)


def test_a_wave_after_the_safety_stock_was_raised_is_not_a_server_error(
    client: TestClient, runtime: Runtime
) -> None:
    # A is empty: both customers at A's door ship from B, which holds 2 of its 5 for them.
    # The merchant then raises B's safety stock to 4 (allowed: it only limits new sales), so
    # B's free stock is 5 - 2 - 4 < 0 and the wave's pool at B is 1 unit for 2 held ones.
    # Nothing better exists, so the answer is 200 with nothing moved.
    setup(runtime, a=0, b=5)
    first, second = (
        place_order(client, SHOP, "1", ("X", 1)),
        place_order(client, SHOP, "2", ("X", 1)),
    )
    got = client.post(
        "/v1/inventory/adjustments",
        json={"sku": "X", "location_id": "b", "delta": 0, "safety_stock": 4, "reason": "policy"},
    )
    assert got.status_code == 200, got.text
    answer = client.post(WAVE, json=SINCE)
    assert answer.status_code == 200, answer.text
    assert answer.json()["moved"] == 0
    assert open_at(client, first["id"]) == open_at(client, second["id"]) == ["b"]
    consistent(runtime)


def test_a_wave_after_a_location_was_deactivated_is_not_a_server_error(
    client: TestClient, runtime: Runtime
) -> None:
    # Both customers at A's door ship from B (A is empty). B is then deactivated; its orders
    # still hold its stock. The re-plan has nowhere better to send them: 200, nothing moved.
    setup(runtime, a=0, b=5)
    first, second = (
        place_order(client, SHOP, "1", ("X", 1)),
        place_order(client, SHOP, "2", ("X", 1)),
    )
    loc = client.get("/v1/locations").json()["items"]
    b = next(x for x in loc if x["id"] == "b")
    put = client.put(
        "/v1/locations/b",
        json={"name": b["name"], "lat": b["lat"], "lng": b["lng"], "country_code": "US",
              "handling_cost": "1.50", "currency": "USD", "active": False},
    )  # fmt: skip
    assert put.status_code == 200, put.text
    answer = client.post(WAVE, json=SINCE)
    assert answer.status_code == 200, answer.text
    assert answer.json()["moved"] == 0
    assert open_at(client, first["id"]) == open_at(client, second["id"]) == ["b"]
    consistent(runtime)


def test_the_events_of_a_wave_say_what_each_order_released_as_well_as_what_it_reserved(
    client: TestClient, runtime: Runtime
) -> None:
    # The swap of tests/integration/test_waves.py: the first customer (250 km from A) held
    # A's one X, the second (at A's door) one X at B; the wave swaps them. A subscriber that
    # follows the outbox (stock.reserved adds an order's units, stock.released takes them
    # away) must end with what each order holds now: one unit each, not two.
    setup(runtime, a=1, b=5)
    p = east(250)
    first = client.post(
        "/v1/orders",
        json={"shop": SHOP, "external_id": "1", "currency": "USD", "placed_at": T0.isoformat(),
              "shipping_address": {"country_code": "US", "latitude": p.lat, "longitude": p.lng},
              "lines": [{"sku": "X", "quantity": 1, "unit_price": "10.00", "grams": 500}]},
    ).json()["order"]  # fmt: skip
    second = place_order(client, SHOP, "2", ("X", 1))
    answer = client.post(WAVE, json=SINCE).json()
    assert answer["moved"] == 2, answer
    o = t.outbox.c
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(o.name, o.aggregate, o.data).order_by(o.id)).all()
    followed: dict[str, int] = {}
    for name, aggregate, data in rows:
        if name == "stock.reserved":
            units = sum(q for s in data["shipments"] for q in s["items"].values())
            followed[aggregate] = followed.get(aggregate, 0) + units
        elif name == "stock.released":
            followed[aggregate] = followed.get(aggregate, 0) - data["units"]
    assert followed == {f"order:{first['id']}": 1, f"order:{second['id']}": 1}
