"""Order edits over the API: reductions release exactly their units, never below what has
shipped; added lines are reserved and routed beside what the order holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from aoms.adapters.db import ledger
from aoms.adapters.db import schema as t
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import network, place_order

SHOP = "shop.myshopify.com"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def snapshot(rt: Runtime) -> dict[str, Any]:
    """Everything an edit could touch."""
    with rt.store.read() as conn:
        return {
            name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key))]
            for name, table in (
                ("stock", t.stock_levels),
                ("lines", t.order_lines),
                ("orders", t.orders),
                ("reservations", t.reservations),
                ("fulfilment", t.fulfilment_orders),
                ("movements", t.stock_movements),
                ("ledger", t.ledger_entries),
                ("events", t.outbox),
                ("decisions", t.routing_decisions),
            )
        }


def stock(rt: Runtime) -> dict[tuple[str, str], tuple[int, int]]:
    with rt.store.read() as conn:
        s = t.stock_levels.c
        return {
            (r.sku, r.location_id): (r.on_hand, r.reserved)
            for r in conn.execute(select(s.sku, s.location_id, s.on_hand, s.reserved))
        }


def lines(order: dict[str, Any]) -> list[tuple[int, str, int, int, int]]:
    return [
        (ln["line_no"], ln["sku"], ln["quantity"], ln["reserved"], ln["backordered"])
        for ln in order["lines"]
    ]


def test_a_quantity_edit_below_the_shipped_quantity_is_refused_and_changes_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    placed = place_order(client, SHOP, "E1", ("X", 5))
    oid = placed["id"]
    with runtime.engine.begin() as conn:  # 3 of the 5 units have left the warehouse
        conn.execute(
            update(t.order_lines).where(t.order_lines.c.order_id == oid).values(shipped_qty=3)
        )
    before = snapshot(runtime)
    answer = client.post(
        f"/v1/orders/{oid}/edit", json={"actor": "ann", "lines": [{"line_no": 1, "quantity": 2}]}
    )
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == "quantity_below_shipped"
    assert body["field"] == "lines[1].quantity"
    assert "3 unit(s) have shipped" in body["detail"]
    assert snapshot(runtime) == before
    # Down to exactly the shipped quantity is allowed.
    ok = client.post(
        f"/v1/orders/{oid}/edit", json={"actor": "ann", "lines": [{"line_no": 1, "quantity": 3}]}
    )
    assert ok.status_code == 200, ok.text


def test_reducing_and_removing_lines_releases_exactly_their_units(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("Y", "a"): 10, ("Z", "b"): 10})
    placed = place_order(client, SHOP, "E2", ("X", 4), ("Y", 3), ("Z", 2))
    oid = placed["id"]
    assert stock(runtime)[("X", "a")] == (10, 4)
    answer = client.post(
        f"/v1/orders/{oid}/edit",
        json={
            "actor": "ann",
            "lines": [{"line_no": 1, "quantity": 1}, {"line_no": 3, "quantity": 0}],
        },
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["released_units"] == 3 + 2
    assert stock(runtime) == {("X", "a"): (10, 1), ("Y", "a"): (10, 3), ("Z", "b"): (10, 0)}
    assert lines(result["order"]) == [(1, "X", 1, 1, 0), (2, "Y", 3, 3, 0), (3, "Z", 0, 0, 0)]
    assert result["order"]["status"] == "routed"
    with runtime.store.read() as conn:
        r = t.reservations.c
        active = conn.execute(
            select(r.sku, r.location_id, r.quantity)
            .where(r.order_id == oid, r.status == "active")
            .order_by(r.sku)
        ).all()
        fos = conn.execute(
            select(
                t.fulfilment_orders.c.location_id,
                t.fulfilment_orders.c["items"],
                t.fulfilment_orders.c.status,
            )
            .where(t.fulfilment_orders.c.order_id == oid)
            .order_by(t.fulfilment_orders.c.id)
        ).all()
    assert [tuple(x) for x in active] == [("X", "a", 1), ("Y", "a", 3)]
    # The warehouse at b has nothing left to ship; a ships what is still ordered.
    assert sorted((f.location_id, f.status, dict(f.items)) for f in fos) == [
        ("a", "open", {"X": 1, "Y": 3}),
        ("b", "cancelled", {}),
    ]
    assert ledger.verify(runtime.store).ok


def test_an_added_line_is_reserved_and_routed_beside_what_the_order_holds(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("W", "b"): 1})
    placed = place_order(client, SHOP, "E3", ("X", 2))
    oid = placed["id"]
    answer = client.post(
        f"/v1/orders/{oid}/edit",
        json={
            "actor": "ann",
            "add": [{"sku": "W", "quantity": 3, "unit_price": "4.50", "grams": 200}],
        },
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["added_lines"] == [2]
    assert result["reserved_units"] == 1 and result["backordered_units"] == 2
    assert lines(result["order"]) == [(1, "X", 2, 2, 0), (2, "W", 3, 1, 2)]
    assert result["order"]["status"] == "backordered"
    assert stock(runtime) == {("X", "a"): (10, 2), ("W", "b"): (1, 1)}
    with runtime.store.read() as conn:
        r = t.reservations.c
        held = conn.execute(
            select(r.line_no, r.sku, r.location_id, r.quantity)
            .where(r.order_id == oid, r.status == "active")
            .order_by(r.line_no)
        ).all()
    assert [tuple(x) for x in held] == [(1, "X", "a", 2), (2, "W", "b", 1)]
    assert ledger.verify(runtime.store).ok


def test_an_edit_that_names_a_missing_line_or_grows_one_is_refused(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    oid = place_order(client, SHOP, "E4", ("X", 2))["id"]
    before = snapshot(runtime)
    for edit, code in (
        ({"lines": [{"line_no": 7, "quantity": 1}]}, "invalid_input"),
        ({"lines": [{"line_no": 1, "quantity": 5}]}, "invalid_input"),
        ({}, "invalid_input"),
    ):
        answer = client.post(f"/v1/orders/{oid}/edit", json={"actor": "ann", **edit})
        assert answer.status_code == 422 and answer.json()["code"] == code, answer.text
    assert snapshot(runtime) == before
    assert (
        client.post(
            "/v1/orders/9999/edit", json={"actor": "a", "lines": [{"line_no": 1, "quantity": 0}]}
        ).status_code
        == 404
    )
