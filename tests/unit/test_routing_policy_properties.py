"""Generated networks and documents: whatever the policy chooses, no rule is broken."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aoms.domain.policies import check_plan
from aoms.domain.routing import Demand, Policy, plan
from aoms.domain.routing_policy import PolicyDocument
from tests.builders import CARD, candidate, east

LOCATIONS = ["a", "b", "c", "d"]
SKUS = ["X", "Y", "Z"]


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    km = {loc: draw(st.integers(10, 2500)) for loc in LOCATIONS}
    stock = {
        loc: {sku: draw(st.integers(0, 3)) for sku in SKUS if draw(st.booleans())}
        for loc in LOCATIONS
    }
    # Orders with both SKUs of the ship-together group half of the time.
    skus = draw(st.sampled_from([("X", "Y"), ("X", "Y", "Z"), ("X",), ("Z",), ("Y", "Z")]))
    units = {sku: draw(st.integers(1, 3)) for sku in skus}
    subsets = st.sets(st.sampled_from(LOCATIONS), min_size=1)
    document = {
        "policy": draw(st.sampled_from(["optimal", "landed_cost", "shopify_default"])),
        "currency": "USD",
        "weights": {"split_penalty": draw(st.sampled_from(["0", "1.00", "5.00"]))},
        "locations": {
            loc: {"daily_capacity": draw(st.integers(0, 2))}
            for loc in draw(st.sets(st.sampled_from(LOCATIONS)))
        },
        "eligibility": {
            "only_from": [
                {"skus": [sku], "locations": sorted(draw(subsets))}
                for sku in draw(st.sets(st.sampled_from(SKUS)))
            ],
            "no_ship_to": {loc: ["US"] for loc in draw(st.sets(st.sampled_from(LOCATIONS)))},
            "ship_together": [["X", "Y"]] if draw(st.booleans()) else [],
        },
        "max_shipments": draw(st.integers(1, 3)),
    }
    shipped = {loc: draw(st.integers(0, 2)) for loc in LOCATIONS}
    return {"km": km, "stock": stock, "units": units, "doc": document, "shipped": shipped}


@settings(max_examples=300, deadline=None)
@given(cases())
def test_no_plan_breaks_a_rule_of_the_document(case: dict[str, Any]) -> None:
    raw = case["doc"]
    document = PolicyDocument.from_dict(raw)
    cands = [candidate(loc, case["km"][loc], **case["stock"][loc]) for loc in LOCATIONS]
    demand = Demand(case["units"], {s: 500 for s in case["units"]}, east(0), "USD")
    kept, _ = document.restrict(
        cands, currency="USD", country="US", sku_tags={}, shipped_today=case["shipped"]
    )
    config = document.config(CARD, "USD")
    p = plan(demand, kept, Policy(document.policy), config)
    check_plan(p, demand, cands, config)  # never more than there is, nor more shipments

    barred_country = set(raw["eligibility"]["no_ship_to"])
    full = {
        loc for loc, o in raw["locations"].items() if case["shipped"][loc] >= o["daily_capacity"]
    }
    allowed: dict[str, set[str]] = {}
    for rule in raw["eligibility"]["only_from"]:
        allowed[rule["skus"][0]] = set(rule["locations"])
    for s in p.chosen.shipments:
        assert s.location_id not in barred_country
        assert s.location_id not in full
        for sku in s.items:
            assert s.location_id in allowed.get(sku, set(LOCATIONS))
    if raw["eligibility"]["ship_together"] and {"X", "Y"} <= set(case["units"]):
        sources = {s.location_id for s in p.chosen.shipments if {"X", "Y"} & s.items.keys()}
        assert len(sources) <= 1
