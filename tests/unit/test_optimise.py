"""The exact optimiser: hand-worked cases through `plan`, and the optimum checked against a
brute-force enumeration of every plan (an independent method) on generated small orders."""

import itertools
import math
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from aoms.domain.optimise import Problem, Site, Weights, _milp, objective, solve
from aoms.domain.routing import Policy, RoutingConfig, plan
from tests.builders import CARD, candidate
from tests.unit.test_routing import chosen, demand

CONFIG = RoutingConfig(rate_card=CARD)


def test_an_even_split_keeps_both_parcels_in_the_light_band() -> None:
    # X×4 at 500 g; A (50 km) has 3, B (80 km) has 2; both within 100 km.
    # Nearest-first fill (landed_cost): A 3 (1500 g) 6.00 + 1.50, B 1 (500 g) 4.00 + 1.50 = 13.00.
    # Exact: A 2 (1000 g) 4.00 + 1.50, B 2 (1000 g) 4.00 + 1.50 = 11.00.
    cands = [candidate("a", 50, X=3), candidate("b", 80, X=2)]
    v1 = plan(demand(X=4), cands, Policy.LANDED_COST, CONFIG)
    best = plan(demand(X=4), cands, Policy.OPTIMAL, CONFIG)
    assert v1.chosen.cost.amount == Decimal("13.00")
    assert chosen(best) == {"a": {"X": 2}, "b": {"X": 2}}
    assert best.chosen.cost.amount == Decimal("11.00")
    assert best.proof is not None
    assert best.proof["optimal"] is True
    assert best.proof["bound_minor"] == 1100


def test_optimal_names_the_runner_up_and_the_term_that_decided() -> None:
    # C alone (700 km, 2500 g): 11.00 + 1.50 = 12.50. Without C the best is A 2 + B 3:
    # 4.00 + 6.00 shipping, 3.00 handling = 13.00. C pays 1.00 more shipping and 1.50 less
    # handling, so handling decided, by 1.50.
    cands = [candidate("a", 50, X=2), candidate("b", 80, X=3), candidate("c", 700, X=5)]
    p = plan(demand(X=5), cands, Policy.OPTIMAL, CONFIG)
    assert chosen(p) == {"c": {"X": 5}}
    assert p.chosen.cost.amount == Decimal("12.50")
    assert p.runners_up[0].cost.amount == Decimal("13.00")
    assert p.proof is not None
    assert p.proof["decided_by"] == "handling"
    assert p.proof["runner_up_minor"] == 1300
    assert "wins on handling (1.50 USD less)" in p.explanation
    assert "Proven optimal: no plan costs less than 12.50 USD" in p.explanation


def test_units_come_before_cost_and_shortfall_is_backordered() -> None:
    # 6 wanted, 2 + 3 available: ship all 5 (two shipments) rather than 3 from the cheaper one.
    cands = [candidate("a", 50, X=2), candidate("b", 80, X=3)]
    p = plan(demand(X=6), cands, Policy.OPTIMAL, CONFIG)
    assert chosen(p) == {"a": {"X": 2}, "b": {"X": 3}}
    assert dict(p.backordered) == {"X": 1}


def test_nearest_takes_the_nearest_whole_location_else_fills_nearest_first() -> None:
    cands = [candidate("a", 50, X=2), candidate("b", 80, X=3), candidate("c", 700, X=5)]
    assert chosen(plan(demand(X=5), cands, Policy.NEAREST, CONFIG)) == {"c": {"X": 5}}
    assert chosen(plan(demand(X=3), cands, Policy.NEAREST, CONFIG)) == {"b": {"X": 3}}
    assert chosen(plan(demand(X=7), cands, Policy.NEAREST, CONFIG)) == {
        "a": {"X": 2},
        "b": {"X": 3},
        "c": {"X": 2},
    }


# -- the optimum against every plan ------------------------------------------------------------

UPPERS = (500, 1500, 4000)


def brute_force(p: Problem) -> float:
    """Every assignment of every unit to a site or to the backorder; the least cost."""
    skus = sorted(p.units)
    per_sku = []
    for k in skus:
        caps = [min(s.available.get(k, 0), p.units[k]) for s in p.sites]
        per_sku.append(
            [v for v in itertools.product(*(range(c + 1) for c in caps)) if sum(v) <= p.units[k]]
        )
    group = {k: g for g, members in enumerate(p.ship_together) for k in members}
    best = math.inf
    for combo in itertools.product(*per_sku):
        used = [i for i in range(len(p.sites)) if any(v[i] for v in combo)]
        if len(used) > p.max_shipments:
            continue
        if any(
            len({i for k, v in zip(skus, combo, strict=True) if group.get(k) == g for i in used
                 if v[i]}) > 1
            for g in range(len(p.ship_together))
        ):  # fmt: skip
            continue
        cost = 0.0
        for i in used:
            s = p.sites[i]
            grams = sum(p.grams[k] * v[i] for k, v in zip(skus, combo, strict=True))
            band = next((b for b, u in enumerate(s.band_upper_g) if grams <= u), -1)
            cost += s.band_price[band] + s.handling + p.weights.per_km * s.km
            cost += sum(s.opportunity.get(k, 0.0) * v[i] for k, v in zip(skus, combo, strict=True))
        cost += p.weights.split_penalty * max(0, len(used) - 1)
        short = sum(p.units[k] - sum(v) for k, v in zip(skus, combo, strict=True))
        cost += p.weights.backorder_penalty * short
        best = min(best, cost)
    return best


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    skus = [f"s{i}" for i in range(draw(st.integers(1, 3)))]
    units = {k: draw(st.integers(1, 3)) for k in skus}
    grams = {k: draw(st.sampled_from([100, 400, 700, 1200])) for k in skus}
    sites = []
    for i in range(draw(st.integers(1, 4))):
        available = {k: n for k in skus if (n := draw(st.integers(0, 3)))}
        prices = draw(st.lists(st.integers(100, 900), min_size=3, max_size=3))  # any shape
        opportunity = {k: float(draw(st.integers(0, 300))) for k in available}
        sites.append(
            Site(
                f"L{i}",
                float(draw(st.integers(0, 3000))),
                draw(st.integers(0, 300)),
                available,
                UPPERS,
                prices,
                opportunity,
            )
        )
    weights = Weights(
        split_penalty=draw(st.sampled_from([0, 250])),
        per_km=draw(st.sampled_from([0.0, 0.1])),
        backorder_penalty=draw(st.sampled_from([600, 5000])),
    )
    together = [frozenset(skus[:2])] if len(skus) > 1 and draw(st.booleans()) else []
    return Problem(units, grams, sites, weights, draw(st.integers(1, 3)), together)


@settings(max_examples=300, deadline=None)
@given(problems())
def test_the_search_finds_the_least_cost_of_every_plan(p: Problem) -> None:
    solution = solve(p)
    assert math.isclose(solution.objective, brute_force(p), abs_tol=1e-6)
    assert solution.bound <= solution.objective + 1e-6


@settings(max_examples=60, deadline=None)
@given(problems())
def test_the_milp_agrees_with_the_search(p: Problem) -> None:
    units = dict(p.units)
    sites = [s for s in p.sites if any(s.available.get(k, 0) for k in units)]
    if not sites:
        return
    exact = _milp(p, units, sites)
    assert math.isclose(exact.objective, brute_force(p), abs_tol=1e-6)
    assert exact.bound <= exact.objective + 1e-6


@settings(max_examples=150, deadline=None)
@given(problems(), st.integers(1, 6))
def test_a_search_cut_short_still_gives_a_true_plan_and_a_valid_bound(
    p: Problem, nodes: int
) -> None:
    best = brute_force(p)
    cut = solve(p, node_limit=nodes)
    # The plan it returns is a real plan, costed honestly; its bound is below every plan.
    assert math.isclose(cut.objective, objective(p, cut.taken), abs_tol=1e-6)
    assert cut.objective >= best - 1e-6
    assert cut.bound <= best + 1e-6
    if cut.method == "search":  # finished within the budget: then it is the optimum
        assert math.isclose(cut.objective, best, abs_tol=1e-6)
