"""The policy lab: scarcity prices worked by hand, the clairvoyant bound below every policy, and
`aoms simulate` end to end on a small synthetic scenario."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aoms.demo.scenario import synthetic
from aoms.domain.money import Money
from aoms.domain.routing import Demand
from aoms.domain.service_levels import ServiceRates
from aoms.entrypoints.cli import app
from aoms.services.policy_lab import (
    POLICIES,
    LabLocation,
    LabOrder,
    Scenario,
    _Forecast,
    backorder_cost,
    clairvoyant,
    run_policy,
)
from tests.builders import CARD, east

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def two_sites(stock: dict[tuple[str, str], int], orders: list[LabOrder]) -> Scenario:
    locations = [
        LabLocation("a", "A", east(0), Money.of("1.50", "USD")),
        LabLocation("b", "B", east(700), Money.of("1.50", "USD")),
    ]
    return Scenario("two", "USD", CARD, locations, stock, orders)


def order(n: int, at: datetime, km: float, **units: int) -> LabOrder:
    return LabOrder(f"o{n}", at, Demand(units, {k: 500 for k in units}, east(km), "USD"))


def test_a_scarce_unit_is_priced_at_what_its_absence_would_cost() -> None:
    # Seen so far: one order of one X next to A, one day into a three-day horizon; so the
    # forecast expects 1 × (2 days left / 1 day gone) = 2 more such orders. A holds 1, B holds 5.
    # The joint LP serves one from A (0 km, 500 g: 4.00 + 1.50 = 5.50) and one from B (700 km:
    # 8.00 + 1.50 = 9.50). One more unit at A would save 9.50 - 5.50 = 4.00: that is A's
    # opportunity cost. B's stock is slack, so it has none.
    orders = [order(1, T0, 0, X=1), order(2, T0 + timedelta(days=3), 0, X=1)]
    scenario = two_sites({("X", "a"): 1, ("X", "b"): 5}, orders)
    forecast = _Forecast(scenario)
    forecast.observe(orders[0])
    prices = forecast.opportunity({"a": {"X": 1}, "b": {"X": 5}}, T0 + timedelta(days=1))
    assert prices == pytest.approx({("a", "X"): 400.0})


def test_the_scarcity_policy_keeps_the_last_unit_for_the_customer_next_to_it() -> None:
    # Card bands: up to 100 km, 100-500 km, 500-1000 km; up to 1000 g: 4.00, 6.00, 8.00;
    # handling 1.50. A holds 2 X, B holds 5; the horizon is three days.
    # 1. A customer at A wants one X: A ships, 4.00 + 1.50 = 5.50; A has 1 left.
    # 2. A day later, a customer 250 km from A and 450 km from B wants one X: both are in the
    #    100-500 km band, 6.00 + 1.50 = 7.50 either way. The myopic optimum breaks the tie by
    #    distance and takes A's last unit. The scarcity policy has seen one order next to A in
    #    one day, so expects two more in the two days left; A can serve one, B the other, so
    #    A's unit is worth 9.50 - 5.50 = 4.00 and it ships from B.
    # 3. A customer at A wants one X: myopic must ship from B (700 km: 8.00 + 1.50 = 9.50);
    #    scarcity still has A's unit: 5.50.
    orders = [
        order(1, T0, 0, X=1),
        order(2, T0 + timedelta(days=1), 250, X=1),
        order(3, T0 + timedelta(days=3), 0, X=1),
    ]
    scenario = two_sites({("X", "a"): 2, ("X", "b"): 5}, orders)
    myopic = run_policy(scenario, "optimal", refresh=1)
    aware = run_policy(scenario, "scarcity", refresh=1)
    assert myopic.cost_minor == 550 + 750 + 950
    assert aware.cost_minor == 550 + 750 + 550


def test_each_order_is_routed_by_the_services_its_shipping_method_allows() -> None:
    """The builders' prices as `ground` (1, 3, 5, 6 days by distance band) and `express` at
    twice the price (1, 1, 1, 2 days); Express must arrive in 1 day, anything else in 5. A holds
    1 X, B (700 km east of A) 5; handling 1.50; 500 g each.
    1. Standard, 250 km from A (450 km from B): ground 6.00 + 1.50 = 7.50 either way; the tie
       goes to the nearer, A, which empties A.
    2. Express, at A's door: only B is left, where ground takes 5 days; express 16.00 + 1.50 =
       17.50. Myopic: 25.00.
    Knowing both: the first from B (7.50) and the second from A by ground, 1 day (4.00 + 1.50 =
    5.50): 13.00. A unit not shipped counts express's dearest, 48.00 + 1.50."""
    prices = CARD.prices
    card = replace(
        CARD, service="ground", transit_days=(1, 3, 5, 6),
        services=(ServiceRates("express", (1, 1, 1, 2),
                               tuple(tuple(2 * p for p in row) for row in prices)),),
    )  # fmt: skip
    orders = [
        replace(order(1, T0, 250, X=1), shipping_method="Standard"),
        replace(order(2, T0 + timedelta(hours=1), 0, X=1), shipping_method="EXPRESS"),
    ]
    scenario = replace(
        two_sites({("X", "a"): 1, ("X", "b"): 5}, orders),
        card=card, delivery_days={"express": 1, "*": 5},
    )  # fmt: skip
    assert run_policy(scenario, "optimal").cost_minor == 750 + 1750
    assert backorder_cost(scenario) == 4800 + 150
    assert clairvoyant(scenario)["total_cost"] == "13.00"
    # Without the days, the second goes from B by ground: 7.50 + 9.50.
    assert run_policy(replace(scenario, delivery_days={}), "optimal").cost_minor == 750 + 950


def test_the_clairvoyant_bound_is_below_every_policy_on_the_same_orders() -> None:
    scenario = synthetic(60, seed=3, skus=40, cover=0.9, history_days=15)
    penalty = backorder_cost(scenario)
    bound = Decimal(str(clairvoyant(scenario)["total_cost"]))
    for p in POLICIES:
        result = run_policy(scenario, p)  # raises if a policy oversells
        assert result.units_shipped + result.units_backordered == sum(
            sum(o.demand.units.values()) for o in scenario.orders
        )
        assert Decimal(result.total_minor(penalty)) / 100 >= bound


def test_a_baseline_that_costs_less_than_every_aoms_policy_is_named_beside_the_best() -> None:
    """A at the customer (handling 3.00) and B 60 km east (handling 1.50) hold one X each; up
    to 100 km a 500 g parcel is 4.00, to 500 km 6.00. First a customer at 0 km: from A 7.00,
    from B 5.50, so the per-order optimum takes B's X, and the second customer, 140 km east
    (80 km from B), must take A's: 6.00 + 3.00 = 9.00; 14.50 in all. `nearest` takes A for the
    first (7.00) and B for the second (4.00 + 1.50 = 5.50): 12.50, the clairvoyant bound."""
    from aoms.entrypoints.simulate import best_words, simulate

    locations = [
        LabLocation("a", "A", east(0), Money.of("3.00", "USD")),
        LabLocation("b", "B", east(60), Money.of("1.50", "USD")),
    ]
    orders = [order(1, T0, 0, X=1), order(2, T0 + timedelta(hours=1), 140, X=1)]
    scenario = Scenario("two", "USD", CARD, locations, {("X", "a"): 1, ("X", "b"): 1}, orders)
    report = simulate(scenario, ["nearest", "optimal"], bound=True)
    totals = {r["policy"]: r["total_cost"] for r in report["policies"]}
    assert totals == {"nearest": "12.50", "optimal": "14.50"}
    assert report["clairvoyant"]["total_cost"] == "12.50"
    assert report["cheaper_baseline"] == {"policy": "nearest", "total_cost": "12.50"}
    words = best_words(report)
    assert words is not None and words.startswith("best aoms policy: optimal, closing 0.0%")
    assert "the baseline nearest cost less on these orders (12.50 against 14.50)" in words


def test_simulate_synthetic_prints_json_and_writes_the_html_report(tmp_path: Path) -> None:
    out = tmp_path / "lab.html"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "synthetic",
            "--orders",
            "40",
            "--history-days",
            "0",
            "--json",
            "--html",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert [r["policy"] for r in report["policies"]] == list(POLICIES)
    assert report["orders"] == 40
    assert "gap_captured_by_best" in report
    page = out.read_text()
    assert "<table>" in page and "clairvoyant bound" in page and "<svg" in page


def test_simulate_refuses_an_unknown_policy() -> None:
    result = CliRunner().invoke(app, ["simulate", "synthetic", "--policies", "cheapest"])
    assert result.exit_code == 2


def test_the_batch_policy_re_plans_a_wave_so_both_customers_ship_from_their_nearest() -> None:
    # A holds one X, B five; both orders fall in one two-hour wave.
    # 1. A customer 250 km from A (450 km from B) wants one X: 6.00 + 1.50 = 7.50 from either;
    #    on arrival the tie goes to the nearer, A, which empties A.
    # 2. Ten minutes later a customer at A wants one X: only B is left, 8.00 + 1.50 = 9.50.
    # The per-order optimum pays 7.50 + 9.50 = 17.00. Before the wave is released, the batch
    # policy re-plans both together: the first from B (7.50), the second from A (5.50) = 13.00.
    orders = [order(1, T0, 250, X=1), order(2, T0 + timedelta(minutes=10), 0, X=1)]
    scenario = two_sites({("X", "a"): 1, ("X", "b"): 5}, orders)
    myopic = run_policy(scenario, "optimal")
    batch = run_policy(scenario, "batch", wave_minutes=120)
    assert myopic.cost_minor == 750 + 950
    assert batch.cost_minor == 750 + 550
    assert batch.units_shipped == 2 and batch.units_backordered == 0
    # Orders in different waves are not re-planned together: the same as the optimum.
    apart = run_policy(scenario, "batch", wave_minutes=5)
    assert apart.cost_minor == 750 + 950


def neutral(n: int, placed: str, lat: float, lng: float, **units: int) -> dict[str, object]:
    return {
        "shop": "demo-outdoor.myshopify.com",
        "external_id": f"N{n}",
        "currency": "USD",
        "placed_at": placed,
        "shipping_address": {"country_code": "US", "latitude": lat, "longitude": lng},
        "lines": [{"sku": k, "quantity": q, "unit_price": "10.00"} for k, q in units.items()],
    }


def test_simulate_orders_reads_the_neutral_format_against_the_demo_store(tmp_path: Path) -> None:
    # The demo store's card: 0-300 km, 500-1000 g = 7.10. SKU-001 weighs 780 g (from the store's
    # products, as the lines give no grams). One unit to the Newark DC's door ships from there:
    # 7.10 + 2.10 handling = 9.20; one to the Dallas DC's: 7.10 + 1.60 = 8.70. The first order
    # is before --history-until: learned from, not routed.
    lines = [
        neutral(0, "2026-11-30T12:00:00Z", 32.7767, -96.797, **{"SKU-001": 1}),
        neutral(1, "2026-12-01T09:00:00Z", 40.7357, -74.1724, **{"SKU-001": 1}),
        neutral(2, "2026-12-01T10:00:00Z", 32.7767, -96.797, **{"SKU-001": 1}),
    ]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    result = CliRunner().invoke(
        app,
        ["simulate", "orders", str(path), "--history-until", "2026-12-01T00:00:00",
         "--policies", "nearest,optimal", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["orders"] == 2
    by = {r["policy"]: r for r in report["policies"]}
    assert Decimal(by["optimal"]["landed_cost"]) == Decimal("17.90")
    assert by["optimal"]["split_rate"] == 0 and by["nearest"]["landed_cost"] == "17.90"


def test_simulate_orders_routes_each_order_by_the_services_its_method_allows(
    tmp_path: Path,
) -> None:
    """A store file whose card prices ground (4.00 within 100 km, 2 days) and express (9.00,
    1 day), and gives Express 1 day: the order by Express to a door 50 km from the one
    location ships by express, 9.00 + 1.50; the one by Standard (no limit) by ground, 4.00 +
    1.50. Landed: 16.00."""
    store = {
        "shop": "two-services", "currency": "USD",
        "locations": [{"id": "a", "name": "A", "lat": 0.0, "lng": 0.0, "country_code": "US",
                       "handling_cost": "1.50"}],
        "products": [{"sku": "X", "grams": 500}],
        "stock": [{"sku": "X", "location_id": "a", "on_hand": 5}],
        "rate_card": {"currency": "USD", "distance_km": [100, 1000], "weight_g": [1000, 10000],
                      "prices": [["4.00", "6.00"], ["8.00", "12.00"]], "service": "ground",
                      "transit_days": [2, 5],
                      "services": [{"name": "express", "transit_days": [1, 2],
                                    "prices": [["9.00", "12.00"], ["15.00", "20.00"]]}]},
        "delivery_days": {"Express": 1},
    }  # fmt: skip
    lines = [
        {**neutral(1, "2026-12-01T09:00:00Z", 0.0, 0.45, X=1), "shipping_method": "Express"},
        {**neutral(2, "2026-12-01T10:00:00Z", 0.0, 0.45, X=1), "shipping_method": "Standard"},
    ]
    (tmp_path / "store.json").write_text(json.dumps(store))
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    result = CliRunner().invoke(
        app,
        ["simulate", "orders", str(path), "--store", str(tmp_path / "store.json"),
         "--policies", "optimal", "--no-bound", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert Decimal(report["policies"][0]["landed_cost"]) == Decimal("16.00")
    store["delivery_days"] = {"Express": 61}
    (tmp_path / "store.json").write_text(json.dumps(store))
    refused = CliRunner().invoke(
        app, ["simulate", "orders", str(path), "--store", str(tmp_path / "store.json")]
    )
    assert refused.exit_code != 0 and "0 to 60 days" in refused.output


def test_simulate_orders_names_the_first_bad_order(tmp_path: Path) -> None:
    bad = neutral(2, "2026-12-01T10:00:00Z", 32.7767, -96.797, **{"SKU-001": 0})
    path = tmp_path / "orders.json"
    path.write_text(json.dumps([neutral(1, "2026-12-01T09:00:00Z", 40.7, -74.1, X=1), bad]))
    result = CliRunner().invoke(app, ["simulate", "orders", str(path)])
    assert result.exit_code == 2
    assert "order 2: lines.0.quantity" in " ".join(result.output.split())


def test_persistence_is_how_far_older_demand_predicts_newer_demand() -> None:
    # Older half of the window: X 2, Y 1; newer half: X 1, Z 3. The slope through the origin of
    # newer on older units per SKU: (2·1 + 1·0) / (2² + 1²) = 2 / 5 = 0.4 (Z was never seen
    # before, so it predicts nothing; Y did not recur).
    window = [
        order(1, T0, 0, X=2),
        order(2, T0 + timedelta(hours=1), 0, Y=1),
        order(3, T0 + timedelta(hours=2), 0, X=1),
        order(4, T0 + timedelta(hours=3), 0, Z=3),
    ]
    forecast = _Forecast(two_sites({}, window), min_evidence=4)
    for o in window:
        forecast.observe(o)
    assert forecast.persistence() == pytest.approx(0.4)
    # With less than the evidence asked for, past demand is taken at face value.
    assert _Forecast(two_sites({}, window), min_evidence=5).persistence() == 1.0


def test_simulate_orders_says_which_skus_no_location_stocks(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    lines = [neutral(1, "2026-12-01T09:00:00Z", 40.7357, -74.1724, **{"SKU-001": 1, "NOPE-9": 2})]
    path.write_text(json.dumps(lines))
    result = CliRunner().invoke(
        app, ["simulate", "orders", str(path), "--policies", "optimal", "--no-bound"]
    )
    assert result.exit_code == 0, result.output
    assert "1 SKU(s) ordered have no stock anywhere" in " ".join(result.output.split())
    assert "NOPE-9" in result.output
