"""Delivery promises learned from delivery history.

A promise is a whole number of days from the order's date: the `confidence` quantile of the
transit days seen on its lane (origin region → destination region, optionally per carrier
service). A lane with few deliveries borrows strength from its parent — all deliveries to the
same destination region, then all deliveries — by shrinkage: with n samples on the lane and a
prior weight k, the estimate is (n · lane quantile + k · parent estimate) / (n + k). Samples may
carry weights (older deliveries count less, so that a promise follows the carriers' current pace);
n is then the sum of the weights.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PromiseModel:
    confidence: float
    prior_weight: float
    overall: float
    by_destination: dict[str, tuple[int, float]]  # region -> (samples, shrunk estimate)
    by_lane: dict[tuple[str, str, str], tuple[int, float]]  # (origin, dest, service) -> ...

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
        for t in history:
            if t.weight <= 0:
                continue
            sample = (float(t.days), t.weight)
            everything.append(sample)
            dest[t.destination].append(sample)
            lane[(t.origin, t.destination, t.service)].append(sample)
        overall = quantile(everything, confidence)

        def shrink(values: list[tuple[float, float]], parent: float) -> tuple[int, float]:
            n = sum(w for _, w in values)  # the effective number of samples
            own = quantile(values, confidence)
            return len(values), (n * own + prior_weight * parent) / (n + prior_weight)

        by_dest = {d: shrink(v, overall) for d, v in dest.items()}
        by_lane = {k: shrink(v, by_dest[k[1]][1]) for k, v in lane.items()}
        return cls(confidence, prior_weight, overall, by_dest, by_lane)

    def days(self, origin: str, destination: str, service: str = "") -> int:
        """Promised transit days on a lane (whole days, rounded up)."""
        found = self.by_lane.get((origin, destination, service))
        if found is None:
            found = self.by_destination.get(destination)
        estimate = found[1] if found else self.overall
        return max(0, math.ceil(estimate - 1e-9))

    def promise(self, ordered_on: date, origin: str, destination: str, service: str = "") -> date:
        return ordered_on + timedelta(days=self.days(origin, destination, service))

    def best_of(self, ordered_on: date, origins: Sequence[str], destination: str) -> date:
        """Before routing: the promise from whichever candidate origin is fastest."""
        if not origins:
            raise InvalidInput("no origin to promise from", field="origins")
        return min(self.promise(ordered_on, o, destination) for o in origins)
