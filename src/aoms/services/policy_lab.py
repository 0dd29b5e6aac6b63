"""The policy lab: replay one order history against several routing policies on the same starting
stock, and compare them with the clairvoyant bound.

Policies are compared on total cost = landed cost + a backorder cost per unit not shipped (what
shipping it alone later costs at the card's dearest price), so that a policy cannot look cheap by
shipping less.

Each policy sees the orders one at a time, in time order, against the stock that earlier orders
left, and ships what it chooses at once (no replenishment). The clairvoyant knows every order in
advance and solves them together as one LP with the stock constraints; its optimum is a lower
bound on what any policy could have paid for the same units shipped.

The scarcity-aware policy is the exact per-order optimum plus an opportunity cost per unit taken
from a location, refreshed every `refresh` orders from the duals of a transportation LP over the
demand expected for the rest of the horizon (Acimovic & Graves, 2015). The forecast uses only
orders already seen: each (region, SKU)'s rate so far, times the time left.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np

from aoms.domain.geo import Point, haversine_km
from aoms.domain.money import Money, minor_units
from aoms.domain.optimise import LinearModel, Problem, joint_lower_bound
from aoms.domain.routing import (
    Candidate,
    Demand,
    Policy,
    RateCard,
    RoutingConfig,
    plan,
    problem_for,
)

SCARCITY = "scarcity"
POLICIES = (
    Policy.NEAREST.value,
    Policy.SHOPIFY_DEFAULT.value,
    Policy.LANDED_COST.value,
    Policy.OPTIMAL.value,
    SCARCITY,
)


@dataclass(frozen=True, slots=True)
class LabOrder:
    id: str
    placed_at: datetime
    demand: Demand


@dataclass(frozen=True)
class LabLocation:
    id: str
    name: str
    point: Point
    handling: Money


@dataclass(frozen=True)
class Scenario:
    name: str
    currency: str
    card: RateCard
    locations: Sequence[LabLocation]
    stock: Mapping[tuple[str, str], int]  # (sku, location id) -> units
    orders: Sequence[LabOrder]  # in time order


@dataclass
class PolicyResult:
    policy: str
    orders: int = 0
    cost_minor: int = 0
    shipments: int = 0
    split_orders: int = 0
    units_shipped: int = 0
    units_backordered: int = 0
    km_total: float = 0.0
    decision_s: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def total_minor(self, backorder_cost: int) -> int:
        return self.cost_minor + backorder_cost * self.units_backordered

    def summary(self, scale: int, backorder_cost: int) -> dict[str, object]:
        shipped_orders = max(1, self.orders)
        times = sorted(self.decision_s) or [0.0]
        return {
            "policy": self.policy,
            "orders": self.orders,
            "total_cost": str(Decimal(self.total_minor(backorder_cost)) / scale),
            "landed_cost": str(Decimal(self.cost_minor) / scale),
            "cost_per_order": str(
                (Decimal(self.cost_minor) / scale / shipped_orders).quantize(Decimal("0.0001"))
            ),
            "split_rate": round(self.split_orders / shipped_orders, 4),
            "shipments": self.shipments,
            "mean_km_per_shipment": round(self.km_total / max(1, self.shipments), 1),
            "units_shipped": self.units_shipped,
            "units_backordered": self.units_backordered,
            "decision_ms_p50": round(statistics.median(times) * 1e3, 3),
            "decision_ms_p99": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3, 3),
            "seconds": round(self.seconds, 2),
        }


def run_policy(
    scenario: Scenario,
    policy: str,
    *,
    max_shipments: int = 3,
    refresh: int = 500,
    progress: Callable[[int], None] | None = None,
) -> PolicyResult:
    """Route every order of the scenario with one policy, against stock that runs down."""
    config = RoutingConfig(rate_card=scenario.card, max_shipments=max_shipments)
    stock: dict[str, dict[str, int]] = defaultdict(dict)
    for (sku, loc), n in scenario.stock.items():
        if n > 0:
            stock[loc][sku] = n
    result = PolicyResult(policy)
    route_as = Policy.OPTIMAL if policy == SCARCITY else Policy(policy)
    forecast = _Forecast(scenario) if policy == SCARCITY else None
    opportunity: dict[tuple[str, str], float] = {}
    started = time.perf_counter()
    for i, order in enumerate(scenario.orders):
        if forecast is not None and i % refresh == 0:
            opportunity = forecast.opportunity(stock, order.placed_at)
        units = order.demand.units
        candidates = [
            Candidate(loc.id, loc.name, loc.point, loc.handling, avail)
            for loc in scenario.locations
            if (avail := {k: n for k in units if (n := stock[loc.id].get(k, 0)) > 0})
        ]
        t0 = time.perf_counter()
        p = plan(order.demand, candidates, route_as, config, opportunity=opportunity)
        result.decision_s.append(time.perf_counter() - t0)
        for s in p.chosen.shipments:
            at = stock[s.location_id]
            for k, q in s.items.items():
                at[k] -= q
                if at[k] < 0:  # pragma: no cover - a policy that oversells is a bug
                    raise AssertionError(f"{policy} oversold {k} at {s.location_id}")
            result.km_total += s.distance_km
        if forecast is not None:
            forecast.observe(order)
        scale = 10 ** minor_units(scenario.currency)
        result.orders += 1
        result.cost_minor += int(p.chosen.cost.amount * scale)
        result.shipments += len(p.chosen.shipments)
        result.split_orders += len(p.chosen.shipments) > 1
        result.units_shipped += p.chosen.units
        result.units_backordered += sum(p.backordered.values())
        if progress and i % 1000 == 999:
            progress(1000)
    if progress:
        progress(len(scenario.orders) % 1000)
    result.seconds = time.perf_counter() - started
    return result


def _region(scenario: Scenario, point: Point) -> str:
    """A destination's region: the location nearest to it."""
    return min(scenario.locations, key=lambda loc: (haversine_km(loc.point, point), loc.id)).id


class _Forecast:
    """Demand seen so far per (region, SKU), projected over the rest of the horizon."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.start = scenario.orders[0].placed_at if scenario.orders else None
        self.end = scenario.orders[-1].placed_at if scenario.orders else None
        self.seen: Counter[tuple[str, str]] = Counter()
        self.grams: dict[str, int] = {}
        self.scale = 10 ** minor_units(scenario.currency)
        points = {loc.id: loc.point for loc in scenario.locations}
        # regions are the locations' own catchments; distance from each location to each
        self.km = {(a, b): haversine_km(p, q) for a, p in points.items() for b, q in points.items()}

    def observe(self, order: LabOrder) -> None:
        region = _region(self.scenario, order.demand.destination)
        for k, q in order.demand.units.items():
            self.seen[(region, k)] += q
            self.grams[k] = order.demand.unit_grams.get(k, 0)

    def unit_cost(self, loc: LabLocation, region: str, sku: str) -> float:
        km = self.km[(loc.id, region)]
        return float(
            self.scenario.card.price_minor(km, self.grams.get(sku, 0))
            + int(loc.handling.amount * self.scale)
        )

    def opportunity(
        self, stock: Mapping[str, Mapping[str, int]], now: datetime
    ) -> dict[tuple[str, str], float]:
        if self.start is None or self.end is None or not self.seen:
            return {}
        elapsed = (now - self.start).total_seconds()
        left = (self.end - now).total_seconds()
        if elapsed <= 0 or left <= 0:
            return {}
        factor = left / elapsed
        expected: dict[str, dict[str, float]] = defaultdict(dict)
        for (region, sku), n in self.seen.items():
            expected[sku][region] = n * factor
        m = LinearModel()
        stock_rows: dict[tuple[str, str], int] = {}
        locations = self.scenario.locations
        for sku, regions in expected.items():
            holders = [loc for loc in locations if stock[loc.id].get(sku, 0) > 0]
            if not holders:
                continue
            costs = {(loc.id, r): self.unit_cost(loc, r, sku) for loc in holders for r in regions}
            # Unmet expected demand is served later from the dearest place at worst.
            unmet = max(costs.values())
            cols: dict[tuple[str, str], int] = {}
            for (l_id, r), c in costs.items():
                cols[(l_id, r)] = m.var(c, np.inf, False)
            for r, d in regions.items():
                short = m.var(unmet, np.inf, False)
                served = [cols[(loc.id, r)] for loc in holders]
                m.row([*served, short], [1.0] * (len(served) + 1), d, d)
            for loc in holders:
                stock_rows[(loc.id, sku)] = m.row(
                    [cols[(loc.id, r)] for r in regions],
                    [1.0] * len(regions),
                    -np.inf,
                    float(stock[loc.id][sku]),
                )
        if not stock_rows:
            return {}
        _, _, duals = m.solve_lp()
        # The dual of a stock row is ≤ 0 in a minimisation: minus it is the value of one more unit.
        return {key: -duals[row] for key, row in stock_rows.items() if duals[row] < -1e-9}


def backorder_cost(scenario: Scenario) -> int:
    """What a unit not shipped now is counted at (minor units): shipping it alone later at the
    card's dearest price, plus the dearest handling."""
    scale = 10 ** minor_units(scenario.currency)
    dearest = max(max(row) for row in scenario.card.minor_rows())
    handling = max((int(loc.handling.amount * scale) for loc in scenario.locations), default=0)
    return dearest + handling


def clairvoyant(scenario: Scenario, *, max_shipments: int = 3) -> dict[str, object]:
    """All orders known in advance, solved together as one LP relaxation with the stock
    constraints: a lower bound on landed cost + backorder cost for any policy."""
    scale = 10 ** minor_units(scenario.currency)
    bound, shipped, seconds = joint_lower_bound(
        scenario_problems(scenario, max_shipments=max_shipments),
        dict(scenario.stock),
        backorder_cost(scenario),
    )
    return {
        "policy": "clairvoyant bound",
        "total_cost": str((Decimal(bound) / scale).quantize(Decimal(1) / scale)),
        "units_shipped": round(shipped, 1),
        "seconds": round(seconds, 2),
    }


def scenario_problems(scenario: Scenario, *, max_shipments: int = 3) -> list[Problem]:
    config = RoutingConfig(rate_card=scenario.card, max_shipments=max_shipments)
    full: dict[str, dict[str, int]] = defaultdict(dict)
    for (sku, loc), n in scenario.stock.items():
        if n > 0:
            full[loc][sku] = n
    out: list[Problem] = []
    for order in scenario.orders:
        units = order.demand.units
        candidates = [
            Candidate(loc.id, loc.name, loc.point, loc.handling, avail)
            for loc in scenario.locations
            if (avail := {k: n for k in units if (n := full[loc.id].get(k, 0)) > 0})
        ]
        out.append(problem_for(order.demand, candidates, config))
    return out
