"""A seeded synthetic multi-location scenario for the policy lab (no I/O beyond package data).

Eight US locations (the demo store's five and three more), a catalogue with skewed popularity and
real-looking weights, orders of 2–8 distinct SKUs shipped to US ZIP3 centroids over 30 days, and
stock equal to the units ordered × cover: the popular tenth of SKUs held at 5–8 locations and
the rest at 1–3, in random shares
— so that the cheapest location for today's order is often the only one that holds tomorrow's.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aoms.demo.orders import _zip3_points, demo_store
from aoms.domain.geo import Point
from aoms.domain.money import Money
from aoms.domain.routing import Demand, RateCard
from aoms.services.policy_lab import LabLocation, LabOrder, Scenario

EXTRA_LOCATIONS = (
    ("den", "Denver DC", 39.7392, -104.9903, "1.90"),
    ("sea", "Seattle 3PL", 47.6062, -122.3321, "2.20"),
    ("mia", "Miami store", 25.7617, -80.1918, "2.40"),
)


def synthetic(
    orders: int = 10_000, *, seed: int = 7, skus: int = 400, cover: float = 1.0
) -> Scenario:
    rng = random.Random(seed)
    store = demo_store()
    locations = [
        LabLocation(loc["id"], loc["name"], Point(loc["lat"], loc["lng"]),
                    Money.of(loc["handling_cost"], "USD"))
        for loc in store["locations"]
    ] + [
        LabLocation(i, name, Point(lat, lng), Money.of(h, "USD"))
        for i, name, lat, lng, h in EXTRA_LOCATIONS
    ]  # fmt: skip
    catalogue = [f"SYN-{i:04d}" for i in range(skus)]
    grams = {k: round(10 ** rng.uniform(2.0, 3.6)) for k in catalogue}  # 100 g - 4 kg
    popularity = [1.0 / (i + 1) ** 0.9 for i in range(skus)]
    places = _zip3_points()
    start = datetime(2026, 10, 1, tzinfo=UTC)
    times = sorted(rng.uniform(0, 30 * 86400) for _ in range(orders))
    out: list[LabOrder] = []
    ordered: Counter[str] = Counter()
    for n, seconds in enumerate(times):
        lines = rng.randint(2, 8)
        chosen: set[str] = set()
        while len(chosen) < lines:
            chosen.add(rng.choices(catalogue, popularity)[0])
        units = {k: rng.choice((1, 1, 1, 2)) for k in sorted(chosen)}
        ordered.update(units)
        _, lat, lng = rng.choice(places)
        out.append(
            LabOrder(
                f"S{n + 1:06d}",
                start + timedelta(seconds=seconds),
                Demand(units, {k: grams[k] for k in units}, Point(lat, lng), "USD"),
            )
        )
    stock: dict[tuple[str, str], int] = {}
    for k in catalogue:
        total = round(ordered[k] * cover)
        if total <= 0:
            continue
        rank = catalogue.index(k)  # the popular tenth is held widely, the long tail narrowly
        holders = rng.sample(
            locations, rng.randint(5, 8) if rank < skus // 10 else rng.randint(1, 3)
        )
        shares = [rng.random() + 0.2 for _ in holders]
        whole = sum(shares)
        exact = [Decimal(total) * Decimal(s) / Decimal(whole) for s in shares]
        parts = [int(e) for e in exact]
        for i in sorted(range(len(parts)), key=lambda i: -(exact[i] - parts[i]))[
            : total - sum(parts)
        ]:
            parts[i] += 1
        for loc, q in zip(holders, parts, strict=True):
            if q:
                stock[(k, loc.id)] = q
    card = RateCard.from_dict(store["rate_card"])
    return Scenario(f"synthetic-{orders}-seed{seed}", "USD", card, locations, stock, out)
