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
duals of the stock rows of the joint model (`joint.joint_bound`, the same column generation as
the clairvoyant bound) over the orders expected for the rest of the horizon. The forecast uses
only orders already seen: the recent ones, each standing for its share of the orders expected
from now on (the rate so far × the time left).
"""

from __future__ import annotations

import bisect
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from aoms.domain.errors import InvalidInput
from aoms.domain.geo import Point
from aoms.domain.joint import Column, demand_persistence, joint_bound, joint_plans
from aoms.domain.money import Money, minor_units
from aoms.domain.optimise import Problem, solve
from aoms.domain.promise import PromiseModel
from aoms.domain.routing import (
    Candidate,
    Demand,
    Policy,
    RateCard,
    RoutingConfig,
    plan,
    problem_for,
)
from aoms.domain.service_levels import effective_card

SCARCITY = "scarcity"
BATCH = "batch"
POLICIES = (
    Policy.NEAREST.value,
    Policy.SHOPIFY_DEFAULT.value,
    Policy.LANDED_COST.value,
    Policy.OPTIMAL.value,
    SCARCITY,
    BATCH,
)
AOMS_POLICIES = (Policy.OPTIMAL.value, Policy.LANDED_COST.value, SCARCITY, BATCH)


@dataclass(frozen=True, slots=True)
class LabOrder:
    id: str
    placed_at: datetime
    demand: Demand
    region: str = ""  # the destination's region, for delivery promises
    shipping_method: str | None = None  # its delivery days choose the carrier services


@dataclass(frozen=True)
class LabLocation:
    id: str
    name: str
    point: Point
    handling: Money
    region: str = ""  # the origin region of its shipments, for delivery promises


class Lanes:
    """Transit times as the lab knows them: the promise a store makes on each lane (a model
    learned from delivery history), and the spread of actual transit days per lane that the
    promises are scored against. An order's promise is its slowest shipment's; it is on time
    when every shipment arrives by it (shipments independent), so the on-time rate is an
    expectation over the lanes' spreads, not one random draw."""

    def __init__(self, model: PromiseModel, actual: Iterable[tuple[str, str, int]]) -> None:
        self.model = model
        lanes: dict[tuple[str, str], list[int]] = defaultdict(list)
        dests: dict[str, list[int]] = defaultdict(list)
        every: list[int] = []
        for origin, dest, days in actual:
            lanes[(origin, dest)].append(days)
            dests[dest].append(days)
            every.append(days)
        if not every:
            raise InvalidInput("no transit times to score promises against")
        self.lanes = {k: sorted(v) for k, v in lanes.items()}
        self.dests = {k: sorted(v) for k, v in dests.items()}
        self.every = sorted(every)

    def promise(self, origins: Iterable[str], dest: str) -> tuple[int, float]:
        """(promised days, probability that every shipment arrives within them)."""
        origins = list(origins)
        days = max(self.model.days(o, dest) for o in origins)
        p = 1.0
        for o in origins:
            spread = self.lanes.get((o, dest)) or self.dests.get(dest) or self.every
            p *= bisect.bisect_right(spread, days) / len(spread)
        return days, p


@dataclass(frozen=True)
class Scenario:
    name: str
    currency: str
    card: RateCard
    locations: Sequence[LabLocation]
    stock: Mapping[tuple[str, str], int]  # (sku, location id) -> units
    orders: Sequence[LabOrder]  # in time order
    history: Sequence[LabOrder] = ()  # earlier orders, in time order: seen, never routed
    lanes: Lanes | None = None
    # shipping method (lower case, or "*") -> the days an order by it must arrive in; with a
    # card of several services, each order is routed by the cheapest fast enough
    delivery_days: Mapping[str, int] = field(default_factory=dict)

    def configs(self, max_shipments: int) -> Callable[[LabOrder], RoutingConfig]:
        """The planner's configuration for each order, by its shipping method's days."""
        made: dict[int | None, RoutingConfig] = {}

        def config(order: LabOrder) -> RoutingConfig:
            method = (order.shipping_method or "").strip().lower()
            days = self.delivery_days.get(method, self.delivery_days.get("*"))
            if days not in made:
                card = effective_card(self.card, days)[0]
                made[days] = RoutingConfig(rate_card=card, max_shipments=max_shipments)
            return made[days]

        return config


@dataclass
class PolicyResult:
    policy: str
    orders: int = 0
    orders_shipped: int = 0  # orders something shipped for
    cost_minor: int = 0
    shipments: int = 0
    split_orders: int = 0
    units_shipped: int = 0
    units_backordered: int = 0
    km_total: float = 0.0
    promised_orders: int = 0
    promised_days: int = 0
    on_time: float = 0.0  # expected on-time orders
    decision_s: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def total_minor(self, backorder_cost: int) -> int:
        return self.cost_minor + backorder_cost * self.units_backordered

    def summary(self, scale: int, backorder_cost: int) -> dict[str, object]:
        shipped_orders = max(1, self.orders)
        cent = Decimal(1) / scale  # the currency's minor unit: amounts as money is written
        times = sorted(self.decision_s) or [0.0]
        return {
            "policy": self.policy,
            "orders": self.orders,
            "total_cost": str((Decimal(self.total_minor(backorder_cost)) / scale).quantize(cent)),
            "landed_cost": str((Decimal(self.cost_minor) / scale).quantize(cent)),
            "cost_per_order": str(
                (Decimal(self.cost_minor) / scale / max(1, self.orders_shipped)).quantize(
                    Decimal("0.0001")
                )
            ),
            "split_rate": round(self.split_orders / shipped_orders, 4),
            "shipments": self.shipments,
            "mean_km_per_shipment": round(self.km_total / max(1, self.shipments), 1),
            "mean_promised_days": round(self.promised_days / self.promised_orders, 2)
            if self.promised_orders
            else None,
            "on_time_rate": round(self.on_time / self.promised_orders, 4)
            if self.promised_orders
            else None,
            "units_shipped": self.units_shipped,
            "units_backordered": self.units_backordered,
            "decision_ms_p50": round(statistics.median(times) * 1e3, 3),
            "decision_ms_p99": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3, 3),
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True, slots=True)
class _Shipped:
    location_id: str
    items: Mapping[str, int]
    km: float
    cost_minor: int  # shipping + handling


def _shipments(problem: Problem, taken: Mapping[str, Mapping[str, int]]) -> list[_Shipped]:
    sites = {s.key: s for s in problem.sites}
    out = []
    for key, items in sorted(taken.items()):
        site = sites[key]
        grams = sum(problem.grams.get(k, 0) * q for k, q in items.items())
        out.append(_Shipped(key, dict(items), site.km, site.price(grams) + site.handling))
    return out


def _candidates(
    scenario: Scenario, stock: Mapping[str, Mapping[str, int]], units: Mapping[str, int]
) -> list[Candidate]:
    return [
        Candidate(loc.id, loc.name, loc.point, loc.handling, avail)
        for loc in scenario.locations
        if (avail := {k: n for k in units if (n := stock[loc.id].get(k, 0)) > 0})
    ]


def run_policy(
    scenario: Scenario,
    policy: str,
    *,
    max_shipments: int = 3,
    refresh: int | None = None,
    wave_minutes: float = 120.0,
    progress: Callable[[int], None] | None = None,
) -> PolicyResult:
    """Route every order of the scenario with one policy, against stock that runs down.

    `refresh`: the scarcity prices are recomputed every `refresh` orders (by default about
    every 1% of the history, at least every 100 orders). `wave_minutes`: the batch policy
    releases work in waves of this length and re-plans each wave's orders together first.
    """
    if policy not in POLICIES:
        raise InvalidInput(f"unknown policy {policy!r}", field="policy")
    config_of = scenario.configs(max_shipments)
    stock: dict[str, dict[str, int]] = defaultdict(dict)
    for (sku, loc), n in scenario.stock.items():
        if n > 0:
            stock[loc][sku] = n
    result = PolicyResult(policy)
    priced = policy in (SCARCITY, BATCH)
    exact = priced or policy == Policy.OPTIMAL.value
    every = refresh or max(100, len(scenario.orders) // 100)
    forecast = _Forecast(scenario, max_shipments=max_shipments) if priced else None
    opportunity: dict[tuple[str, str], float] = {}
    wave: list[tuple[LabOrder, list[_Shipped]]] = []
    wave_ends = None
    lanes = scenario.lanes
    region = {loc.id: loc.region for loc in scenario.locations}
    started = time.perf_counter()

    def take(shipments: Sequence[_Shipped], sign: int) -> None:
        for s in shipments:
            at = stock[s.location_id]
            for k, q in s.items.items():
                at[k] = at.get(k, 0) - sign * q
                if at[k] < 0:  # pragma: no cover - a policy that oversells is a bug
                    raise AssertionError(f"{policy} oversold {k} at {s.location_id}")

    def account(order: LabOrder, shipments: Sequence[_Shipped]) -> None:
        shipped = sum(sum(s.items.values()) for s in shipments)
        result.orders += 1
        result.orders_shipped += bool(shipments)
        result.cost_minor += sum(s.cost_minor for s in shipments)
        result.shipments += len(shipments)
        result.split_orders += len(shipments) > 1
        result.units_shipped += shipped
        result.units_backordered += sum(order.demand.units.values()) - shipped
        result.km_total += sum(s.km for s in shipments)
        if lanes is not None and shipments:
            days, p = lanes.promise((region[s.location_id] for s in shipments), order.region)
            result.promised_orders += 1
            result.promised_days += days
            result.on_time += p

    def release_wave() -> None:
        """Re-plan the wave's orders together with the stock they hold and the free stock."""
        if len(wave) > 1:
            for _, shipments in wave:
                take(shipments, -1)
            problems = [
                problem_for(
                    o.demand,
                    _candidates(scenario, stock, o.demand.units),
                    config_of(o),
                    opportunity,
                )
                for o, _ in wave
            ]
            current = [{s.location_id: dict(s.items) for s in ships} for _, ships in wave]
            on_hand = {(k, loc): n for loc, items in stock.items() for k, n in items.items() if n}
            better = joint_plans(problems, on_hand, current)
            moved = [_shipments(p, taken) for p, taken in zip(problems, better, strict=True)]
            # Move reservations only when it pays now: never fewer units, never more landed
            # cost (the scarcity prices already had their say when each order arrived).
            if _landed(moved) <= _landed([ships for _, ships in wave]):
                wave[:] = [(o, ships) for (o, _), ships in zip(wave, moved, strict=True)]
            for _, shipments in wave:
                take(shipments, 1)
        for o, shipments in wave:
            account(o, shipments)
        wave.clear()

    for i, order in enumerate(scenario.orders):
        if policy == BATCH and wave and wave_ends is not None and order.placed_at >= wave_ends:
            release_wave()
        if policy == BATCH and not wave:
            wave_ends = order.placed_at + timedelta(minutes=wave_minutes)
        if forecast is not None and i % every == 0:
            opportunity = forecast.opportunity(stock, order.placed_at)
        units = order.demand.units
        candidates = _candidates(scenario, stock, units)
        t0 = time.perf_counter()
        if exact:
            # the same solver and costs as the live `optimal` policy, without the runner-up
            # and the words, which the lab does not show
            problem = problem_for(order.demand, candidates, config_of(order), opportunity)
            shipments = _shipments(problem, solve(problem).taken)
        else:
            chosen = plan(order.demand, candidates, Policy(policy), config_of(order)).chosen
            shipments = [
                _Shipped(s.location_id, s.items, s.distance_km, s.cost.in_minor())
                for s in chosen.shipments
            ]
        result.decision_s.append(time.perf_counter() - t0)
        take(shipments, 1)
        if policy == BATCH:
            wave.append((order, shipments))
        else:
            account(order, shipments)
        if forecast is not None:
            forecast.observe(order)
        if progress and i % 1000 == 999:
            progress(1000)
    release_wave()
    if progress:
        progress(len(scenario.orders) % 1000)
    result.seconds = time.perf_counter() - started
    return result


def _landed(plans: Sequence[Sequence[_Shipped]]) -> tuple[int, int]:
    """(− units shipped, landed cost): smaller is better."""
    units = sum(sum(s.items.values()) for ships in plans for s in ships)
    return -units, sum(s.cost_minor for ships in plans for s in ships)


class _Forecast:
    """The orders seen so far, standing for the orders expected over the rest of the horizon.

    Every refresh solves the joint model (`joint.joint_bound`) over the last `window` orders
    seen, each counted (orders expected from now on) / (orders in the window) times, against the
    stock left; minus the dual of a (location, SKU) stock row is what one more unit there would
    save the expected orders. Each order's columns are kept between refreshes (a warm start).
    """

    def __init__(
        self,
        scenario: Scenario,
        window: int = 1000,
        max_shipments: int = 3,
        rounds: int = 10,
        node_limit: int | None = 2000,
        min_evidence: int = 100,
    ) -> None:
        self.scenario = scenario
        self.min_evidence = min_evidence
        self.rounds = rounds
        self.node_limit = node_limit
        self.max_shipments = max_shipments
        first = [*scenario.history[:1], *scenario.orders[:1]]
        self.start = first[0].placed_at if first else None
        self.end = scenario.orders[-1].placed_at if scenario.orders else None
        self.recent: deque[LabOrder] = deque(maxlen=window)
        self.columns: dict[str, list[Column]] = {}
        self.orders_seen = 0
        for order in scenario.history:
            self.observe(order)

    def observe(self, order: LabOrder) -> None:
        if len(self.recent) == self.recent.maxlen:
            self.columns.pop(self.recent[0].id, None)
        self.recent.append(order)
        self.orders_seen += 1

    def persistence(self) -> float:
        return demand_persistence([o.demand.units for o in self.recent], self.min_evidence)

    def opportunity(
        self, stock: Mapping[str, Mapping[str, int]], now: datetime
    ) -> dict[tuple[str, str], float]:
        """Shadow prices of the stock, per (location, SKU), in minor units per unit."""
        if self.start is None or self.end is None or not self.recent:
            return {}
        elapsed = (now - self.start).total_seconds()
        left = (self.end - now).total_seconds()
        if elapsed <= 0 or left <= 0:
            return {}
        each = self.persistence() * self.orders_seen * left / elapsed / len(self.recent)
        if each <= 0:
            return {}
        config_of = self.scenario.configs(self.max_shipments)
        problems = [
            problem_for(o.demand, _candidates(self.scenario, stock, o.demand.units), config_of(o))
            for o in self.recent
        ]
        on_hand = {(k, loc): n for loc, items in stock.items() for k, n in items.items() if n > 0}
        result = joint_bound(
            problems,
            on_hand,
            backorder_cost(self.scenario),
            counts=[each] * len(problems),
            max_rounds=self.rounds,
            columns=[self.columns.get(o.id, []) for o in self.recent],
            node_limit=self.node_limit,
        )
        kept = [o for o, p in zip(self.recent, problems, strict=True) if p.units]
        self.columns = dict(zip((o.id for o in kept), result.columns, strict=True))
        return result.prices


def backorder_cost(scenario: Scenario) -> int:
    """What a unit not shipped now is counted at (minor units): shipping it alone later at the
    card's dearest price (of any of its services), plus the dearest handling."""
    card = scenario.card
    dearest = max(
        max(max(row) for row in c.minor_rows())
        for c in (card, *(RateCard(card.currency, card.distance_km, card.weight_g, s.prices)
                          for s in card.services))
    )  # fmt: skip
    handling = max((loc.handling.in_minor() for loc in scenario.locations), default=0)
    return dearest + handling


def clairvoyant(scenario: Scenario, *, max_shipments: int = 3) -> dict[str, object]:
    """All orders known in advance, solved together with the stock constraints: a proven lower
    bound on landed cost + backorder cost for any policy (see `joint.joint_bound`)."""
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
    config_of = scenario.configs(max_shipments)
    full: dict[str, dict[str, int]] = defaultdict(dict)
    for (sku, loc), n in scenario.stock.items():
        if n > 0:
            full[loc][sku] = n
    return [
        problem_for(o.demand, _candidates(scenario, full, o.demand.units), config_of(o))
        for o in scenario.orders
    ]
