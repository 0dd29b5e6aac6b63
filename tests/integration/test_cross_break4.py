"""An order routed again on a later day keeps the places it held in an earlier day's capacity,
whatever routes it again (a channel update, a changed shipping method, twice in a day). On SQLite
and PostgreSQL.

The network of tests/builders.py: A at 50 km, B at 80 km, C at 700 km east of the customer.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from tests.builders import T0, later, network, place_order
from tests.integration.test_cross_break3 import SHOP, activate, client

__all__ = ["client"]  # the fixture, used by name below


def live_locations(client: TestClient, order_id: int) -> set[str]:
    fos = client.get(f"/v1/orders/{order_id}").json()["fulfilment_orders"]
    return {f["location_id"] for f in fos if f["status"] != "cancelled"}


def _body(ref: str, *lines: tuple[str, int], **extra: Any) -> dict[str, Any]:
    return {
        "shop": SHOP, "external_id": ref, "currency": "USD", "placed_at": T0.isoformat(),
        "shipping_address": {"country_code": "US", "latitude": 0.0, "longitude": 10.0},
        "lines": [{"sku": s, "quantity": q, "unit_price": "10.00", "grams": 500}
                  for s, q in lines],
        **extra,
    }  # fmt: skip


def _day_two_with_a_taken(client: TestClient, runtime: Runtime) -> dict[str, Any]:
    """A (50 km) and C (700 km) stock X, nobody stocks Y, A ships one parcel a day. Day 1: P
    (X and Y) takes X from A, Y waits. Day 2: Q takes A's one place of the day."""
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    activate(client, locations={"a": {"daily_capacity": 1}})
    p = place_order(client, SHOP, "P", ("X", 1), ("Y", 1))
    assert p["status"] == "backordered"
    assert live_locations(client, p["id"]) == {"a"}
    runtime.clock = lambda: later(24 * 60)
    q = place_order(client, SHOP, "Q", ("X", 1))
    assert live_locations(client, q["id"]) == {"a"}
    return p


def test_a_channel_update_of_a_backordered_order_on_a_new_day_keeps_the_place_it_held(
    client: TestClient, runtime: Runtime
) -> None:
    p = _day_two_with_a_taken(client, runtime)
    # Day 2, the channel sends the order again (say, it was paid): same lines, newer.
    body = _body("P", ("X", 1), ("Y", 1), financial_status="paid",
                 updated_at=later(24 * 60 + 5).isoformat())  # fmt: skip
    assert client.post("/v1/orders", json=body).status_code in (200, 201)
    assert live_locations(client, p["id"]) == {"a"}


def test_an_order_routed_again_twice_on_a_new_day_keeps_the_place_it_held_yesterday(
    client: TestClient, runtime: Runtime
) -> None:
    p = _day_two_with_a_taken(client, runtime)
    first = client.post(f"/v1/orders/{p['id']}/route")
    assert first.status_code == 200, first.text
    assert live_locations(client, p["id"]) == {"a"}  # kept, as the docs say
    runtime.clock = lambda: later(24 * 60 + 60)
    second = client.post(f"/v1/orders/{p['id']}/route")
    assert second.status_code == 200, second.text
    assert live_locations(client, p["id"]) == {"a"}


def test_a_method_change_on_a_new_day_keeps_the_place_the_order_held_since_yesterday(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    # The same days either way: nothing about the services or the date changes.
    activate(
        client,
        locations={"a": {"daily_capacity": 1}},
        delivery_days={"Standard": 5, "Economy": 5},
    )
    body = _body("M", ("X", 1), shipping_method="Standard")
    made = client.post("/v1/orders", json=body)
    assert made.status_code == 201, made.text
    order_id = made.json()["order"]["id"]
    assert live_locations(client, order_id) == {"a"}
    runtime.clock = lambda: later(24 * 60)
    q = place_order(client, SHOP, "Q", ("X", 1))
    assert live_locations(client, q["id"]) == {"a"}
    changed = {**body, "shipping_method": "Economy", "updated_at": later(24 * 60 + 5).isoformat()}
    assert client.post("/v1/orders", json=changed).status_code in (200, 201)
    assert live_locations(client, order_id) == {"a"}
