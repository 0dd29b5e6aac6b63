"""Routing policies as plug-ins: the interface every policy meets, and the registry that
finds one by name.

A policy is any object with a `name` and a pure `plan(demand, candidates, config,
opportunity) -> RoutingPlan`. The built-ins wrap `aoms.domain.routing.plan`; a merchant's own
policy is found through a Python entry point in the group `aoms.routing_policies` (loaded
by `aoms.adapters.plugins`), so it can be added without forking aoms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aoms.domain.errors import PlanBroken, UnknownPolicy
from aoms.domain.geo import haversine_km
from aoms.domain.money import Money
from aoms.domain.routing import (
    Candidate,
    Demand,
    Option,
    Policy,
    RoutingConfig,
    RoutingPlan,
    Shipment,
    plan,
)

ENTRY_POINT_GROUP = "aoms.routing_policies"


@runtime_checkable
class RoutingPolicy(Protocol):
    """What a routing policy is. `plan` must be pure (same inputs, same plan) and must never
    ship more of a SKU from a location than `candidates` say is available there."""

    @property
    def name(self) -> str: ...

    def plan(
        self,
        demand: Demand,
        candidates: Sequence[Candidate],
        config: RoutingConfig,
        opportunity: Mapping[tuple[str, str], float] | None = None,
    ) -> RoutingPlan: ...


@dataclass(frozen=True, slots=True)
class BuiltinPolicy:
    policy: Policy

    @property
    def name(self) -> str:
        return self.policy.value

    def plan(
        self,
        demand: Demand,
        candidates: Sequence[Candidate],
        config: RoutingConfig,
        opportunity: Mapping[tuple[str, str], float] | None = None,
    ) -> RoutingPlan:
        return plan(demand, candidates, self.policy, config, opportunity=opportunity)


@dataclass(frozen=True, slots=True)
class Registered:
    policy: RoutingPolicy
    source: str  # "builtin", or the entry point's "module:attr" and distribution


@dataclass(frozen=True, slots=True)
class Failed:
    name: str
    source: str
    error: str


class PolicyRegistry:
    """Policies by name: the built-ins first; a plug-in may not take a built-in's name."""

    def __init__(self, policies: Iterable[RoutingPolicy] = ()) -> None:
        self._by_name: dict[str, Registered] = {}
        self.failures: list[Failed] = []  # plug-ins that could not be loaded, and why
        for builtin in Policy:
            self._by_name[builtin.value] = Registered(BuiltinPolicy(builtin), "builtin")
        for policy in policies:
            self.register(policy, source="code")

    def register(self, policy: RoutingPolicy, *, source: str) -> None:
        if not isinstance(policy, RoutingPolicy):
            raise TypeError(f"{policy!r} has no name and plan(): it is not a routing policy")
        name = policy.name
        if not isinstance(name, str) or not name or len(name) > 32:
            raise ValueError(f"a policy name must be 1 to 32 characters, not {name!r}")
        taken = self._by_name.get(name)
        if taken is not None and taken.policy is not policy:
            raise ValueError(f"a policy named {name!r} is already registered ({taken.source})")
        self._by_name[name] = Registered(policy, source)

    def get(self, name: str) -> RoutingPolicy:
        found = self._by_name.get(name)
        if found is None:
            raise UnknownPolicy(
                f"no routing policy named {name!r}; known: {', '.join(self.names())}",
                field="policy",
            )
        return found.policy

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def listing(self) -> list[dict[str, str]]:
        ok = [{"name": n, "source": self._by_name[n].source} for n in self.names()]
        failed = [{"name": f.name, "source": f.source, "error": f.error} for f in self.failures]
        return ok + failed


def plan_from(
    name: str,
    demand: Demand,
    candidates: Sequence[Candidate],
    config: RoutingConfig,
    taken: Mapping[str, Mapping[str, int]],
    explanation: str,
) -> RoutingPlan:
    """A plan from a policy's choice of units per location, priced as the built-ins price it
    (the rate card at each parcel's distance and weight, plus the location's handling); what
    is not taken is backordered. For plug-in policies, which then only decide quantities."""
    by_id = {c.location_id: c for c in candidates}
    shipments = []
    shipped: dict[str, int] = {}
    for loc, asked in taken.items():
        items = {k: q for k, q in asked.items() if q > 0}
        if not items:
            continue
        cand = by_id.get(loc)
        if cand is None:
            raise PlanBroken(f"policy {name} ships from {loc!r}, which is not a candidate here")
        km = haversine_km(cand.point, demand.destination)
        grams = sum(demand.unit_grams.get(k, 0) * q for k, q in items.items())
        shipments.append(
            Shipment(
                location_id=loc,
                location_name=cand.name,
                items=items,
                distance_km=round(km, 1),
                weight_g=grams,
                shipping=config.rate_card.price(km, grams),
                handling=cand.handling,
            )
        )
        for k, q in items.items():
            shipped[k] = shipped.get(k, 0) + q
    short = {k: q - shipped.get(k, 0) for k, q in demand.units.items() if q > shipped.get(k, 0)}
    cost = Money.zero(demand.currency)
    for s in shipments:
        cost = cost + s.cost
    option = Option(tuple(shipments), short, sum(shipped.values()), cost)
    return RoutingPlan(name, option, (), 1, explanation)


def check_plan(
    routing: RoutingPlan,
    demand: Demand,
    candidates: Sequence[Candidate],
    config: RoutingConfig,
) -> None:
    """Refuse a plan no policy may return: a location that is not a candidate, more units
    than it has or than were ordered, a SKU not ordered, more shipments than allowed.
    Stock is reserved from the plan, so this is what keeps a faulty plug-in from overselling."""
    by_id = {c.location_id: c for c in candidates}
    shipped: dict[str, int] = {}
    shipments = routing.chosen.shipments
    who = f"policy {routing.policy!s}"
    if len(shipments) > config.max_shipments:
        raise PlanBroken(
            f"{who} planned {len(shipments)} shipments; at most {config.max_shipments}"
        )
    seen: set[str] = set()
    for s in shipments:
        cand = by_id.get(s.location_id)
        if cand is None or s.location_id in seen:
            raise PlanBroken(f"{who} ships from {s.location_id!r}, which is not a candidate here")
        seen.add(s.location_id)
        if not s.items:
            raise PlanBroken(f"{who} plans a shipment of nothing from {s.location_id}")
        for sku, q in s.items.items():
            if type(q) is not int or q <= 0 or q > cand.available.get(sku, 0):  # whole units
                raise PlanBroken(
                    f"{who} ships {q} × {sku} from {s.location_id}, which has "
                    f"{cand.available.get(sku, 0)} available"
                )
            shipped[sku] = shipped.get(sku, 0) + q
    for sku, q in shipped.items():
        if q > demand.units.get(sku, 0):
            raise PlanBroken(f"{who} ships {q} × {sku}; the order has {demand.units.get(sku, 0)}")
    origin = {sku: s.location_id for s in shipments for sku in s.items}
    for group in config.ship_together:
        places = {origin[sku] for sku in group if sku in origin}
        if len(places) > 1:
            raise PlanBroken(
                f"{who} ships the ship-together group {sorted(group)} from {sorted(places)}"
            )


def accept_plan(
    policy: RoutingPolicy,
    demand: Demand,
    candidates: Sequence[Candidate],
    config: RoutingConfig,
    opportunity: Mapping[tuple[str, str], float] | None = None,
) -> RoutingPlan:
    """The plan `policy` makes for the order, checked (`check_plan`); a plug-in's plan is also
    priced again as the built-ins price it and named by the name it was registered under, so
    that what it claims a plan costs (or which policy it says it is) cannot skew a decision's
    record or an A/B test. A plug-in that fails in any way is a `PlanBroken`: the order waits
    unroutable instead of being lost."""
    builtin = isinstance(policy, BuiltinPolicy)
    try:
        routing = policy.plan(demand, candidates, config, opportunity)
        if not isinstance(routing, RoutingPlan):
            raise PlanBroken(f"policy {policy.name} returned {type(routing).__name__}, not a plan")
        check_plan(routing, demand, candidates, config)
    except (PlanBroken, UnknownPolicy):
        raise
    except Exception as exc:
        if builtin:  # a bug of aoms's own: let it show
            raise
        raise PlanBroken(f"policy {policy.name} failed: {type(exc).__name__}: {exc}") from exc
    if builtin:
        return routing
    taken = {s.location_id: dict(s.items) for s in routing.chosen.shipments}
    return plan_from(policy.name, demand, candidates, config, taken, routing.explanation)
