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
from a location (in the manner of Acimovic & Graves, 2015), refreshed every `refresh` orders: the
duals of the stock rows of the joint model (`optimise.joint_bound`, the same column generation as
the clairvoyant bound) over the orders expected for the rest of the horizon. The forecast uses
only orders already seen: the recent ones, each standing for its share of the orders expected
from now on (the rate so far × the time left).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from aoms.domain.geo import Point
from aoms.domain.money import Money, minor_units
from aoms.domain.optimise import Problem, joint_bound
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
    refresh: int = 100,
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
    forecast = _Forecast(scenario, max_shipments=max_shipments) if policy == SCARCITY else None
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


class _Forecast:
    """The recent orders, standing for the orders expected over the rest of the horizon."""

    def __init__(self, scenario: Scenario, window: int = 400, max_shipments: int = 3) -> None:
        self.scenario = scenario
        self.max_shipments = max_shipments
        self.start = scenario.orders[0].placed_at if scenario.orders else None
        self.end = scenario.orders[-1].placed_at if scenario.orders else None
        self.recent: deque[LabOrder] = deque(maxlen=window)
        self.orders_seen = 0

    def observe(self, order: LabOrder) -> None:
        self.recent.append(order)
        self.orders_seen += 1

    def opportunity(
        self, stock: Mapping[str, Mapping[str, int]], now: datetime
    ) -> dict[tuple[str, str], float]:
        """Shadow prices of the stock: the duals of the joint model over the expected orders —
        the recent ones, each counted (orders expected from now on) / (recent orders) times."""
        if self.start is None or self.end is None or not self.recent:
            return {}
        elapsed = (now - self.start).total_seconds()
        left = (self.end - now).total_seconds()
        if elapsed <= 0 or left <= 0:
            return {}
        each = self.orders_seen * left / elapsed / len(self.recent)
        config = RoutingConfig(rate_card=self.scenario.card, max_shipments=self.max_shipments)
        problems = []
        for order in self.recent:
            units = order.demand.units
            candidates = [
                Candidate(loc.id, loc.name, loc.point, loc.handling, avail)
                for loc in self.scenario.locations
                if (avail := {k: n for k in units if (n := stock[loc.id].get(k, 0)) > 0})
            ]
            problems.append(problem_for(order.demand, candidates, config))
        on_hand = {(k, loc): n for loc, items in stock.items() for k, n in items.items() if n > 0}
        result = joint_bound(
            problems,
            on_hand,
            backorder_cost(self.scenario),
            counts=[each] * len(problems),
            max_rounds=10,
        )
        return result.prices


def backorder_cost(scenario: Scenario) -> int:
    """What a unit not shipped now is counted at (minor units): shipping it alone later at the
    card's dearest price, plus the dearest handling."""
    scale = 10 ** minor_units(scenario.currency)
    dearest = max(max(row) for row in scenario.card.minor_rows())
    handling = max((int(loc.handling.amount * scale) for loc in scenario.locations), default=0)
    return dearest + handling


def clairvoyant(scenario: Scenario, *, max_shipments: int = 3) -> dict[str, object]:
    """All orders known in advance, solved together with the stock constraints: a proven lower
    bound on landed cost + backorder cost for any policy (see `optimise.joint_bound`)."""
    scale = 10 ** minor_units(scenario.currency)
    result = joint_bound(
        scenario_problems(scenario, max_shipments=max_shipments),
        dict(scenario.stock),
        backorder_cost(scenario),
    )
    return {
        "policy": "clairvoyant bound",
        "total_cost": str((Decimal(result.bound) / scale).quantize(Decimal(1) / scale)),
        "relaxation": str((Decimal(result.relaxation) / scale).quantize(Decimal(1) / scale)),
        "rounds": result.rounds,
        "converged": result.converged,
        "seconds": round(result.seconds, 2),
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
