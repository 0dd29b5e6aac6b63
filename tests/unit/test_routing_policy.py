"""Routing policy documents on hand-worked cases: each rule changes the chosen plan.

Geometry as in test_routing: locations on the equator `km` east of the customer, the card of
tests/builders.py (distance bands to 100, 500, 1000, 3000 km; weight bands to 1000, 3000,
10000 g), 500 g a unit, handling 1.50 a shipment unless a case says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from aoms.domain.errors import InvalidPolicyDocument
from aoms.domain.routing import Candidate, Demand, Policy, RoutingPlan, plan
from aoms.domain.routing_policy import PolicyDocument
from tests.builders import CARD, candidate, east


def demand(**units: int) -> Demand:
    return Demand(units, {sku: 500 for sku in units}, east(0), "USD")


def doc(**fields: Any) -> PolicyDocument:
    return PolicyDocument.from_dict({"policy": "optimal", "currency": "USD", **fields})


def route(
    document: PolicyDocument,
    wanted: Demand,
    candidates: Sequence[Candidate],
    *,
    country: str = "US",
    shipped_today: Mapping[str, int] | None = None,
    sku_tags: Mapping[str, list[str]] | None = None,
) -> tuple[RoutingPlan, list[str]]:
    kept, notes = document.restrict(
        candidates,
        currency=wanted.currency,
        country=country,
        sku_tags=sku_tags or {},
        shipped_today=shipped_today or {},
    )
    return plan(wanted, kept, Policy(document.policy), document.config(CARD, "USD")), notes


def where(p: RoutingPlan) -> dict[str, dict[str, int]]:
    return p.shipments


@pytest.mark.parametrize("policy", ["optimal", "landed_cost"])
def test_a_ship_together_group_forces_one_location(policy: str) -> None:
    # Without the group: A ships X (50 km, 500 g: 4.00 + 1.50) and B ships Y (80 km: 4.00 +
    # 1.50) = 11.00; C alone is 2000 km, 1000 g: 12.00 + 1.50 = 13.50. With X and Y bound
    # together only C can ship both.
    cands = [candidate("a", 50, X=1), candidate("b", 80, Y=1), candidate("c", 2000, X=1, Y=1)]
    free, _ = route(doc(policy=policy), demand(X=1, Y=1), cands)
    assert where(free) == {"a": {"X": 1}, "b": {"Y": 1}}
    assert free.chosen.cost.amount == Decimal("11.00")
    bound = doc(policy=policy, eligibility={"ship_together": [["X", "Y"]]})
    together, _ = route(bound, demand(X=1, Y=1), cands)
    assert where(together) == {"c": {"X": 1, "Y": 1}}
    assert together.chosen.cost.amount == Decimal("13.50")


def test_a_group_binds_only_orders_with_two_of_its_skus() -> None:
    cands = [candidate("a", 50, X=1), candidate("b", 80, Y=1), candidate("c", 2000, X=1, Z=1)]
    bound = doc(eligibility={"ship_together": [["X", "Z"]]})
    # X and Y: the group has one SKU in the order, so A + B (11.00) beats nothing.
    p, _ = route(bound, demand(X=1, Y=1), cands)
    assert where(p) == {"a": {"X": 1}, "b": {"Y": 1}}


def test_a_location_may_not_ship_to_an_excluded_country() -> None:
    # A (50 km: 4.00 + 1.50 = 5.50) beats C (700 km: 8.00 + 1.50 = 9.50) unless A may not
    # ship to the order's country.
    cands = [candidate("a", 50, X=1), candidate("c", 700, X=1)]
    rule = doc(eligibility={"no_ship_to": {"a": ["US"]}})
    to_us, notes = route(rule, demand(X=1), cands, country="US")
    assert where(to_us) == {"c": {"X": 1}}
    assert to_us.chosen.cost.amount == Decimal("9.50")
    assert notes == ["A may not ship to US."]
    to_mx, notes = route(rule, demand(X=1), cands, country="MX")
    assert where(to_mx) == {"a": {"X": 1}}
    assert notes == []


def test_a_location_at_its_daily_capacity_is_no_candidate() -> None:
    cands = [candidate("a", 50, X=1), candidate("c", 700, X=1)]
    capped = doc(locations={"a": {"daily_capacity": 2}})
    below, _ = route(capped, demand(X=1), cands, shipped_today={"a": 1})
    assert where(below) == {"a": {"X": 1}}
    full, notes = route(capped, demand(X=1), cands, shipped_today={"a": 2})
    assert where(full) == {"c": {"X": 1}}
    assert notes == ["A is at its daily capacity (2 shipments today; its capacity is 2)."]


def test_a_split_penalty_flips_a_split_plan_to_one_shipment() -> None:
    # A + B, one unit each (500 g, 50 and 80 km): 5.50 + 5.50 = 11.00 + penalty.
    # C alone (2000 km, 1000 g): 12.00 + 1.50 = 13.50.
    # Penalty 2.00: 13.00 < 13.50, still split. Penalty 3.00: 14.00 > 13.50, one shipment.
    cands = [candidate("a", 50, X=1), candidate("b", 80, X=1), candidate("c", 2000, X=2)]
    low, _ = route(doc(weights={"split_penalty": "2.00"}), demand(X=2), cands)
    assert where(low) == {"a": {"X": 1}, "b": {"X": 1}}
    high, _ = route(doc(weights={"split_penalty": "3.00"}), demand(X=2), cands)
    assert where(high) == {"c": {"X": 2}}


def test_the_value_of_speed_prefers_the_nearer_location() -> None:
    # A: 50 km, handling 5.00: 4.00 + 5.00 = 9.00. C: 700 km, handling 0: 8.00. C wins on cost.
    # At 0.01 per km: A 9.00 + 0.50 = 9.50, C 8.00 + 7.00 = 15.00: A wins.
    cands = [candidate("a", 50, "5.00", X=1), candidate("c", 700, "0.00", X=1)]
    cheap, _ = route(doc(), demand(X=1), cands)
    assert where(cheap) == {"c": {"X": 1}}
    fast, _ = route(doc(weights={"speed_per_km": "0.01"}), demand(X=1), cands)
    assert where(fast) == {"a": {"X": 1}}
    assert fast.chosen.cost.amount == Decimal("9.00")  # the landed cost, not the score


def test_a_handling_multiplier_of_zero_ignores_handling() -> None:
    # A: 4.00 + 10.00 = 14.00, C: 8.00 + 1.50 = 9.50 -> C. Without handling: 4.00 vs 8.00 -> A.
    cands = [candidate("a", 50, "10.00", X=1), candidate("c", 700, X=1)]
    assert where(route(doc(), demand(X=1), cands)[0]) == {"c": {"X": 1}}
    no_handling = doc(weights={"handling": "0"})
    assert where(route(no_handling, demand(X=1), cands)[0]) == {"a": {"X": 1}}


def test_a_handling_override_replaces_the_locations_own() -> None:
    # A's handling becomes 10.00: 4.00 + 10.00 = 14.00 > C's 9.50.
    cands = [candidate("a", 50, X=1), candidate("c", 700, X=1)]
    p, _ = route(doc(locations={"a": {"handling": "10.00"}}), demand(X=1), cands)
    assert where(p) == {"c": {"X": 1}}


def test_skus_and_tagged_products_ship_only_from_listed_locations() -> None:
    cands = [candidate("a", 50, X=1, Y=1), candidate("c", 700, X=1, Y=1)]
    by_sku = doc(eligibility={"only_from": [{"skus": ["X"], "locations": ["c"]}]})
    p, notes = route(by_sku, demand(X=1), cands)
    assert where(p) == {"c": {"X": 1}}
    assert notes == ["X may not ship from A."]
    by_tag = doc(eligibility={"only_from": [{"tags": ["hazmat"], "locations": ["c"]}]})
    tagged, _ = route(by_tag, demand(Y=1), cands, sku_tags={"Y": ["hazmat"]})
    assert where(tagged) == {"c": {"Y": 1}}
    untagged, _ = route(by_tag, demand(Y=1), cands, sku_tags={"Y": ["fragile"]})
    assert where(untagged) == {"a": {"Y": 1}}


def test_max_shipments_of_one_backorders_what_one_location_cannot_ship() -> None:
    cands = [candidate("a", 50, X=1), candidate("b", 80, X=1)]
    p, _ = route(doc(max_shipments=1), demand(X=2), cands)
    assert where(p) == {"a": {"X": 1}}
    assert dict(p.backordered) == {"X": 1}


def test_money_terms_do_not_apply_to_an_order_in_another_currency() -> None:
    document = doc(weights={"split_penalty": "3.00"}, locations={"a": {"handling": "9.00"}})
    kept, notes = document.restrict(
        [candidate("a", 50, X=1)], currency="EUR", country="US", sku_tags={}, shipped_today={}
    )
    assert kept[0].handling.amount == Decimal("1.50")
    assert "do not apply to this EUR order" in notes[0]
    assert document.config(CARD, "EUR").split_penalty == 0


def test_a_document_survives_its_own_json() -> None:
    document = doc(
        weights={"shipping": "1.2", "split_penalty": "2.50", "speed_per_km": "0.001"},
        locations={"a": {"handling": "2.00", "daily_capacity": 40}},
        eligibility={
            "only_from": [{"skus": ["X"], "tags": ["cold"], "locations": ["a", "b"]}],
            "no_ship_to": {"b": ["CA", "MX"]},
            "ship_together": [["X", "Y"]],
        },
        max_shipments=2,
    )
    assert PolicyDocument.from_dict(document.as_dict()) == document


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"max_shipments": 0}, "max_shipments"),
        ({"weights": {"split_penalty": "1.005"}}, "weights.split_penalty"),
        ({"weights": {"shipping": "-1"}}, "weights.shipping"),
        ({"weights": {"speed_per_km": "fast"}}, "weights.speed_per_km"),
        ({"weights": {"handling": 1.5}}, "weights.handling"),
        ({"locations": {"a": {"daily_capacity": -1}}}, "locations.a.daily_capacity"),
        ({"eligibility": {"only_from": [{"locations": ["a"]}]}}, "eligibility.only_from.0"),
        (
            {"eligibility": {"only_from": [{"skus": ["X"], "locations": []}]}},
            "eligibility.only_from.0.locations",
        ),
        ({"eligibility": {"no_ship_to": {"a": ["usa"]}}}, "eligibility.no_ship_to.a"),
        ({"eligibility": {"ship_together": [["X"]]}}, "eligibility.ship_together.0"),
        (
            {"eligibility": {"ship_together": [["X", "Y"], ["Y", "Z"]]}},
            "eligibility.ship_together.1",
        ),
        ({"currency": "dollars"}, "currency"),
    ],
)
def test_bad_documents_are_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPolicyDocument) as caught:
        doc(**fields)
    assert (caught.value.code, caught.value.field) == ("invalid_policy_document", field)


def test_a_document_without_a_policy_is_refused() -> None:
    with pytest.raises(InvalidPolicyDocument) as caught:
        PolicyDocument.from_dict({"currency": "USD"})
    assert caught.value.field == "policy"
