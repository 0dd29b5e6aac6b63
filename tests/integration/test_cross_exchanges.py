"""Exchanges (returns) meeting the order lifecycle (holds, release for fulfilment), over the
API on SQLite and PostgreSQL. A test marked strict xfail is a known fault: it turns into a
failure once the fault is fixed, and the mark is then removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.adapters.db.lifecycle import ready_for_fulfilment
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import later, network, place_order, services_card
from tests.integration.test_lifecycle import events

SHOP = "shop.myshopify.com"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: later(60)
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def test_an_instant_exchange_s_replacement_is_released_for_fulfilment_with_its_event(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("S", "a"): 5, ("L", "a"): 5})
    oid = int(place_order(client, SHOP, "X1", ("S", 1))["id"])
    assert len(events(runtime, oid, "order.released_for_fulfilment")) == 1  # as every order
    ok(client.post(f"/v1/orders/{oid}/delivered", json={}))
    ret = ok(client.post("/v1/returns", json={
        "order_id": oid, "items": [{"line_no": 1, "reason": "too_small"}],
        "exchange": {"sku": "L", "unit_price": "10.00", "instant": True}}), 201)  # fmt: skip
    replacement = int(ret["exchange_order_id"])
    state = ok(client.get(f"/v1/orders/{replacement}/lifecycle"))
    assert (state["state"], state["holds"]) == ("ready_for_fulfilment", [])
    assert ready_for_fulfilment(runtime.store, replacement)
    # Ready, with no hold: then it was released, once, as any other order is.
    assert state["released_for_fulfilment_at"] is not None
    assert len(events(runtime, replacement, "order.released_for_fulfilment")) == 1


def test_a_replacement_short_of_stock_is_released_when_its_stock_arrives(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("S", "a"): 5, ("L", "a"): 0})
    oid = int(place_order(client, SHOP, "X2", ("S", 1))["id"])
    ok(client.post(f"/v1/orders/{oid}/delivered", json={}))
    ret = ok(client.post("/v1/returns", json={
        "order_id": oid, "items": [{"line_no": 1, "reason": "too_small"}],
        "exchange": {"sku": "L", "unit_price": "10.00", "instant": True}}), 201)  # fmt: skip
    replacement = int(ret["exchange_order_id"])
    state = ok(client.get(f"/v1/orders/{replacement}/lifecycle"))
    assert (state["state"], state["released_for_fulfilment_at"]) == ("backordered", None)
    assert events(runtime, replacement, "order.released_for_fulfilment") == []
    arrived = {"sku": "L", "location_id": "a", "delta": 5, "reason": "receipt"}
    ok(client.post("/v1/inventory/adjustments", json=arrived))
    # 5 L arrived at A: the replacement's 1 is reserved there, and it is released, once.
    level = ok(client.get("/v1/inventory", params={"sku": "L", "location_id": "a"}))["items"]
    assert [(i["on_hand"], i["reserved"]) for i in level] == [(5, 1)]
    state = ok(client.get(f"/v1/orders/{replacement}/lifecycle"))
    assert state["state"] == "ready_for_fulfilment"
    assert len(events(runtime, replacement, "order.released_for_fulfilment")) == 1


def test_a_replacement_ships_by_the_original_s_shipping_method(
    client: TestClient, runtime: Runtime
) -> None:
    """The customer paid for Express (1 day); the policy prices ground (3 days within 100 km,
    4.00 for 500 g) and express (1 day, 8.00). The replacement, placed by the exchange now,
    goes by the original's method: from A by express (8.00 + 1.50 handling), not by ground."""
    network(runtime.engine, {("S", "a"): 5, ("L", "a"): 5})
    card = services_card([3, 3, 5, 6], [1, 1, 1, 2])
    assert client.put("/v1/rate-cards/USD", json=card).status_code == 200
    policies = f"/v1/shops/{SHOP}/routing-policies"
    doc = {"policy": "optimal", "delivery_days": {"Express": 1}}
    ok(client.post(policies, json={"document": doc, "note": "express"}), 201)
    ok(client.post(f"{policies}/1/activate"))
    oid = int(place_order(client, SHOP, "X3", ("S", 1), method="Express")["id"])
    ok(client.post(f"/v1/orders/{oid}/delivered", json={}))
    ret = ok(client.post("/v1/returns", json={
        "order_id": oid, "items": [{"line_no": 1, "reason": "too_small"}],
        "exchange": {"sku": "L", "unit_price": "10.00", "instant": True}}), 201)  # fmt: skip
    replacement = ok(client.get(f"/v1/orders/{ret['exchange_order_id']}"))
    assert replacement["shipping_method"] == "Express"
    decision = replacement["routing"][-1]
    assert decision["cost"] == "9.50"
    assert "A by express (1 day)." in decision["explanation"]
