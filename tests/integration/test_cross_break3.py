"""Backorders routed again on a new UTC day, shipping methods that change (after an upgrade,
after hand-off), the promise after an edit, the scarcity refresh under weights and the policy
lab's store file: where they once broke; on SQLite and PostgreSQL.

The network of tests/builders.py: A at 50 km, B at 80 km, C at 700 km east of the customer.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from aoms.adapters.db import schema as t
from aoms.bootstrap import Runtime
from tests.builders import T0, later, network, place_order
from tests.integration.test_promise_api import express_world
from tests.integration.test_routing_policies import POLICIES, SHOP, client
from tests.integration.test_shipping_api import world

__all__ = ["client", "world"]  # fixtures of the routing-policy and shipping tests, by name


def activate(client: TestClient, **document: Any) -> None:
    made = client.post(POLICIES, json={"document": {"policy": "optimal", **document}, "note": "x"})
    assert made.status_code == 201, made.text
    version = made.json()["version"]
    assert client.post(f"{POLICIES}/{version}/activate").status_code == 200


def status_of(client: TestClient, order_id: int) -> str:
    return str(client.get(f"/v1/orders/{order_id}").json()["status"])


def decisions(runtime: Runtime, order_id: int) -> int:
    d = t.routing_decisions.c
    with runtime.store.read() as conn:
        return int(conn.execute(select(func.count()).where(d.order_id == order_id)).scalar_one())


# -- 55cb873: backorders routed again when the UTC day turns ---------------------------------


def test_a_capacity_backorder_behind_the_limit_of_unfillable_ones_is_routed_on_a_new_day(
    client: TestClient, runtime: Runtime
) -> None:
    """`limit=1` stands for the default 1,000: one older order waits for a SKU nobody stocks
    (docs: 'oldest first (up to 1,000 at a time)'). The capacity backorder behind it has room
    today, but each day's retry spends its whole budget on the unfillable one."""
    network(runtime.engine, {("X", "a"): 5})
    activate(client, locations={"a": {"daily_capacity": 1}})
    never = place_order(client, SHOP, "never", ("NOSUCH", 1))
    assert never["status"] == "backordered"
    assert place_order(client, SHOP, "1", ("X", 1))["status"] == "routed"
    waiting = place_order(client, SHOP, "2", ("X", 1))
    assert waiting["status"] == "backordered"
    assert runtime.retry_earlier_backorders(limit=1) is None  # notes the day
    for day in (1, 2, 3):  # three days turn; the workers look many times a day
        runtime.clock = lambda day=day: later(day * 24 * 60)
        for _ in range(5):
            runtime.retry_earlier_backorders(limit=1)
    assert status_of(client, waiting["id"]) == "routed"


def test_workers_started_on_a_new_day_route_yesterdays_capacity_backorders(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    activate(client, locations={"a": {"daily_capacity": 1}})
    assert place_order(client, SHOP, "1", ("X", 1))["status"] == "routed"
    waiting = place_order(client, SHOP, "2", ("X", 1))
    assert waiting["status"] == "backordered"
    # The workers did not run overnight; they start again the next morning.
    runtime.clock = lambda: later(20 * 60)  # 08:00 UTC the next day
    for _ in range(5):
        runtime.retry_earlier_backorders()
    assert status_of(client, waiting["id"]) == "routed"


# -- 2e7b8dd: the shipping method in the routing key -----------------------------------------


def _old_routing_key(runtime: Runtime, order_id: int) -> str:
    """The key as fcd2bfa computed it (lines and destination, no shipping method)."""
    o, ln = t.orders.c, t.order_lines.c
    with runtime.store.read() as conn:
        row = conn.execute(select(o.dest_lat, o.dest_lng).where(o.id == order_id)).one()
        lines = [
            (r.line_no, r.sku, r.quantity, r.requires_shipping)
            for r in conn.execute(
                select(ln.line_no, ln.sku, ln.quantity, ln.requires_shipping)
                .where(ln.order_id == order_id)
                .order_by(ln.line_no)
            )
        ]
    where = f"{row.dest_lat:.5f},{row.dest_lng:.5f}"
    return hashlib.sha256(f"{lines}|{where}".encode()).hexdigest()[:32]


def test_an_order_stored_before_the_upgrade_is_not_routed_again_by_a_payment_update(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    body = {
        "shop": SHOP, "external_id": "U-1", "currency": "USD", "placed_at": T0.isoformat(),
        "shipping_method": "Standard", "financial_status": "pending",
        "shipping_address": {"country_code": "US", "latitude": 0.0, "longitude": 10.0},
        "lines": [{"sku": "X", "quantity": 1, "unit_price": "10.00", "grams": 500}],
    }  # fmt: skip
    made = client.post("/v1/orders", json=body)
    assert made.status_code == 201, made.text
    order_id = made.json()["order"]["id"]
    fo_before = [f["id"] for f in made.json()["order"]["fulfilment_orders"]]
    old_key = _old_routing_key(runtime, order_id)  # as the code before 2e7b8dd stored it
    with runtime.engine.begin() as conn:
        conn.execute(update(t.orders).where(t.orders.c.id == order_id).values(routing_key=old_key))
    paid = {**body, "financial_status": "paid", "updated_at": later(5).isoformat()}
    assert client.post("/v1/orders", json=paid).status_code in (200, 201)
    after = client.get(f"/v1/orders/{order_id}").json()
    assert decisions(runtime, order_id) == 1
    assert [f["id"] for f in after["fulfilment_orders"]] == fo_before


# -- 59b0fcc: the promise after routing by the routed services ---------------------------------


def _express_order(client: TestClient, ref: str, *lines: tuple[str, int]) -> int:
    body = {
        "shop": "b2b.example", "channel": "b2b", "external_id": ref,
        "currency": "USD", "placed_at": "2026-11-02T12:00:00Z", "shipping_method": "Express",
        "shipping_address": {"country_code": "US", "province_code": "CA",
                             "latitude": 0.0, "longitude": 10.0},
        "lines": [{"sku": s, "quantity": q, "unit_price": "10.00", "grams": 500}
                  for s, q in lines],
    }  # fmt: skip
    made = client.post("/v1/orders", json=body)
    assert made.status_code == 201, made.text
    return int(made.json()["order"]["id"])


def test_an_added_line_leaves_the_promise_of_the_shipment_routed_before_by_its_service(
    client: TestClient, runtime: Runtime
) -> None:
    express_world(client, runtime, {("X", "a"): 5, ("Y", "b"): 5})
    order_id = _express_order(client, "E-1", ("X", 1))
    before = client.get(f"/v1/orders/{order_id}/promise").json()
    [a] = before["shipments"]
    assert (a["location_id"], a["lane"]["service"], before["arrives_by"]) == (
        "a", "express", "2026-11-04",
    )  # fmt: skip
    edit = {"actor": "ops", "add": [{"sku": "Y", "quantity": 1, "unit_price": "10.00",
                                     "grams": 500}]}  # fmt: skip
    edited = client.post(f"/v1/orders/{order_id}/edit", json=edit)
    assert edited.status_code == 200, edited.text
    after = client.get(f"/v1/orders/{order_id}/promise").json()
    by_location = {s["location_id"]: s for s in after["shipments"]}
    assert by_location["a"]["lane"]["service"] == "express"
    assert by_location["a"]["arrives_by"] == "2026-11-04"


def test_a_new_days_retry_failed_by_a_passing_database_error_is_tried_again_that_day(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from aoms.services import orders as order_cases

    network(runtime.engine, {("X", "a"): 5})
    activate(client, locations={"a": {"daily_capacity": 1}})
    assert place_order(client, SHOP, "1", ("X", 1))["status"] == "routed"
    waiting = place_order(client, SHOP, "2", ("X", 1))
    assert waiting["status"] == "backordered"
    assert runtime.retry_earlier_backorders() is None  # notes the day
    runtime.clock = lambda: later(24 * 60)
    real = order_cases.reroute

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("UPDATE stock_levels", {}, Exception("database is locked"))

    monkeypatch.setattr(order_cases, "reroute", busy)
    assert runtime.retry_earlier_backorders() == {"failed": 1}  # the database was busy
    monkeypatch.setattr(order_cases, "reroute", real)
    for _ in range(3):  # the next looks, a second apart, the same day
        runtime.retry_earlier_backorders()
    assert status_of(client, waiting["id"]) == "routed"


# -- 36a73cc: a label with no date meets the days routing promised ---------------------------


def test_a_label_bought_after_the_method_became_express_at_the_warehouse_meets_expresss_days(
    world: Any,
) -> None:
    """The shipping tests' quotes: 5.71 (4 days) is the cheapest, 8.79 (2 days) the cheapest
    that arrives by Thursday the 10th. Express gets 3 days; the order had no method when it was
    routed and handed off, then the channel says Express."""
    from aoms.adapters.db.handoff import SqlHandoffStore
    from aoms.services import handoff
    from tests.integration.test_shipping_api import LA, MONDAY, _ok

    client, rt = world.client, world.runtime
    policies = "/v1/shops/acme.myshopify.com/routing-policies"
    doc = {"policy": "nearest", "delivery_days": {"Express": 3}}
    _ok(client.post(policies, json={"document": doc, "note": "promise Express"}), 201)
    _ok(client.post(f"{policies}/1/activate"))
    body = {
        "shop": "acme.myshopify.com", "channel": "web", "external_id": "M-1", "currency": "USD",
        "placed_at": "2026-12-07T09:00:00Z", "shipping_address": LA,
        "lines": [{"sku": "mug", "quantity": 2, "unit_price": "12.00", "grams": 300}],
    }  # fmt: skip
    order_id = int(_ok(client.post("/v1/orders", json=body), 201)["order"]["id"])
    [fo] = _ok(client.get(f"/v1/orders/{order_id}"))["fulfilment_orders"]
    hstore = SqlHandoffStore(rt.store)
    hstore.set_connection("hob", kind="rest", secret="s" * 24, base_url="http://x", now=MONDAY)
    with hstore.handoff_transaction() as htx:
        handoff.hand_off(htx, fo["id"], MONDAY)
        handoff.accept(htx, fo["id"], MONDAY)
    express = {**body, "shipping_method": "Express", "updated_at": "2026-12-07T09:30:00Z"}
    assert client.post("/v1/orders", json=express).status_code in (200, 201)
    assert _ok(client.get(f"/v1/orders/{order_id}"))["shipping_method"] == "Express"
    shipment = _ok(client.post(f"/v1/fulfilment-orders/{fo['id']}/shipments", json={}), 201)
    assert shipment["deliver_by"] == "2026-12-10"
    assert shipment["parcels"][0]["amount"] == "8.79"


# -- 2e7b8dd: the scarcity refresh's backorder cost --------------------------------------------


def test_the_forecast_never_backorders_an_order_routing_would_ship_under_weights(
    client: TestClient, runtime: Runtime
) -> None:
    """test_scarcity_live's first case (A at the door with 6 X, B 700 km east with 10; five
    orders over 12 hours, each counted twice), with `weights.shipping` 4. Scored: a door order
    from A 4 x 4.00 + 1.50 = 17.50, from B 4 x 8.00 + 1.50 = 33.50. Routing never leaves a unit
    unshipped that it can ship, so A's last unit saves an expected door order 33.50 - 17.50 =
    16.00; the forecast, counting a backorder at 24.00 + 1.50 = 25.50, says 8.00."""
    from tests.integration.test_scarcity_live import SCARCITY, place

    network(runtime.engine, {("X", "a"): 6, ("X", "b"): 10}, locations={"a": 0, "b": 700})
    activate(client, scarcity=SCARCITY, weights={"shipping": "4"})
    for i, hours in enumerate((12, 9, 6, 3)):
        place(client, f"door-{i}", 0, hours)
    place(client, "far-0", 250, 1)
    answer = client.post(f"/v1/shops/{SHOP}/scarcity/refresh")
    assert answer.status_code == 200, answer.text
    prices = client.get(f"/v1/shops/{SHOP}/scarcity").json()["prices"]
    assert [(p["location_id"], p["sku"], p["price_minor"]) for p in prices] == [("a", "X", 1600.0)]


# -- 62c4306: the store file's delivery_days in the policy lab --------------------------------


@pytest.mark.parametrize(
    "days",
    [5, {"[/Express]": "two"}],  # not an object; a method whose name is markup, with bad days
)
def test_a_store_file_with_bad_delivery_days_is_refused_with_a_message(
    tmp_path: Any, days: object
) -> None:
    import json

    from typer.testing import CliRunner

    from aoms.demo.orders import demo_store
    from aoms.entrypoints.cli import app

    store = {**demo_store(), "delivery_days": days}
    (tmp_path / "store.json").write_text(json.dumps(store))
    order = {
        "shop": "demo-outdoor.myshopify.com", "external_id": "N1", "currency": "USD",
        "placed_at": "2026-12-01T09:00:00Z",
        "shipping_address": {"country_code": "US", "latitude": 40.7, "longitude": -74.1},
        "lines": [{"sku": "SKU-001", "quantity": 1, "unit_price": "10.00"}],
    }  # fmt: skip
    (tmp_path / "orders.json").write_text(json.dumps([order]))
    result = CliRunner().invoke(
        app,
        ["simulate", "orders", str(tmp_path / "orders.json"), "--store",
         str(tmp_path / "store.json"), "--json"],
    )  # fmt: skip
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2 and "delivery_days" in result.output


def test_a_partly_backordered_order_routed_again_on_a_new_day_keeps_its_units_where_they_are(
    client: TestClient, runtime: Runtime
) -> None:
    """A (50 km) and C (700 km) stock X; nobody stocks Y; A ships one parcel a day. Day 1: P
    (X and Y) takes X from A, Y waits. Day 2: Q takes A's one place of the day. The workers
    leave P alone (its Y has no stock anywhere: a receipt of Y routes it), and when it is
    routed again by hand its X stays at A (5.50), not C (9.50): A's place was P's since
    yesterday."""
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    activate(client, locations={"a": {"daily_capacity": 1}})
    p = place_order(client, SHOP, "P", ("X", 1), ("Y", 1))
    assert p["status"] == "backordered"
    assert {f["location_id"] for f in p["fulfilment_orders"]} == {"a"}
    runtime.clock = lambda: later(24 * 60)
    q = place_order(client, SHOP, "Q", ("X", 1))
    assert {f["location_id"] for f in q["fulfilment_orders"]} == {"a"}
    assert runtime.retry_earlier_backorders() is None  # no stock of Y anywhere
    assert decisions(runtime, p["id"]) == 1
    again = client.post(f"/v1/orders/{p['id']}/route")
    assert again.status_code == 200, again.text
    live = {f["location_id"] for f in again.json()["fulfilment_orders"] if f["status"] == "open"}
    assert live == {"a"}
    assert again.json()["routing"][-1]["cost"] == "5.50"
