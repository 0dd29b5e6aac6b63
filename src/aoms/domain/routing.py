"""Routing v1: choose the location(s) that ship an order, and say why.

`plan(demand, candidates, policy)` is pure. Two policies share one enumeration of shipment
options and differ only in how they rank them:

* ``landed_cost``: most units first, then the lowest estimated landed cost (shipping by the
  rate card + handling per shipment), then fewer shipments.
* ``shopify_default``: most units first, then the fewest locations, then the shortest total
  distance (Shopify's default order routing: "minimize split fulfillment, then closest").

* ``optimal``: the exact optimum of the landed cost (most units first), found by
  `aoms.domain.optimise` over every location and every split of every SKU, with the proof
  (a lower bound equal to the cost) and the best plan that does without the chosen main location.
* ``nearest``: the nearest location that has everything, else each SKU from the nearest that has
  it — the least a router can do; a baseline for the policy lab.

Costs are kept in integer minor units while searching (exact and fast) and turned into Money
for the result.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from aoms.domain.errors import InvalidInput
from aoms.domain.geo import Point, haversine_km
from aoms.domain.money import Money, minor_units
from aoms.domain.optimise import Problem, Site, Solution, Weights, solve, terms
from aoms.domain.service_levels import ServiceRates
from aoms.domain.service_levels import check as check_services


class Policy(StrEnum):
    LANDED_COST = "landed_cost"
    SHOPIFY_DEFAULT = "shopify_default"
    OPTIMAL = "optimal"
    NEAREST = "nearest"


@dataclass(frozen=True)
class RateCard:
    """Shipping price by distance band × billable-weight band.

    `distance_km` and `weight_g` are ascending upper bounds (inclusive); `prices[d][w]` is the
    price for distance band d and weight band w. Beyond the last band the last price applies.
    `prices` are the service `service` (taking `transit_days` per distance band, when given);
    `services` are other carrier services over the same bands (domain.service_levels).
    """

    currency: str
    distance_km: tuple[float, ...]
    weight_g: tuple[int, ...]
    prices: tuple[tuple[Decimal, ...], ...]
    service: str = "standard"
    transit_days: tuple[int, ...] = ()
    services: tuple[ServiceRates, ...] = ()
    _minor: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    _dearest: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.distance_km or not self.weight_g:
            raise InvalidInput("a rate card needs at least one distance and one weight band")
        if list(self.distance_km) != sorted(self.distance_km) or list(self.weight_g) != sorted(
            self.weight_g
        ):
            raise InvalidInput("rate card bands must be ascending")
        if len(self.prices) != len(self.distance_km) or any(
            len(row) != len(self.weight_g) for row in self.prices
        ):
            raise InvalidInput(
                "rate card prices must have one row per distance band "
                "and one column per weight band"
            )
        scale = 10 ** minor_units(self.currency)
        minor = tuple(
            tuple(int(Money.of(p, self.currency).amount * scale) for p in row)
            for row in self.prices
        )
        object.__setattr__(self, "_minor", minor)
        object.__setattr__(self, "_dearest", max(max(row) for row in minor))
        if self.services or self.transit_days:
            check_services(self)

    def band(self, distance_km: float, weight_g: int) -> tuple[int, int]:
        return self.distance_band(distance_km), self.weight_band(weight_g)

    def distance_band(self, distance_km: float) -> int:
        return min(bisect.bisect_left(self.distance_km, distance_km), len(self.distance_km) - 1)

    def weight_band(self, weight_g: int) -> int:
        return min(bisect.bisect_left(self.weight_g, weight_g), len(self.weight_g) - 1)

    def price_minor(self, distance_km: float, weight_g: int) -> int:
        d, w = self.band(distance_km, weight_g)
        return self._minor[d][w]

    def minor_row(self, distance_band: int) -> tuple[int, ...]:
        """Prices in minor units, per weight band, at one distance band."""
        return self._minor[distance_band]

    def minor_rows(self) -> tuple[tuple[int, ...], ...]:
        return self._minor

    def dearest_minor(self) -> int:
        """The dearest price on the card, in minor units."""
        return self._dearest

    def price(self, distance_km: float, weight_g: int) -> Money:
        d, w = self.band(distance_km, weight_g)
        return Money.of(self.prices[d][w], self.currency)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "currency": self.currency,
            "distance_km": list(self.distance_km),
            "weight_g": list(self.weight_g),
            "prices": [[str(p) for p in row] for row in self.prices],
        }
        if self.services or self.transit_days or self.service != "standard":
            out["service"] = self.service
            out["transit_days"] = list(self.transit_days)
            out["services"] = [
                {"name": s.name, "transit_days": list(s.transit_days),
                 "prices": [[str(p) for p in row] for row in s.prices]}
                for s in self.services
            ]  # fmt: skip
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RateCard:
        try:
            return cls(
                currency=str(data["currency"]),
                distance_km=tuple(float(x) for x in data["distance_km"]),  # type: ignore[attr-defined]
                weight_g=tuple(int(x) for x in data["weight_g"]),  # type: ignore[attr-defined]
                prices=tuple(
                    tuple(Decimal(str(p)) for p in row)
                    for row in data["prices"]  # type: ignore[attr-defined]
                ),
                service=str(data.get("service") or "standard"),
                transit_days=tuple(int(x) for x in data.get("transit_days") or ()),  # type: ignore[attr-defined]
                services=tuple(
                    ServiceRates(
                        str(s["name"]),
                        tuple(int(x) for x in s["transit_days"]),
                        tuple(tuple(Decimal(str(p)) for p in row) for row in s["prices"]),
                    )
                    for s in data.get("services") or ()  # type: ignore[attr-defined]
                ),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise InvalidInput(f"not a rate card: {exc}", field="rate_card") from exc


@dataclass(frozen=True, slots=True)
class Candidate:
    """A location that could ship part of an order, with what it has available now."""

    location_id: str
    name: str
    point: Point
    handling: Money
    available: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Demand:
    units: Mapping[str, int]  # sku -> units to ship
    unit_grams: Mapping[str, int]  # sku -> grams per unit
    destination: Point
    currency: str


@dataclass(frozen=True, slots=True)
class Shipment:
    location_id: str
    location_name: str
    items: Mapping[str, int]
    distance_km: float
    weight_g: int
    shipping: Money
    handling: Money
    service: str | None = None  # the carrier service, when the card prices several
    transit_days: int | None = None  # that service's days from here, when the card states them

    @property
    def cost(self) -> Money:
        return self.shipping + self.handling


@dataclass(frozen=True, slots=True)
class Option:
    shipments: tuple[Shipment, ...]
    backordered: Mapping[str, int]
    units: int
    cost: Money

    @property
    def distance_km(self) -> float:
        return sum(s.distance_km for s in self.shipments)

    def describe(self) -> str:
        if not self.shipments:
            return "nothing can be shipped"
        names = " + ".join(s.location_name for s in self.shipments)
        n = len(self.shipments)
        return f"{names} ({n} shipment{'s' if n > 1 else ''}, {self.cost})"


@dataclass(frozen=True, slots=True)
class RoutingPlan:
    policy: str  # a Policy, or the name of a plug-in policy
    chosen: Option
    runners_up: tuple[Option, ...]
    options_considered: int
    explanation: str
    proof: Mapping[str, object] | None = None  # optimal policy: method, bound, terms, decided_by
    within_days: int | None = None  # the order must arrive within this many days of placing

    @property
    def shipments(self) -> dict[str, dict[str, int]]:
        return {s.location_id: dict(s.items) for s in self.chosen.shipments}

    @property
    def backordered(self) -> Mapping[str, int]:
        return self.chosen.backordered


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    rate_card: RateCard
    max_shipments: int = 3
    # Multi-location options are built from the nearest locations that hold any demanded SKU;
    # a wider search is routing v2's exact optimiser.
    split_search_width: int = 12
    split_penalty: Decimal = Decimal(0)  # optimal policy: added per shipment beyond the first
    # The optimal policy's objective: multipliers on shipping and handling, and the value of
    # speed as money per km of each shipment.
    shipping_weight: float = 1.0
    handling_weight: float = 1.0
    speed_per_km: Decimal = Decimal(0)
    # SKUs that must ship from one location when the order has more than one of them
    # (optimal exactly; landed_cost and shopify_default drop options that break a group).
    ship_together: tuple[frozenset[str], ...] = ()

    def groups_for(self, skus: Iterable[str]) -> tuple[frozenset[str], ...]:
        """The ship-together groups that bind an order with these SKUs (two or more of a
        group's SKUs in it), cut down to those SKUs."""
        if not self.ship_together:
            return ()
        wanted = set(skus)
        cut = (group & wanted for group in self.ship_together)
        return tuple(frozenset(g) for g in cut if len(g) > 1)


@dataclass(slots=True)
class _Loc:
    cand: Candidate
    distance: float
    handling: int
    lower_bound: int  # handling + cheapest possible shipping from here
    distance_band: int  # the rate card's row for this distance


def _assign(
    locs: Sequence[_Loc], units: Mapping[str, int]
) -> tuple[list[dict[str, int]], dict[str, int], int]:
    """Fill each SKU from the subset's locations, nearest first."""
    taken: list[dict[str, int]] = [{} for _ in locs]
    short: dict[str, int] = {}
    covered = 0
    for sku, wanted in units.items():
        need = wanted
        for i, loc in enumerate(locs):
            if need == 0:
                break
            have = loc.cand.available.get(sku, 0)
            if have > 0:
                take = min(have, need)
                taken[i][sku] = take
                need -= take
                covered += take
        if need:
            short[sku] = need
    return taken, short, covered


def _locations(
    demand: Demand, candidates: Sequence[Candidate], config: RoutingConfig
) -> tuple[list[_Loc], int]:
    """The candidates that hold some of the order, nearest first, and how many were left out
    because their handling cost is in another currency."""
    card = config.rate_card
    if card.currency != demand.currency:
        raise InvalidInput(
            f"the rate card is in {card.currency} but the order is in {demand.currency}",
            field="currency",
        )
    scale = 10 ** minor_units(demand.currency)
    wanted = {sku: n for sku, n in demand.units.items() if n > 0}
    min_grams = min((demand.unit_grams.get(s, 0) for s in wanted), default=0)
    locs: list[_Loc] = []
    other_currency = 0
    lightest_band = card.weight_band(min_grams)
    for cand in candidates:
        available = cand.available
        for sku in wanted:
            if available.get(sku, 0) > 0:
                break
        else:
            continue  # it holds none of the order
        if cand.handling.currency != demand.currency:
            other_currency += 1  # its handling cost cannot be added to this order's
            continue
        dist = haversine_km(cand.point, demand.destination)
        handling = int(cand.handling.amount * scale)
        d = card.distance_band(dist)
        locs.append(_Loc(cand, dist, handling, handling + card.minor_row(d)[lightest_band], d))
    locs.sort(key=lambda loc: (loc.distance, loc.cand.location_id))
    return locs, other_currency


def plan(
    demand: Demand,
    candidates: Sequence[Candidate],
    policy: Policy,
    config: RoutingConfig,
    *,
    opportunity: Mapping[tuple[str, str], float] | None = None,
) -> RoutingPlan:
    """Choose the shipments for one order. Pure: the same inputs give the same plan.

    `opportunity[(location_id, sku)]` is a cost in minor units per unit taken from there (the
    scarcity-aware policy's shadow prices); only the optimal policy uses it.
    """
    card = config.rate_card
    locs, other_currency = _locations(demand, candidates, config)
    scale = 10 ** minor_units(demand.currency)
    wanted = {sku: n for sku, n in demand.units.items() if n > 0}
    groups = config.groups_for(wanted)

    def build(subset: Sequence[_Loc]) -> tuple[Option, int] | None:
        taken, short, covered = _assign(subset, wanted)
        if len(subset) > 1 and any(not t for t in taken):
            return None  # a location that ships nothing: the smaller subset covers this
        if len(subset) > 1 and any(sum(1 for t in taken if g & t.keys()) > 1 for g in groups):
            return None  # a ship-together group would leave from two places
        return make(subset, taken, short, covered)

    def make(
        subset: Sequence[_Loc],
        taken: Sequence[Mapping[str, int]],
        short: dict[str, int],
        covered: int,
    ) -> tuple[Option, int]:
        shipments = []
        cost = 0
        for loc, items in zip(subset, taken, strict=True):
            grams = sum(demand.unit_grams.get(s, 0) * q for s, q in items.items())
            ship = card.price_minor(loc.distance, grams)
            cost += ship + loc.handling
            shipments.append(
                Shipment(
                    location_id=loc.cand.location_id,
                    location_name=loc.cand.name,
                    items=items,
                    distance_km=round(loc.distance, 1),
                    weight_g=grams,
                    shipping=Money(Decimal(ship) / scale, demand.currency),
                    handling=Money(Decimal(loc.handling) / scale, demand.currency),
                )
            )
        option = Option(
            tuple(shipments), short, covered, Money(Decimal(cost) / scale, demand.currency)
        )
        return option, cost

    note = (
        f" {other_currency} location(s) with stock were left out: their handling cost is not "
        f"in {demand.currency}."
        if other_currency
        else ""
    )
    if policy is Policy.OPTIMAL and locs:
        return _optimal(demand, locs, wanted, config, make, scale, note, opportunity or {})
    if policy is Policy.NEAREST and locs:
        whole = [
            loc for loc in locs if all(loc.cand.available.get(k, 0) >= q for k, q in wanted.items())
        ]
        pool = whole[:1] or locs
        taken, short, covered = _assign(pool, wanted)
        used = [(loc, t) for loc, t in zip(pool, taken, strict=True) if t]
        if len(used) > config.max_shipments:  # the nearest that contribute, no more
            pool = [loc for loc, _ in used[: config.max_shipments]]
            taken, short, covered = _assign(pool, wanted)
            used = list(zip(pool, taken, strict=True))
        option, _ = make([u[0] for u in used], [u[1] for u in used], short, covered)
        words = _explain(policy, option, (), 1, wanted)
        return RoutingPlan(policy, option, (), 1, words + note)

    def rank(entry: tuple[Option, int]) -> tuple[object, ...]:
        option, cost = entry
        ids = tuple(s.location_id for s in option.shipments)
        if policy is Policy.SHOPIFY_DEFAULT:
            return (-option.units, len(option.shipments), option.distance_km, cost, ids)
        return (-option.units, cost, len(option.shipments), option.distance_km, ids)

    options: list[tuple[Option, int]] = []
    best_full_cost: int | None = None
    total_units = sum(wanted.values())
    for loc in locs:
        built = build([loc])
        assert built is not None
        options.append(built)
        if built[0].units == total_units and (best_full_cost is None or built[1] < best_full_cost):
            best_full_cost = built[1]
    split_pool = locs[: config.split_search_width]
    for size in range(2, min(config.max_shipments, len(split_pool)) + 1):
        if policy is Policy.SHOPIFY_DEFAULT and best_full_cost is not None:
            break  # fewer locations always wins there
        for subset in itertools.combinations(split_pool, size):
            if (
                policy is Policy.LANDED_COST
                and best_full_cost is not None
                and sum(s.lower_bound for s in subset) > best_full_cost
            ):
                continue
            built = build(subset)
            if built is None:
                continue
            options.append(built)
            if built[0].units == total_units and (
                best_full_cost is None or built[1] < best_full_cost
            ):
                best_full_cost = built[1]
        if best_full_cost is not None and policy is Policy.SHOPIFY_DEFAULT:
            break

    if not options:
        empty = Option((), dict(wanted), 0, Money.zero(demand.currency))
        return RoutingPlan(policy, empty, (), 0, _explain(policy, empty, (), 0, wanted) + note)
    options.sort(key=rank)
    chosen = options[0][0]
    runners = tuple(o for o, _ in options[1:4])
    explanation = _explain(policy, chosen, runners, len(options), wanted) + note
    return RoutingPlan(policy, chosen, runners, len(options), explanation)


_TERM_WORDS = {
    "shipping": "shipping",
    "handling": "handling",
    "split": "the split penalty",
    "backorder": "units it cannot ship",
    "speed": "distance (the value of speed)",
}


def _problem(
    demand: Demand,
    locs: Sequence[_Loc],
    wanted: Mapping[str, int],
    config: RoutingConfig,
    scale: int,
    opportunity: Mapping[tuple[str, str], float],
) -> Problem:
    card = config.rate_card
    sites = []
    for loc in locs:
        at = loc.cand.location_id
        has = loc.cand.available
        available = {k: n for k in wanted if (n := has.get(k, 0)) > 0}
        sites.append(
            Site(
                key=at,
                km=loc.distance,
                handling=loc.handling,
                available=available,
                band_upper_g=card.weight_g,
                band_price=card.minor_row(loc.distance_band),
                opportunity={k: v for k in available if (v := opportunity.get((at, k), 0.0))}
                if opportunity
                else {},
            )
        )
    split = int(config.split_penalty * scale)
    per_km = float(config.speed_per_km * scale)
    heaviest_plan = config.max_shipments * (
        config.shipping_weight * card.dearest_minor()
        + config.handling_weight * max([loc.handling for loc in locs], default=0)
        + (per_km * max([loc.distance for loc in locs], default=0.0) if per_km else 0.0)
    )
    most_scarcity = max(opportunity.values(), default=0.0) * sum(wanted.values())
    weights = Weights(
        shipping=config.shipping_weight,
        handling=config.handling_weight,
        split_penalty=split,
        per_km=per_km,
        # above any plan's cost, so that shipping more units always wins (as in landed_cost)
        backorder_penalty=int(heaviest_plan + split * config.max_shipments + most_scarcity) + 1,
    )
    return Problem(
        dict(wanted),
        dict(demand.unit_grams),
        sites,
        weights,
        config.max_shipments,
        config.groups_for(wanted),
    )


def problem_for(
    demand: Demand,
    candidates: Sequence[Candidate],
    config: RoutingConfig,
    opportunity: Mapping[tuple[str, str], float] | None = None,
) -> Problem:
    """The optimiser's view of one order (for the policy lab and joint models of many orders)."""
    locs, _ = _locations(demand, candidates, config)
    wanted = {sku: n for sku, n in demand.units.items() if n > 0}
    scale = 10 ** minor_units(demand.currency)
    return _problem(demand, locs, wanted, config, scale, opportunity or {})


def _optimal(
    demand: Demand,
    locs: Sequence[_Loc],
    wanted: Mapping[str, int],
    config: RoutingConfig,
    make: Callable[
        [Sequence[_Loc], Sequence[Mapping[str, int]], dict[str, int], int], tuple[Option, int]
    ],
    scale: int,
    note: str,
    opportunity: Mapping[tuple[str, str], float],
) -> RoutingPlan:
    """The exact optimum, the best plan without its main location, and why the first won."""
    by_id = {loc.cand.location_id: loc for loc in locs}
    problem = _problem(demand, locs, wanted, config, scale, opportunity)
    sites, weights = problem.sites, problem.weights
    best = solve(problem)

    def to_option(solution: Solution) -> Option:
        chosen = sorted(solution.taken.items(), key=lambda kv: (by_id[kv[0]].distance, kv[0]))
        shipped = sum(q for _, items in chosen for q in items.values())
        option, _ = make(
            [by_id[k] for k, _ in chosen],
            [items for _, items in chosen],
            dict(solution.backordered),
            shipped,
        )
        return option

    chosen = to_option(best)
    runners: tuple[Option, ...] = ()
    proof: dict[str, object] = {
        "method": best.method,
        "objective_minor": round(best.objective),
        "bound_minor": round(best.bound),
        "optimal": best.gap < 0.5,
        "terms_minor": {k: round(v) for k, v in terms(problem, best.taken).items()},
    }
    runner_words = ""
    if best.taken:
        main = max(best.taken, key=lambda k: (sum(best.taken[k].values()), k))
        without = solve(
            Problem(
                problem.units,
                problem.grams,
                [s for s in sites if s.key != main],
                weights,
                config.max_shipments,
                problem.ship_together,
            )
        )
        if without.taken:
            runners = (to_option(without),)
            diff = {
                k: v - proof["terms_minor"][k]  # type: ignore[index]
                for k, v in terms(problem, without.taken).items()
            }
            term = max(diff, key=lambda k: (diff[k], k))
            proof["runner_up_minor"] = round(without.objective)
            proof["decided_by"] = term
            amount = Money(Decimal(round(diff[term])) / scale, demand.currency)
            short = sum(without.backordered.values())
            why = (
                f"it ships {short} unit(s) more"
                if term == "backorder" and short
                else f"it wins on {_TERM_WORDS.get(term, term)} ({amount} less)"
            )
            runner_words = (
                f" Without {by_id[main].cand.name}, the best plan is {runners[0].describe()}; "
                f"the chosen plan is better: {why}."
            )
    words = _explain(Policy.OPTIMAL, chosen, (), 1, wanted).rsplit(" 1 option", 1)[0]
    weighted = (weights.shipping, weights.handling, weights.per_km) != (1.0, 1.0, 0.0)
    scored = (
        " scores (landed cost + scarcity)"
        if any(s.opportunity for s in sites)
        else " scores (the policy's weighted cost, which counts distance and weights as set)"
        if weighted
        else " costs"
    )
    proof_words = (
        f" Proven optimal: no plan{scored} less than "
        f"{Money(Decimal(round(best.bound)) / scale, demand.currency)} ({best.method})."
        if best.gap < 0.5 and not chosen.backordered
        else ""
    )
    return RoutingPlan(
        Policy.OPTIMAL,
        chosen,
        runners,
        len(sites),
        words + runner_words + proof_words + note,
        proof,
    )


def _explain(
    policy: str,
    chosen: Option,
    runners: Sequence[Option],
    considered: int,
    wanted: Mapping[str, int],
) -> str:
    total_units = sum(wanted.values())
    if not chosen.shipments:
        return (
            f"No location that may ship this order has any of the {total_units} unit(s) "
            "ordered; everything is backordered."
        )
    parts = []
    if chosen.backordered:
        short = ", ".join(f"{q} × {sku}" for sku, q in sorted(chosen.backordered.items()))
        parts.append(
            f"Only {chosen.units} of {total_units} unit(s) are available at the locations "
            "that may ship this order; "
            f"backordered: {short}."
        )
    ship_words = "; ".join(
        f"{s.location_name} ships {sum(s.items.values())} unit(s) {s.distance_km:.0f} km "
        f"({s.weight_g} g): shipping {s.shipping.amount} + handling {s.handling.amount}"
        for s in chosen.shipments
    )
    parts.append(f"Chosen: {chosen.describe()}. {ship_words}.")
    if runners:
        runner = runners[0]
        if runner.units < chosen.units:
            why = f"it ships only {runner.units} of {chosen.units} unit(s)"
        elif policy is Policy.SHOPIFY_DEFAULT and len(runner.shipments) > len(chosen.shipments):
            why = "it needs more locations (fewest locations first)"
        elif policy is Policy.SHOPIFY_DEFAULT and runner.distance_km > chosen.distance_km:
            why = f"it is farther ({runner.distance_km:.0f} km vs {chosen.distance_km:.0f} km)"
        elif chosen.cost < runner.cost:
            why = f"it costs {(runner.cost - chosen.cost).amount} more"
        else:
            why = "it is equal on cost; ties go to fewer shipments, then the shorter distance"
        parts.append(f"Runner-up: {runner.describe()}; not chosen because {why}.")
    parts.append(f"{considered} option(s) considered under policy {policy}.")
    return " ".join(parts)
