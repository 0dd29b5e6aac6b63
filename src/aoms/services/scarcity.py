"""Scarcity prices for live stores: what one more unit of a SKU at a location is worth to the
orders expected before the stock is replenished (in the manner of Acimovic & Graves, 2015).

A shop whose active routing policy version sets `scarcity` has its prices refreshed every
`refresh_minutes` (by the workers, or `POST /v1/shops/{domain}/scarcity/refresh`): its last
`window` orders in the shop's currency stand for the demand to come, each counted as
(orders expected over `horizon_days`) / (orders in the window) times — the rate of the window
times the horizon, shrunk by how far the window's demand persists (`demand_persistence`) —
and are planned together against the stock available now (`joint.joint_bound`, the same model
as the policy lab's `scarcity` policy). Minus the dual of a (location, SKU) stock row is the
price. Routing adds it, per unit taken, to the optimiser's objective; the decision's recorded
cost stays the landed cost. The window is read, and the model solved, outside any write
transaction; only the prices are written, all at once.

The refresh plans the window's orders with the version's weights, per-location handling,
shipment cap and each order's delivery days (the carrier services fast enough for its shipping
method), but not with its eligibility rules or daily capacities (a price is a forecast, not a
plan).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aoms.domain.joint import demand_persistence, joint_bound
from aoms.domain.money import Money
from aoms.domain.optimise import Problem
from aoms.domain.routing import Candidate, Demand, RateCard, RoutingConfig, problem_for
from aoms.domain.routing_policy import Scarcity

ROUNDS = 10  # column-generation rounds per refresh (prices, not a proof: warm enough)
NODE_LIMIT = 2000  # per pricing search, as in the lab


@dataclass(frozen=True, slots=True)
class RecentOrder:
    placed_at: datetime
    demand: Demand
    shipping_method: str | None = None


@dataclass(frozen=True, slots=True)
class PricingInputs:
    shop: str
    currency: str
    card: RateCard
    config: RoutingConfig
    scarcity: Scarcity
    orders: Sequence[RecentOrder]  # oldest first
    locations: Sequence[Candidate]  # every active location, with all it has available
    handling: Mapping[str, Money] = field(default_factory=dict)  # the version's overrides
    # the planner's configuration by shipping method (its delivery days pick the services);
    # a method not here is planned with `config`
    by_method: Mapping[str | None, RoutingConfig] = field(default_factory=dict)


class ScarcityStore(Protocol):
    def schedules(self) -> dict[str, Scarcity]:
        """Shop -> settings, for the shops whose active policy version prices scarcity."""
        ...

    def last_refresh(self, shop: str) -> datetime | None: ...

    def pricing_inputs(self, shop: str) -> PricingInputs | None:
        """What a refresh needs, read without holding a write lock (None: nothing to price)."""
        ...

    def save_prices(
        self,
        shop: str,
        prices: Mapping[tuple[str, str], float],
        report: Mapping[str, Any],
        now: datetime,
    ) -> None: ...


def backorder_cost(card: RateCard, handlings: Sequence[Money]) -> int:
    """What a unit not shipped now is counted at (minor units): shipping it alone later at the
    card's dearest price, plus the dearest handling."""
    dearest = max(max(row) for row in card.minor_rows())
    return dearest + max((h.in_minor() for h in handlings), default=0)


def dearest_shipment(problem: Problem) -> int:
    """The most a shipment of this order could be scored at (minor units), as the planner
    weighs it: the dearest weight band from the farthest site, its handling, its km and a
    split."""
    w = problem.weights
    return max(
        (
            math.ceil(w.shipping * max(s.band_price) + w.handling * s.handling + w.per_km * s.km)
            + w.split_penalty
            for s in problem.sites
            if s.band_price
        ),
        default=0,
    )


def price_stock(
    inputs: PricingInputs, now: datetime
) -> tuple[dict[tuple[str, str], float], dict[str, Any]]:
    """The stock's prices, (location, SKU) -> minor units per unit, and a report of how."""
    started = time.perf_counter()
    orders = [o for o in inputs.orders if o.placed_at <= now]
    report: dict[str, Any] = {"orders": len(orders), "priced": 0}
    span = (now - orders[0].placed_at).total_seconds() if orders else 0.0
    if not orders or span <= 0:
        return {}, {**report, "skipped": "no orders in the window yet"}
    persistence = demand_persistence([o.demand.units for o in orders])
    horizon = timedelta(days=inputs.scarcity.horizon_days).total_seconds()
    each = persistence * horizon / span  # = (orders expected over the horizon) / len(orders)
    report.update(persistence=round(persistence, 4), each=round(each, 4))
    locations = [
        Candidate(c.location_id, c.name, c.point, inputs.handling.get(c.location_id, c.handling),
                  c.available)
        for c in inputs.locations
    ]  # fmt: skip
    if each <= 0 or not locations:
        return {}, {**report, "skipped": "the window's demand does not persist"}
    problems = [
        problem_for(
            o.demand,
            [
                Candidate(c.location_id, c.name, c.point, c.handling, avail)
                for c in locations
                if (avail := {k: n for k in o.demand.units if (n := c.available.get(k, 0)) > 0})
            ],
            inputs.by_method.get(o.shipping_method, inputs.config),
        )
        for o in orders
    ]
    stock = {(k, c.location_id): n for c in locations for k, n in c.available.items() if n > 0}
    cards = [
        inputs.card,
        inputs.config.rate_card,
        *(c.rate_card for c in inputs.by_method.values()),
    ]
    result = joint_bound(
        problems,
        stock,
        # as dear as any service the orders may go by, under the version's weights: the
        # forecast must never find leaving an order unshipped cheaper than shipping it, which
        # routing never does
        max(
            [
                *(backorder_cost(card, [c.handling for c in locations]) for card in cards),
                *(dearest_shipment(p) for p in problems),
            ]
        ),
        counts=[each] * len(problems),
        max_rounds=ROUNDS,
        node_limit=NODE_LIMIT,
    )
    prices = {key: round(v, 4) for key, v in result.prices.items() if v >= 0.005}
    report.update(
        priced=len(prices),
        rounds=result.rounds,
        seconds=round(time.perf_counter() - started, 3),
        horizon_days=inputs.scarcity.horizon_days,
        currency=inputs.currency,
    )
    return prices, report


def refresh_prices(store: ScarcityStore, shop: str, *, now: datetime) -> dict[str, Any]:
    """Price the shop's stock now and store the prices (replacing the last ones)."""
    inputs = store.pricing_inputs(shop)
    if inputs is None:
        report: dict[str, Any] = {"orders": 0, "priced": 0, "skipped": "no scarcity setting"}
        return {"shop": shop, "computed_at": now, **report}
    prices, report = price_stock(inputs, now)
    store.save_prices(shop, prices, report, now)
    return {"shop": shop, "computed_at": now, **report}


def due_refreshes(store: ScarcityStore, now: datetime) -> list[str]:
    """The shops whose prices are older than their `refresh_minutes` (or were never made)."""
    due = []
    for shop, settings in sorted(store.schedules().items()):
        last = store.last_refresh(shop)
        if last is None or now - last >= timedelta(minutes=settings.refresh_minutes):
            due.append(shop)
    return due
