"""Re-planning a wave before it is released, over the HTTP API, on SQLite and PostgreSQL.

The network: A at the customer's door (0 km), B 700 km east; handling 1.50; the builders' card
(up to 1 kg: 0-100 km 4.00, 100-500 km 6.00, 500-1000 km 8.00). A holds one X, B five.
"""

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

SHOP = "shop.myshopify.com"
WAVE = f"/v1/shops/{SHOP}/waves/replan"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    stock = {("X", "a"): 1, ("X", "b"): 5}
    network(runtime.engine, stock, locations={"a": 0, "b": 700}, policy=Policy.OPTIMAL)
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def place(client: TestClient, external_id: str, km: float) -> dict[str, Any]:
    """One X (500 g) to a customer `km` east of A."""
    p = east(km)
    body = {
        "shop": SHOP,
        "external_id": external_id,
        "currency": "USD",
        "placed_at": T0.isoformat(),
        "shipping_address": {"country_code": "US", "latitude": p.lat, "longitude": p.lng},
        "lines": [{"sku": "X", "quantity": 1, "unit_price": "10.00", "grams": 500}],
    }
    answer = client.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    order: dict[str, Any] = answer.json()["order"]
    return order


def shipped_from(client: TestClient, order_id: int) -> list[str]:
    order = client.get(f"/v1/orders/{order_id}").json()
    return sorted(f["location_id"] for f in order["fulfilment_orders"] if f["status"] == "open")


def reserved(runtime: Runtime) -> dict[str, int]:
    s = t.stock_levels.c
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(s.location_id, s.reserved).where(s.sku == "X")).all()
    return {loc: n for loc, n in rows}


def test_a_wave_re_planned_together_ships_both_customers_from_their_nearest(
    client: TestClient, runtime: Runtime
) -> None:
    # 1. A customer 250 km from A (450 km from B): 6.00 + 1.50 = 7.50 from either; the tie goes
    #    to the nearer, A, which empties A.
    # 2. A customer at A's door: only B is left, 8.00 + 1.50 = 9.50. The wave costs 17.00.
    # Re-planned together: the first from B (7.50), the second from A (5.50) = 13.00.
    first, second = place(client, "1", 250), place(client, "2", 0)
    assert (shipped_from(client, first["id"]), shipped_from(client, second["id"])) == (
        ["a"],
        ["b"],
    )
    answer = client.post(WAVE, json={"since": (T0 - timedelta(hours=1)).isoformat()})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["orders"], report["moved"], report["saved_minor"]) == (2, 2, 400)
    assert report["landed_cost_minor"] == 1300
    assert (shipped_from(client, first["id"]), shipped_from(client, second["id"])) == (
        ["b"],
        ["a"],
    )
    # Each unit is reserved once, where it now ships from; nothing is left held elsewhere.
    assert reserved(runtime) == {"a": 1, "b": 1}
    detail = client.get(f"/v1/orders/{second['id']}").json()
    assert "Re-planned with the 2 orders of the wave" in detail["routing"][-1]["explanation"]
    # Again: already the best plan, nothing moves.
    again = client.post(WAVE, json={"since": (T0 - timedelta(hours=1)).isoformat()}).json()
    assert (again["moved"], again["saved_minor"]) == (0, 0)
    assert reserved(runtime) == {"a": 1, "b": 1}


def test_orders_routed_before_the_wave_are_not_moved(client: TestClient, runtime: Runtime) -> None:
    place(client, "1", 250), place(client, "2", 0)
    answer = client.post(WAVE, json={"since": (T0 + timedelta(hours=1)).isoformat()}).json()
    assert (answer["orders"], answer["moved"]) == (0, 0)
    assert reserved(runtime) == {"a": 1, "b": 1}


def test_a_wave_of_an_unknown_shop_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/v1/shops/nobody.myshopify.com/waves/replan", json={"since": T0.isoformat()}
    )
    assert (answer.status_code, answer.json()["code"]) == (404, "unknown_shop")


def test_the_wave_timer_re_plans_each_closed_wave_once(
    client: TestClient, runtime: Runtime
) -> None:
    # The same two orders as above, under a policy that closes a wave every 15 minutes. T0 is
    # 12:00 UTC, a boundary: the wave [12:00, 12:15) closes at 12:15.
    policies = f"/v1/shops/{SHOP}/routing-policies"
    body = {"document": {"policy": "optimal", "wave_minutes": 15}, "note": "waves"}
    assert client.post(policies, json=body).status_code == 201
    assert client.post(f"{policies}/1/activate").status_code == 200
    assert runtime.replan_due_waves() == []  # the timer starts at the current boundary, 12:00
    first, second = place(client, "1", 250), place(client, "2", 0)
    runtime.clock = lambda: T0 + timedelta(minutes=14, seconds=59)
    assert runtime.replan_due_waves() == []  # the wave is still open
    runtime.clock = lambda: T0 + timedelta(minutes=15, seconds=5)
    (report,) = runtime.replan_due_waves()
    assert (report["since"], report["moved"], report["saved_minor"]) == (T0, 2, 400)
    assert (shipped_from(client, first["id"]), shipped_from(client, second["id"])) == (
        ["b"],
        ["a"],
    )
    assert runtime.replan_due_waves() == []  # once per wave


def test_a_wave_length_outside_five_minutes_to_a_day_is_refused(client: TestClient) -> None:
    policies = f"/v1/shops/{SHOP}/routing-policies"
    for minutes, code in ((3, "invalid_policy_document"), (1441, "invalid_input")):
        body = {"document": {"policy": "optimal", "wave_minutes": minutes}, "note": "waves"}
        answer = client.post(policies, json=body)
        assert (answer.status_code, answer.json()["code"]) == (422, code), answer.text


def test_a_re_planned_order_still_names_its_carrier_service_and_days(
    client: TestClient, runtime: Runtime
) -> None:
    """The same two orders with the builders' prices as a `ground` service (1-4 days by
    distance band) beside a dearer `express`, and a policy giving every method 5 days: ground
    is fast enough everywhere, so the costs are the first test's, and the wave's new decisions
    name ground and its days as the orders' first ones did."""
    services = services_card([1, 2, 3, 4], [1, 1, 1, 2])
    assert client.put("/v1/rate-cards/USD", json=services).status_code == 200
    policies = f"/v1/shops/{SHOP}/routing-policies"
    doc = {"policy": "optimal", "delivery_days": {"*": 5}}
    assert client.post(policies, json={"document": doc, "note": "5 days"}).status_code == 201
    assert client.post(f"{policies}/1/activate").status_code == 200
    first, second = place(client, "1", 250), place(client, "2", 0)
    report = client.post(WAVE, json={"since": (T0 - timedelta(hours=1)).isoformat()}).json()
    assert (report["moved"], report["saved_minor"]) == (2, 400)
    d = t.routing_decisions.c
    with runtime.store.read() as conn:
        rows = conn.execute(
            select(d.order_id, d.detail).where(d.order_id.in_([first["id"], second["id"]]))
            .order_by(d.id)
        ).all()  # fmt: skip
    last = {order_id: detail for order_id, detail in rows}  # the wave's, written last
    # First from B (450 km: band 2, 2 days); second from A (0 km: band 1, 1 day).
    assert [(s["location_id"], s["service"], s["transit_days"])
            for s in last[first["id"]]["chosen"]["shipments"]] == [("b", "ground", 2)]  # fmt: skip
    assert [(s["location_id"], s["service"], s["transit_days"])
            for s in last[second["id"]]["chosen"]["shipments"]] == [("a", "ground", 1)]  # fmt: skip
    assert last[first["id"]]["within_days"] == last[second["id"]]["within_days"] == 5
