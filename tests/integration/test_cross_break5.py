"""Places held in an earlier day's capacity when a warehouse rejects and when a wave spans
midnight; a shipped order's promise; the demo's serve line; the lab's cost per order shipped; a
quote a distance-priced card cannot give. On SQLite and PostgreSQL where a database is used."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from aoms.services import handoff
from tests.builders import T0
from tests.integration.test_promise_api import HISTORY, _order, _setup


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


# -- 261a67d: a promise whose date has passed -------------------------------------------------


def test_an_order_that_shipped_is_not_said_to_be_unshipped_when_its_date_has_passed(
    client: TestClient, runtime: Runtime
) -> None:
    _setup(client, runtime, {("X", "a"): 5})
    assert client.post("/v1/delivery-history", json={"deliveries": HISTORY}).status_code == 200
    assert client.post("/v1/promise-model/fit", json={"prior_weight": 0}).status_code == 201
    order_id = _order(client, "PO-SHIPPED", 1)
    assert client.get(f"/v1/orders/{order_id}").json()["status"] == "routed"
    with runtime.store.transaction() as tx:
        assert handoff.ship_outside(tx.handoff(), order_id, T0) == 1  # it left on its day
    runtime.clock = lambda: T0 + timedelta(days=30)
    answer = client.get(f"/v1/orders/{order_id}/promise")
    assert answer.status_code == 200, answer.text
    notes: list[str] = answer.json()["notes"]
    assert not any("has not shipped" in n for n in notes), notes
    # promised by the plan it shipped by, not as if it had never been routed
    assert answer.json()["stage"] == "after_routing"
    assert [s["location_id"] for s in answer.json()["shipments"]] == ["a"]


# -- a5be05e: places held in an earlier day's capacity -----------------------------------------


def _locations(runtime: Runtime, order_id: int) -> dict[str, str]:
    """The order's fulfilment orders not cancelled: location -> status."""
    from sqlalchemy import select

    from aoms.adapters.db import schema as t

    f = t.fulfilment_orders.c
    with runtime.store.read() as conn:
        rows = conn.execute(
            select(f.location_id, f.status).where(f.order_id == order_id, f.status != "cancelled")
        ).all()
    return {r.location_id: r.status for r in rows}


def test_a_rejection_on_a_later_day_keeps_the_place_the_order_held_since_yesterday(
    client: TestClient, runtime: Runtime
) -> None:
    """X at A (and C), Z only at B; B ships one parcel a day. Day 1: P (X and Z) goes A + B.
    Day 2: Q takes B's place of the day; then A rejects P's X. X goes to C, and P's Z, re-planned
    with it, must keep the place at B it has held since day 1 (it was counted on day 1)."""
    from aoms.adapters.db.handoff import SqlHandoffStore
    from aoms.domain.handoff import RejectReason
    from tests.builders import later, network, place_order
    from tests.integration.test_cross_break3 import SHOP, activate

    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5, ("Z", "b"): 5})
    activate(client, locations={"b": {"daily_capacity": 1}})
    hstore = SqlHandoffStore(runtime.store)
    hstore.set_connection("a", kind="rest", secret="s" * 24, base_url="http://x", now=T0)
    p = place_order(client, SHOP, "P", ("X", 1), ("Z", 1))
    assert _locations(runtime, p["id"]) == {"a": "open", "b": "open"}
    fo_a = next(
        f["id"] for f in client.get(f"/v1/orders/{p['id']}").json()["fulfilment_orders"]
        if f["location_id"] == "a"
    )  # fmt: skip
    with hstore.handoff_transaction() as htx:
        handoff.hand_off(htx, fo_a, later(1))
    runtime.clock = lambda: later(24 * 60)
    q = place_order(client, SHOP, "Q", ("Z", 1))
    assert _locations(runtime, q["id"]) == {"b": "open"}
    with hstore.handoff_transaction() as htx:
        handoff.reject(htx, fo_a, RejectReason.ADDRESS_UNSERVICEABLE, later(24 * 60 + 5))
    assert _locations(runtime, p["id"]) == {"a": "rejected", "c": "open", "b": "open"}


# -- 261a67d: `aoms demo --no-stay` says how to serve what it made -----------------------------


def test_the_no_stay_serve_command_listens_where_the_dashboard_line_says(tmp_path: Any) -> None:
    import io
    import socket

    from rich.console import Console

    from aoms.entrypoints.demo import run_demo

    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        port = s.getsockname()[1]
    out = io.StringIO()
    run_demo(orders=30, host="127.0.0.2", port=port, database=tmp_path / "demo.db", stay=False,
             console=Console(file=out, width=400))  # fmt: skip
    lines = out.getvalue().splitlines()
    [dashboard] = [x for x in lines if x.startswith("Dashboard:")]
    [serve] = [x for x in lines if x.startswith("Serve it:")]
    assert f"http://127.0.0.2:{port}/ — sign in as" in dashboard, dashboard
    assert f"aoms serve --host 127.0.0.2 --port {port} --database-url sqlite:///" in serve


# -- 261a67d: the lab's table ------------------------------------------------------------------


def test_the_landed_cost_per_order_shipped_counts_only_orders_that_shipped() -> None:
    """One X at A, at the customer: the first order ships it (4.00 + 1.50 = 5.50), the second
    gets nothing. Per order shipped that is 5.50, not 2.75."""
    from datetime import UTC, datetime

    from aoms.domain.money import Money
    from aoms.domain.routing import Demand
    from aoms.entrypoints.simulate import simulate
    from aoms.services.policy_lab import LabLocation, LabOrder, Scenario
    from tests.builders import CARD, east

    at = datetime(2026, 10, 1, tzinfo=UTC)
    orders = [
        LabOrder(f"o{n}", at + timedelta(hours=n), Demand({"X": 1}, {"X": 500}, east(0), "USD"))
        for n in (1, 2)
    ]
    locations = [LabLocation("a", "A", east(0), Money.of("1.50", "USD"))]
    scenario = Scenario("one", "USD", CARD, locations, {("X", "a"): 1}, orders)
    report = simulate(scenario, ["nearest"], bound=False)
    [row] = report["policies"]
    assert (row["landed_cost"], row["units_backordered"]) == ("5.50", 1)
    assert row["cost_per_order"] == "5.5000"


# -- 261a67d: a quote the card cannot give -----------------------------------------------------


def test_a_card_priced_by_distance_says_the_parcel_goes_too_far(tmp_path: Any) -> None:
    """The card prices up to 100 km; 07030 (Hoboken) to 90210 (Beverly Hills) is ~3,900 km."""
    from typer.testing import CliRunner

    from aoms.entrypoints.cli import app

    card = "carrier,service,max_km,max_weight_g,price,currency,transit_days\n"
    card += "acme,local,100,1000,5.00,USD,1\n"
    (tmp_path / "rates.csv").write_text(card)
    args = ["shipping", "quote", str(tmp_path / "rates.csv"), "07030", "90210", "--grams", "800",
            "--length-mm", "200", "--width-mm", "150", "--height-mm", "100"]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 1 and out.stdout == ""
    assert "km" in out.stderr, out.stderr


# -- services/waves.py: a wave across midnight ------------------------------------------------


def test_a_wave_across_midnight_keeps_a_location_within_todays_capacity(runtime: Runtime) -> None:
    """A (0 km from W2's customer) ships one parcel a day; B is 700 km east, at W1's customer.
    Day 1, 23:00: W1 goes to A (B is empty). Day 2, 00:05: Q (X, and a Y nobody has) takes A's
    place of day 2; B gets stock; W2 goes to B. The wave since day 1, 22:00 must not swap W1
    and W2: that would send A a second shipment on day 2."""
    from sqlalchemy import func, select

    from aoms.adapters.db import schema as t
    from tests.integration.test_waves_edges import (
        DAY_TWO,
        WAVE,
        a_capped_late_on_day_one,
        open_at,
        order_now,
        setup,
    )

    def post(ref: str, km: float, *lines: tuple[str, int]) -> dict[str, Any]:
        return order_now(c, runtime, ref, km, *lines)

    day_two = DAY_TWO
    setup(runtime, a=5, b=0)
    with a_capped_late_on_day_one(runtime) as c:
        w1 = post("W1", 700, ("X", 1))
        assert open_at(c, w1["id"]) == ["a"]
        runtime.clock = lambda: day_two + timedelta(minutes=5)
        q = post("Q", 0, ("X", 1), ("Y", 1))
        assert q["status"] == "backordered" and open_at(c, q["id"]) == ["a"]
        stock = {"sku": "X", "location_id": "b", "delta": 5, "reason": "receipt"}
        assert c.post("/v1/inventory/adjustments", json=stock).status_code == 200
        w2 = post("W2", 0, ("X", 1))
        assert open_at(c, w2["id"]) == ["b"]
        since = (day_two - timedelta(hours=2)).isoformat()
        assert c.post(WAVE, json={"since": since}).status_code == 200
    f = t.fulfilment_orders.c
    with runtime.store.read() as conn:
        at_a_today = conn.execute(
            select(func.count()).where(
                f.location_id == "a", f.status != "cancelled", f.created_at >= day_two
            )
        ).scalar_one()
    assert at_a_today <= 1
