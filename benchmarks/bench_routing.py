"""Routing decisions per second, in-process, on real orders.

Inputs: the Olist sample's orders and the network `aoms replay olist` builds from it (8 hubs),
and the demo store's generated multi-line orders. Each policy plans every order against full
stock (the decision alone, no database). Baseline, measured in the same run: "nearest location
that has everything, else nearest with anything" written as a plain loop — the least a router
can do — so the ratio shows what the full search costs.

    .venv/bin/python benchmarks/bench_routing.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aoms.adapters.importers import olist
from aoms.demo.orders import demo_store, generate_orders
from aoms.domain.geo import Point, haversine_km
from aoms.domain.money import Money
from aoms.domain.routing import Candidate, Demand, Policy, RateCard, RoutingConfig, plan

ROOT = Path(__file__).resolve().parents[1]
OLIST = ROOT.parent / "shared" / "data" / "olist" / "sample_8k_orders_cab-g_bravida-analytics-case"
FLOOR = 2000.0


def nearest_baseline(demand: Demand, candidates: Sequence[Candidate]) -> str | None:
    best, best_km, whole = None, float("inf"), False
    for c in candidates:
        has_all = all(c.available.get(s, 0) >= q for s, q in demand.units.items())
        km = haversine_km(c.point, demand.destination)
        if (has_all, -km) > (whole, -best_km):
            best, best_km, whole = c.location_id, km, has_all
    return best


def rate(fn: Callable[[Demand], object], demands: Sequence[Demand], repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for d in demands:
            fn(d)
        runs.append(len(demands) / (time.perf_counter() - start))
    return statistics.median(runs)


def olist_case() -> tuple[list[Demand], list[Candidate], RateCard]:
    data = olist.load(OLIST)
    cands = [
        Candidate(
            loc.id,
            loc.name,
            loc.point,
            Money.of("2.00", "BRL"),
            {sku: n for (sku, at), n in data.stock.items() if at == loc.id},
        )
        for loc in data.locations
    ]
    demands = [
        Demand(o.demand(), o.unit_grams(), o.shipping_address.point or Point(0, 0), "BRL")
        for o in data.orders
    ]
    return demands, cands, data.rate_card


def demo_case() -> tuple[list[Demand], list[Candidate], RateCard]:
    store = demo_store()
    stock: dict[str, dict[str, int]] = {}
    for s in store["stock"]:
        stock.setdefault(s["location_id"], {})[s["sku"]] = s["on_hand"]
    cands = [
        Candidate(
            loc["id"],
            loc["name"],
            Point(loc["lat"], loc["lng"]),
            Money.of(loc["handling_cost"], "USD"),
            stock.get(loc["id"], {}),
        )
        for loc in store["locations"]
    ]
    demands = []
    for p in generate_orders(store, 3000, seed=5):
        units: dict[str, int] = {}
        for li in p["line_items"]:
            units[li["sku"]] = units.get(li["sku"], 0) + li["quantity"]
        grams = {li["sku"]: li["grams"] for li in p["line_items"]}
        a = p["shipping_address"]
        demands.append(Demand(units, grams, Point(a["latitude"], a["longitude"]), "USD"))
    return demands, cands, RateCard.from_dict(store["rate_card"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cases = [("demo store, 1-4 lines, 5 locations", demo_case())]
    if OLIST.exists():
        cases.insert(0, ("Olist sample, 8 hubs", olist_case()))
    else:
        print(f"(Olist data not found at {OLIST}: demo store only)")
    worst = float("inf")
    for name, (demands, cands, card) in cases:
        cfg = RoutingConfig(rate_card=card)
        base = rate(lambda d, c=cands: nearest_baseline(d, c), demands, args.repeats)
        print(f"\n{name}: {len(demands)} orders, median of {args.repeats} runs")
        print(f"  {'baseline: nearest location':34s} {base:10,.0f} decisions/s")
        costs = {}
        for policy in Policy:
            r = rate(lambda d, p=policy, c=cands, g=cfg: plan(d, c, p, g), demands, args.repeats)
            worst = min(worst, r)
            plans = [plan(d, cands, policy, cfg) for d in demands]
            costs[policy] = sum(p.chosen.cost.amount for p in plans)
            splits = sum(len(p.chosen.shipments) > 1 for p in plans) / len(plans)
            print(
                f"  {policy.value:34s} {r:10,.0f} decisions/s  "
                f"({r / base:.2f}× baseline, {r / FLOOR:.1f}× the {FLOOR:,.0f}/s floor); "
                f"plan cost {costs[policy]:,.2f} {card.currency}, split rate {splits:.1%}"
            )
        ratio = costs[Policy.SHOPIFY_DEFAULT] / costs[Policy.LANDED_COST]
        print(f"  cost of shopify_default / landed_cost on the same orders: {ratio:.3f}")
    print(
        f"\nslowest policy: {worst:,.0f} decisions/s — floor {FLOOR:,.0f}/s "
        f"{'met' if worst >= FLOOR else 'NOT met'}"
    )
    return 0 if worst >= FLOOR else 1


if __name__ == "__main__":
    sys.exit(main())
