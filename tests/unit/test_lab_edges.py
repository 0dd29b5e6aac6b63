"""The policy lab's batch policy, and `aoms simulate orders` on odd store files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from aoms.demo.orders import demo_store
from aoms.domain.money import Money
from aoms.domain.routing import Demand
from aoms.entrypoints.cli import app
from aoms.services.policy_lab import LabLocation, LabOrder, Scenario, backorder_cost, run_policy
from tests.builders import CARD, east

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _order(name: str, at: datetime, km: float, **units: int) -> LabOrder:
    return LabOrder(name, at, Demand(units, {k: 500 for k in units}, east(km), "USD"))


def test_re_planning_a_wave_never_makes_it_cost_more_than_routing_it_on_arrival() -> None:
    # docs/policy-lab.md: a wave's re-plan is taken only when it pays now (no fewer units, no
    # more landed cost). Card (tests.builders): up to 1 kg, 0-100 km 4.00, 100-500 km
    # 6.00, 500-1000 km 8.00; handling 1.50. A is at the customer's side of the line (0 km),
    # B 700 km east. A holds 2 X and 2 Y, B 1 X.
    # History: one X + Y to B's door. Then, in one two-hour wave:
    #   o1 (day 1, 00:00): one X at A's door: A 0 km, 4.00 + 1.50 = 5.50 (B would be 9.50).
    #   o2 (day 1, 00:10): X + Y (1 kg) 450 km from A: A ships both, 6.00 + 1.50 = 7.50.
    # o3 (day 3) wants Z, which nobody stocks: backordered by every policy, whatever the wave.
    # Routed on arrival (scarcity = the per-order optimum here) the wave costs 13.00. The
    # re-plan at the prices of o2's refresh moves o1 to B (9.50): the wave costs 17.00.
    locations = [
        LabLocation("a", "A", east(0), Money.of("1.50", "USD")),
        LabLocation("b", "B", east(700), Money.of("1.50", "USD")),
    ]
    stock = {("X", "a"): 2, ("Y", "a"): 2, ("X", "b"): 1}
    history = [_order("h", T0, 700, X=1, Y=1)]
    orders = [
        _order("o1", T0 + timedelta(days=1), 0, X=1),
        _order("o2", T0 + timedelta(days=1, minutes=10), 450, X=1, Y=1),
        _order("o3", T0 + timedelta(days=3), 250, Z=1),
    ]
    scenario = Scenario("wave", "USD", CARD, locations, stock, orders, history=history)
    penalty = backorder_cost(scenario)
    on_arrival = run_policy(scenario, "scarcity", refresh=1)
    batch = run_policy(scenario, "batch", refresh=1, wave_minutes=120)
    assert on_arrival.cost_minor == 550 + 750
    assert batch.units_backordered == on_arrival.units_backordered == 1
    assert batch.total_minor(penalty) <= on_arrival.total_minor(penalty)


def _neutral_order(n: int, placed: str) -> dict[str, Any]:
    return {
        "shop": "demo-outdoor.myshopify.com",
        "external_id": f"N{n}",
        "currency": "USD",
        "placed_at": placed,
        "shipping_address": {"country_code": "US", "latitude": 40.7, "longitude": -74.1},
        "lines": [{"sku": "SKU-001", "quantity": 1, "unit_price": "10.00"}],
    }


def _simulate(tmp_path: Path, store: dict[str, Any], *extra: str) -> Any:
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps([_neutral_order(1, "2026-12-01T09:00:00Z")]))
    store_file = tmp_path / "store.json"
    store_file.write_text(json.dumps(store))
    args = ["simulate", "orders", str(orders), "--store", str(store_file), "--json", *extra]
    return CliRunner().invoke(app, args)


def test_simulate_orders_with_free_shipping_and_no_handling_reports_instead_of_crashing(
    tmp_path: Path,
) -> None:
    # Every price on the card is 0 and no location charges handling: every policy and the
    # clairvoyant bound cost 0.00. The gap to a zero bound is undefined; the report should say
    # so (null), not end in decimal.InvalidOperation from 0 / 0.
    store = demo_store()
    store["rate_card"]["prices"] = [["0"] * len(row) for row in store["rate_card"]["prices"]]
    for loc in store["locations"]:
        loc["handling_cost"] = "0"
    result = _simulate(tmp_path, store, "--policies", "optimal")
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0


def test_simulate_orders_refuses_a_store_location_whose_latitude_is_not_a_number(
    tmp_path: Path,
) -> None:
    # JSON allows NaN; a location at (NaN, -74.17) cannot be placed. Unchecked, haversine turns
    # it into the antipode (20,015 km from everyone) and the lab runs on; it should be refused
    # like an order whose address cannot be placed.
    store = demo_store()
    store["locations"][0]["lat"] = float("nan")
    result = _simulate(tmp_path, store, "--policies", "optimal")
    assert result.exit_code == 2
    assert "invalid_input" in result.output


def test_simulate_orders_refuses_a_product_of_negative_weight(tmp_path: Path) -> None:
    # Order lines must weigh 0 g or more (the API refuses less); the store file's products
    # should be held to the same rule rather than lighten every parcel they are in.
    store = demo_store()
    store["products"][0]["grams"] = -780
    result = _simulate(tmp_path, store, "--policies", "optimal")
    assert result.exit_code == 2
    assert "invalid_input" in result.output


def test_simulate_orders_reads_a_json_file_saved_with_a_byte_order_mark(tmp_path: Path) -> None:
    # Spreadsheet and Windows tools often save UTF-8 with a BOM; `aoms promise import` reads
    # CSV with utf-8-sig, but the orders file is refused ("Unexpected UTF-8 BOM").
    orders = tmp_path / "orders.json"
    text = json.dumps([_neutral_order(1, "2026-12-01T09:00:00Z")])
    orders.write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = CliRunner().invoke(
        app, ["simulate", "orders", str(orders), "--policies", "optimal", "--no-bound", "--json"]
    )
    assert result.exit_code == 0, result.output


def test_simulate_orders_refuses_a_store_file_that_lists_a_location_twice(tmp_path: Path) -> None:
    # The store lists Newark (nwk) twice, the second time with Miami's coordinates; nwk holds
    # 3 × SKU-001 and nothing else is in stock. Both entries become candidates offering the
    # same 3 units, so `nearest` ships 3 + 3 of them for a 5-unit order and the lab stops with
    # "AssertionError: nearest oversold SKU-001 at nwk" (a traceback). A duplicated id should
    # be refused as bad input.
    store = demo_store()
    twin = dict(store["locations"][0], lat=25.76, lng=-80.19)
    store["locations"].append(twin)
    store["stock"] = [{"sku": "SKU-001", "location_id": twin["id"], "on_hand": 3}]
    orders = tmp_path / "orders.json"
    order = _neutral_order(1, "2026-12-01T09:00:00Z")
    order["lines"] = [{"sku": "SKU-001", "quantity": 5, "unit_price": "10.00"}]
    orders.write_text(json.dumps([order]))
    store_file = tmp_path / "store.json"
    store_file.write_text(json.dumps(store))
    result = CliRunner().invoke(
        app, ["simulate", "orders", str(orders), "--store", str(store_file), "--json"]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2
    assert "invalid_input" in result.output
