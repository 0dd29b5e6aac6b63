"""A seeded synthetic multi-location scenario for the policy lab (no I/O beyond package data).

Ten US locations (the demo store's five and five more), a catalogue with skewed popularity and
real-looking weights, orders of 2–8 distinct SKUs shipped to US ZIP3 centroids over 30 days, and
stock equal to the units ordered × cover: the popular tenth of SKUs held at 5–8 locations and
the rest at 1–3, in random shares
— so that the cheapest location for today's order is often the only one that holds tomorrow's.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aoms.demo.orders import _zip3_points, demo_store
from aoms.domain.geo import Point, haversine_km
from aoms.domain.money import Money
from aoms.domain.promise import PromiseModel, Transit
from aoms.domain.routing import Demand, RateCard
from aoms.domain.service_levels import ServiceRates
from aoms.services.policy_lab import LabLocation, LabOrder, Lanes, Scenario

EXTRA_LOCATIONS = (
    ("den", "Denver DC", 39.7392, -104.9903, "1.90"),
    ("sea", "Seattle 3PL", 47.6062, -122.3321, "2.20"),
    ("mia", "Miami store", 25.7617, -80.1918, "2.40"),
    ("phx", "Phoenix 3PL", 33.4484, -112.0740, "2.00"),
    ("msp", "Minneapolis store", 44.9778, -93.2650, "2.30"),
)
# Extra transit days beyond the distance's own, and how often: most parcels arrive on time,
# some a day or two late, a few much later.
DELAY_DAYS = (0, 1, 2, 3, 5, 8)
DELAY_WEIGHTS = (55, 22, 11, 6, 4, 2)


def _region(zip3: str) -> str:
    """A US destination region: the ZIP code's first digit (the national area)."""
    return f"US-{zip3[0]}"


def transit_lanes(
    locations: Sequence[LabLocation], places: Sequence[tuple[str, float, float]], seed: int
) -> Lanes:
    """A delivery history of 20,000 parcels from every location to random ZIP3s (transit days
    = 1 + a day per 700 km + a skewed delay), the 90% promise learned from it, and the same
    history as the spread that promises are scored against."""
    rng = random.Random(seed * 7919 + 1)
    history = []
    for _ in range(20_000):
        loc = rng.choice(locations)
        zip3, lat, lng = rng.choice(places)
        km = haversine_km(loc.point, Point(lat, lng))
        delay = rng.choices(DELAY_DAYS, DELAY_WEIGHTS)[0]
        history.append((loc.region, _region(zip3), 1 + math.ceil(km / 700) + delay))
    model = PromiseModel.fit((Transit(o, d, days) for o, d, days in history), confidence=0.9)
    return Lanes(model, history)


def synthetic(
    orders: int = 10_000,
    *,
    seed: int = 7,
    skus: int = 400,
    cover: float = 1.0,
    history_days: int = 30,
    express_share: float = 0.0,
) -> Scenario:
    """`orders` orders over 30 days, and before them `history_days` days of earlier orders from
    the same shoppers (at the same rate) that policies may learn from but do not route.

    With `express_share` > 0 the card prices two carrier services (`ground`, the demo card's
    prices, and `express`, dearer and faster: `SERVICES`), and that share of the orders is by
    Express (2 days), the rest by Standard (6 days); each order is routed by the cheapest
    service fast enough from where it ships. At 0 the scenario is the one-service one, draw for
    draw."""
    rng = random.Random(seed)
    store = demo_store()
    locations = [
        LabLocation(loc["id"], loc["name"], Point(loc["lat"], loc["lng"]),
                    Money.of(loc["handling_cost"], "USD"), loc["id"])
        for loc in store["locations"]
    ] + [
        LabLocation(i, name, Point(lat, lng), Money.of(h, "USD"), i)
        for i, name, lat, lng, h in EXTRA_LOCATIONS
    ]  # fmt: skip
    catalogue = [f"SYN-{i:04d}" for i in range(skus)]
    grams = {k: round(10 ** rng.uniform(2.0, 3.6)) for k in catalogue}  # 100 g - 4 kg
    popularity = [1.0 / (i + 1) ** 0.9 for i in range(skus)]
    cumulative = list(itertools.accumulate(popularity))
    # A SKU by popularity as rng.choices(catalogue, cum_weights=cumulative)[0] draws it (the
    # same draw from the same stream), without that call's checks on every one of a million.
    total, last = cumulative[-1] + 0.0, len(catalogue) - 1
    places = _zip3_points()
    start = datetime(2026, 10, 1, tzinfo=UTC)
    earlier = round(orders * history_days / 30)
    times = sorted(rng.uniform(-history_days * 86400, 0) for _ in range(earlier))
    times += sorted(rng.uniform(0, 30 * 86400) for _ in range(orders))
    out: list[LabOrder] = []
    ordered: Counter[str] = Counter()
    for n, seconds in enumerate(times):
        lines = rng.randint(2, 8)
        chosen: set[str] = set()
        while len(chosen) < lines:
            chosen.add(catalogue[bisect.bisect(cumulative, rng.random() * total, 0, last)])
        units = {k: rng.choice((1, 1, 1, 2)) for k in sorted(chosen)}
        method = None
        if express_share > 0:
            method = "Express" if rng.random() < express_share else "Standard"
        if n >= earlier:
            ordered.update(units)
        zip3, lat, lng = rng.choice(places)
        out.append(
            LabOrder(
                f"S{n - earlier + 1:06d}" if n >= earlier else f"H{n + 1:06d}",
                start + timedelta(seconds=seconds),
                Demand(units, {k: grams[k] for k in units}, Point(lat, lng), "USD"),
                _region(zip3),
                method,
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
    if express_share > 0:
        card = with_express(card)
    return Scenario(
        f"synthetic-{orders}-seed{seed}",
        "USD",
        card,
        locations,
        stock,
        out[earlier:],
        history=out[:earlier],
        lanes=transit_lanes(locations, places, seed),
        delivery_days=DELIVERY_DAYS if express_share > 0 else {},
    )


# The two services of the scenario's card with express (by distance band: 300, 800, 1500,
# 2500, 4000, 6000 km): ground takes 2-7 days at the demo card's prices, express 1-3 days
# at 1.8 times them; Standard orders must arrive in 6 days, Express in 2.
GROUND_DAYS = (2, 3, 4, 5, 6, 7)
EXPRESS_DAYS = (1, 1, 2, 2, 3, 3)
EXPRESS_FACTOR = Decimal("1.8")
DELIVERY_DAYS = {"standard": 6, "express": 2}


def with_express(card: RateCard) -> RateCard:
    express = tuple(
        tuple((p * EXPRESS_FACTOR).quantize(Decimal("0.01")) for p in row) for row in card.prices
    )
    return replace(
        card,
        service="ground",
        transit_days=GROUND_DAYS,
        services=(ServiceRates("express", EXPRESS_DAYS, express),),
    )
