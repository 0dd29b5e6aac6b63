"""Delivery promises learned from delivery history.

A promise is a whole number of days from the order's date: the `confidence` quantile of the
transit days seen on its lane (origin region → destination region, optionally per carrier
service). A lane with few deliveries borrows strength from its parent — all deliveries to the
same destination region, then all deliveries — by shrinkage (a lane with a named carrier service
shrinks toward the same route over every service first): with n samples on the lane and a
prior weight k, the estimate is (n · lane quantile + k · parent estimate) / (n + k). Samples may
carry weights (older deliveries count less, so that a promise follows the carriers' current pace);
n is then the sum of the weights.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from aoms.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Transit:
    origin: str
    destination: str
    days: int  # calendar days from the order's date to the delivery date
    service: str = ""
    weight: float = 1.0  # e.g. less for older deliveries


def quantile(values: Sequence[tuple[float, float]], q: float) -> float:
    """The weighted q-quantile of (value, weight) pairs: the least value whose cumulative
    weight reaches q of the total (with equal weights, the nearest-rank quantile)."""
    ordered = sorted(values)
    total = sum(w for _, w in ordered)
    if not ordered or total <= 0:
        raise InvalidInput("no values to take a quantile of")
    need = q * total
    running = 0.0
    for value, weight in ordered:
        running += weight
        if running >= need - 1e-12:
            return value
    return ordered[-1][0]


@dataclass(frozen=True, slots=True)
class Estimate:
    days: int
    basis: str  # lane | route | destination | overall
    samples: int  # deliveries behind the basis (for overall: every delivery learned from)


def region(country: str | None, subdivision: str | None = None) -> str:
    """A region key: the country code, then the province or region code ("BR-SP", "US")."""
    c = (country or "").strip().upper()
    if not c:
        raise InvalidInput("a region needs a country code", field="country_code")
    s = (subdivision or "").strip().upper()
    return f"{c}-{s}" if s else c


@dataclass(frozen=True)
class PromiseModel:
    confidence: float
    prior_weight: float
    overall: float
    by_destination: dict[str, tuple[int, float]]  # region -> (samples, shrunk estimate)
    by_lane: dict[tuple[str, str, str], tuple[int, float]]  # (origin, dest, service) -> ...
    by_route: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)

    @property
    def overall_samples(self) -> int:
        """The deliveries the overall estimate was learned from (each has a destination)."""
        return sum(n for n, _ in self.by_destination.values())

    @classmethod
    def fit(
        cls, history: Iterable[Transit], *, confidence: float = 0.9, prior_weight: float = 20.0
    ) -> PromiseModel:
        if not 0 < confidence < 1:
            raise InvalidInput("confidence must be between 0 and 1", field="confidence")
        if prior_weight < 0:
            raise InvalidInput("prior_weight must not be negative", field="prior_weight")
        everything: list[tuple[float, float]] = []
        dest: dict[str, list[tuple[float, float]]] = defaultdict(list)
        lane: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
        route: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        for t in history:
            if t.weight <= 0:
                continue
            sample = (float(t.days), t.weight)
            everything.append(sample)
            dest[t.destination].append(sample)
            lane[(t.origin, t.destination, t.service)].append(sample)
            route[(t.origin, t.destination)].append(sample)
        if not everything:
            raise InvalidInput("no deliveries to learn from", field="history")
        overall = quantile(everything, confidence)

        def shrink(values: list[tuple[float, float]], parent: float) -> tuple[int, float]:
            n = sum(w for _, w in values)  # the effective number of samples
            own = quantile(values, confidence)
            return len(values), (n * own + prior_weight * parent) / (n + prior_weight)

        by_dest = {d: shrink(v, overall) for d, v in dest.items()}
        by_route = {k: shrink(v, by_dest[k[1]][1]) for k, v in route.items()}
        # A service-less lane is its route: it shrinks toward the destination, as the route
        # does. A lane with a named service shrinks toward its route over every service.
        by_lane = {
            k: shrink(v, by_route[k[:2]][1] if k[2] else by_dest[k[1]][1]) for k, v in lane.items()
        }
        return cls(confidence, prior_weight, overall, by_dest, by_lane, by_route)

    def estimate(self, origin: str, destination: str, service: str = "") -> Estimate:
        """The promised days on a lane and where they come from: the lane itself, its route
        over every service, its destination region, or every delivery."""
        found = self.by_lane.get((origin, destination, service))
        basis = "lane"
        if not service:
            # No service asked for: the route over every service is the lane. (The lane of
            # deliveries recorded without a service is only part of it, or none of it.)
            route = self.by_route.get((origin, destination))
            if route is not None and (found is None or route[0] != found[0]):
                found, basis = route, "route"
        elif found is None:
            found, basis = self.by_route.get((origin, destination)), "route"
        if found is None:
            found, basis = self.by_destination.get(destination), "destination"
        samples, value = found if found else (self.overall_samples, self.overall)
        if found is None:
            basis = "overall"
        return Estimate(max(0, math.ceil(value - 1e-9)), basis, samples)

    def days(self, origin: str, destination: str, service: str = "") -> int:
        """Promised transit days on a lane (whole days, rounded up)."""
        return self.estimate(origin, destination, service).days

    def promise(self, ordered_on: date, origin: str, destination: str, service: str = "") -> date:
        return ordered_on + timedelta(days=self.days(origin, destination, service))

    def best_of(self, ordered_on: date, origins: Sequence[str], destination: str) -> date:
        """Before routing: the promise from whichever candidate origin is fastest."""
        if not origins:
            raise InvalidInput("no origin to promise from", field="origins")
        return min(self.promise(ordered_on, o, destination) for o in origins)


@dataclass(frozen=True, slots=True)
class ShipmentPromise:
    location_id: str
    origin: str
    destination: str
    service: str
    arrives_by: date
    estimate: Estimate


@dataclass(frozen=True, slots=True)
class OrderPromise:
    stage: str  # before_routing | after_routing
    arrives_by: date
    confidence: float
    shipments: tuple[ShipmentPromise, ...]  # before routing: the one fastest candidate

    @property
    def statement(self) -> str:
        return f"arrives by {self.arrives_by.isoformat()} with {self.confidence:.0%} confidence"


def _shipment(
    model: PromiseModel,
    ordered_on: date,
    location_id: str,
    origin: str,
    destination: str,
    service: str,
) -> ShipmentPromise:
    est = model.estimate(origin, destination, service)
    return ShipmentPromise(
        location_id,
        origin,
        destination,
        service,
        ordered_on + timedelta(days=est.days),
        est,
    )


def promise_before_routing(
    model: PromiseModel,
    ordered_on: date,
    candidates: Sequence[tuple[str, str]],  # (location id, origin region) able to ship it all
    destination: str,
    service: str = "",
) -> OrderPromise:
    """Before routing: the date from the fastest location that can ship the whole order
    (ties go to the lowest location id)."""
    if not candidates:
        raise InvalidInput("no location can ship this order", field="candidates")
    options = [_shipment(model, ordered_on, i, o, destination, service) for i, o in candidates]
    best = min(options, key=lambda s: (s.arrives_by, s.location_id))
    return OrderPromise("before_routing", best.arrives_by, model.confidence, (best,))


def promise_after_routing(
    model: PromiseModel,
    ordered_on: date,
    shipments: Sequence[tuple[str, str]],  # (location id, origin region) of the chosen plan
    destination: str,
    service: str = "",
    *,
    services: Mapping[str, str] | None = None,
) -> OrderPromise:
    """After routing: the date by which every shipment of the plan has arrived (the latest).
    Without `service`, each shipment goes by the carrier service routing chose for it
    (`services`: location id -> service), if any."""
    if not shipments:
        raise InvalidInput("the order has no shipments", field="shipments")
    chosen = services or {}
    parts = tuple(
        _shipment(model, ordered_on, i, o, destination, service or chosen.get(i, ""))
        for i, o in shipments
    )
    return OrderPromise("after_routing", max(p.arrives_by for p in parts), model.confidence, parts)
