"""Routing v1 on hand-worked cases. Locations sit on the equator `km` east of the customer,
the card (tests/builders.py) prices by distance band × weight band, each unit weighs 500 g and
handling is 1.50 per shipment."""

from decimal import Decimal

from aoms.domain.geo import haversine_km
from aoms.domain.money import Money
from aoms.domain.routing import Candidate, Demand, Policy, RoutingConfig, plan
from tests.builders import CARD, candidate, east

CONFIG = RoutingConfig(rate_card=CARD)


def demand(**units: int) -> Demand:
    return Demand(units, {sku: 500 for sku in units}, east(0), "USD")


def chosen(p):  # type: ignore[no-untyped-def]
    return {s.location_id: dict(s.items) for s in p.chosen.shipments}


def test_the_test_geometry_lands_in_the_intended_bands() -> None:
    assert 49.9 < haversine_km(east(50), east(0)) < 50.1
    assert 699 < haversine_km(east(700), east(0)) < 701


def test_sku_x5_a2_b3_c5_ships_whole_from_c_when_that_is_cheapest() -> None:
    # C alone: 700 km (band 500-1000) and 2500 g (band 1000-3000) = 11.00 + 1.50 = 12.50.
    # A + B: A 2 units (1000 g, 50 km) = 4.00 + 1.50; B 3 units (1500 g, 80 km) = 6.00 + 1.50
    #        = 13.00. B + C = 7.50 + 9.50 = 17.00; A + C = 5.50 + 12.50 = 18.00.
    p = plan(
        demand(X=5),
        [candidate("a", 50, X=2), candidate("b", 80, X=3), candidate("c", 700, X=5)],
        Policy.LANDED_COST,
        CONFIG,
    )
    assert chosen(p) == {"c": {"X": 5}}
    assert p.chosen.cost.amount == Decimal("12.50")
    assert p.runners_up[0].cost.amount == Decimal("13.00")
    assert not p.backordered


def test_sku_x5_splits_a_and_b_when_c_is_too_far_and_never_uses_three() -> None:
    # C at 2000 km: 16.00 + 1.50 = 17.50 > A + B = 13.00, so the split wins by the numbers.
    p = plan(
        demand(X=5),
        [candidate("a", 50, X=2), candidate("b", 80, X=3), candidate("c", 2000, X=5)],
        Policy.LANDED_COST,
        CONFIG,
    )
    assert chosen(p) == {"a": {"X": 2}, "b": {"X": 3}}
    assert p.chosen.cost.amount == Decimal("13.00")
    assert all(len(o.shipments) <= 2 for o in (p.chosen, *p.runners_up))


def test_one_location_with_everything_beats_a_closer_partial_one() -> None:
    # Order X×2 + Y×2 (2000 g). FAR (400 km) has all: 8.00 + 1.50 = 9.50.
    # NEAR (30 km) has only X: NEAR X×2 (1000 g) 4.00 + 1.50, FAR Y×2 (1000 g) 6.00 + 1.50
    # = 13.00. One shipment from FAR wins.
    p = plan(
        demand(X=2, Y=2),
        [candidate("near", 30, X=5), candidate("far", 400, X=5, Y=5)],
        Policy.LANDED_COST,
        CONFIG,
    )
    assert chosen(p) == {"far": {"X": 2, "Y": 2}}
    assert p.chosen.cost.amount == Decimal("9.50")


def test_a_split_wins_when_it_is_cheaper_by_the_numbers() -> None:
    # FAR now 2500 km: whole order 2000 g = 16.00 + 1.50 = 17.50. NEAR X×2 = 5.50 and
    # FAR Y×2 (1000 g, 2500 km) = 12.00 + 1.50 = 13.50 -> 19.00: still whole. With handling
    # 0.10 and Y at a second near location the split becomes cheaper: 4.10 + 4.10 = 8.20.
    p = plan(
        demand(X=2, Y=2),
        [
            candidate("near", 30, "0.10", X=5),
            candidate("near2", 60, "0.10", Y=5),
            candidate("far", 2500, "0.10", X=5, Y=5),
        ],
        Policy.LANDED_COST,
        CONFIG,
    )
    assert chosen(p) == {"near": {"X": 2}, "near2": {"Y": 2}}
    assert p.chosen.cost.amount == Decimal("8.20")
    assert p.runners_up[0].cost.amount == Decimal("16.10")  # FAR alone: 16.00 + 0.10


def test_shopify_default_takes_fewest_locations_then_closest_whatever_the_cost() -> None:
    # Same network: Shopify's default ships whole from FAR (1 location) although the split
    # would cost 8.20; among single locations it takes the closest.
    cands = [
        candidate("near", 30, "0.10", X=5),
        candidate("near2", 60, "0.10", Y=5),
        candidate("far", 2500, "0.10", X=5, Y=5),
        candidate("farther", 2900, "0.10", X=5, Y=5),
    ]
    p = plan(demand(X=2, Y=2), cands, Policy.SHOPIFY_DEFAULT, CONFIG)
    assert chosen(p) == {"far": {"X": 2, "Y": 2}}
    assert "fewest locations" in p.explanation or "farther" in p.explanation


def test_short_stock_ships_what_there_is_and_backorders_the_rest() -> None:
    p = plan(
        demand(X=4), [candidate("a", 50, X=1), candidate("b", 80, X=2)], Policy.LANDED_COST, CONFIG
    )
    assert chosen(p) == {"a": {"X": 1}, "b": {"X": 2}}
    assert p.backordered == {"X": 1}
    assert "backordered: 1 × X" in p.explanation


def test_nothing_in_stock_backorders_everything() -> None:
    p = plan(demand(X=1), [candidate("a", 50, Y=3)], Policy.LANDED_COST, CONFIG)
    assert p.chosen.shipments == ()
    assert p.backordered == {"X": 1}


def test_the_explanation_names_the_winner_and_why_the_runner_up_lost() -> None:
    p = plan(
        demand(X=5),
        [candidate("a", 50, X=2), candidate("b", 80, X=3), candidate("c", 700, X=5)],
        Policy.LANDED_COST,
        CONFIG,
    )
    assert p.explanation.startswith("Chosen: C (1 shipment, 12.50 USD)")
    assert "Runner-up: A + B (2 shipments, 13.00 USD); not chosen because it costs 0.50 more" in (
        p.explanation
    )


def test_a_location_whose_handling_is_in_another_currency_is_left_out_and_said() -> None:
    yen = Candidate("jp", "JP", east(10), Money.of("500", "JPY"), {"X": 5})
    p = plan(demand(X=1), [yen, candidate("b", 80, X=5)], Policy.LANDED_COST, CONFIG)
    assert chosen(p) == {"b": {"X": 1}}
    assert "1 location(s) with stock were left out: their handling cost is not in USD" in (
        p.explanation
    )
