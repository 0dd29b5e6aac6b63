"""The hand-off endpoints that merchants' tools call: connections, split, merge, cancelling
what is left of an order; with their errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, network, place_order
from tests.integration.test_handoff import stock

SHOP = "shop.myshopify.com"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    network(runtime.engine, {("X", "a"): 10, ("Y", "a"): 10})
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def test_a_connection_needs_where_to_reach_the_3pl_and_a_known_location(
    client: TestClient,
) -> None:
    no_url = client.put("/v1/locations/a/3pl-connection", json={"kind": "rest", "secret": "s" * 16})
    assert (no_url.status_code, no_url.json()["code"]) == (422, "invalid_input")
    weak = client.put(
        "/v1/locations/a/3pl-connection",
        json={"kind": "file", "directory": "/tmp/x", "secret": "short"},
    )
    assert weak.json()["field"] == "secret"
    unknown = client.put(
        "/v1/locations/zz/3pl-connection",
        json={"kind": "file", "directory": "/tmp/x", "secret": "s" * 16},
    )
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_location")


def test_split_merge_and_cancel_the_rest_of_an_order(client: TestClient, runtime: Runtime) -> None:
    placed = place_order(client, SHOP, "9", ("X", 3), ("Y", 1))
    [fo] = placed["fulfilment_orders"]
    split = client.post(
        f"/v1/fulfilment-orders/{fo['id']}/split", json={"lines": [{"sku": "X", "quantity": 1}]}
    )
    assert split.status_code == 200, split.text
    [new_id] = split.json()["new_fulfilment_order_ids"]
    shown = client.get(f"/v1/fulfilment-orders/{new_id}").json()
    assert [(ln["sku"], ln["remaining"]) for ln in shown["lines"]] == [("X", 1)]
    too_much = client.post(
        f"/v1/fulfilment-orders/{fo['id']}/split", json={"lines": [{"sku": "X", "quantity": 5}]}
    )
    assert (too_much.status_code, too_much.json()["code"]) == (422, "over_shipment")
    merged = client.post(
        "/v1/fulfilment-orders/merge", json={"fulfilment_order_ids": [fo["id"], new_id]}
    )
    assert merged.status_code == 200, merged.text
    assert stock(runtime) == {("X", "a"): (10, 3), ("Y", "a"): (10, 1)}  # untouched

    rest = client.post(f"/v1/orders/{placed['id']}/cancel-fulfilment")
    assert [(x["status"], x["changed"]) for x in rest.json()["fulfilment_orders"]] == [
        ("cancelled", True)
    ]
    assert stock(runtime) == {("X", "a"): (10, 0), ("Y", "a"): (10, 0)}
    again = client.post(f"/v1/orders/{placed['id']}/cancel-fulfilment")
    assert again.json()["fulfilment_orders"] == []  # nothing live is left to cancel
    missing = client.get("/v1/fulfilment-orders/999")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
