"""The policy lab's speed: per-order decision time of the live `optimal` policy, and whole
simulations.

1. Decision time per order, the whole live decision (`routing.plan` with the proof, the
   runner-up and the explanation in words), on the synthetic scenario's orders of at most 5
   lines and its 10 locations, with the stock running down as orders ship; `landed_cost`
   (routing v1) and `nearest` measured on the same orders in the same run: p50, p99 and ratios.
2. `simulate` wall time over N synthetic orders (2-8 lines) for the given policies (default
   `optimal` and `nearest`, the baseline), orders generated beforehand (not timed).

    .venv/bin/python benchmarks/bench_policy_lab.py [--orders 100000] [--policies optimal,nearest]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

from aoms.demo.scenario import synthetic
from aoms.domain.routing import Candidate, Policy, RoutingConfig, plan
from aoms.services.policy_lab import run_policy


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def decision_times(orders: int) -> None:
    scenario = synthetic(orders, seed=11, history_days=0)
    small = [o for o in scenario.orders if len(o.demand.units) <= 5]
    config = RoutingConfig(rate_card=scenario.card)
    print(f"decision time: {len(small)} orders of 2-5 lines, {len(scenario.locations)} locations")
    base: dict[str, float] = {}
    for policy in (Policy.NEAREST, Policy.LANDED_COST, Policy.OPTIMAL):
        stock: dict[str, dict[str, int]] = defaultdict(dict)
        for (sku, loc), n in scenario.stock.items():
            stock[loc][sku] = n
        ms = []
        for o in small:
            units = o.demand.units
            candidates = [
                Candidate(loc.id, loc.name, loc.point, loc.handling, avail)
                for loc in scenario.locations
                if (avail := {k: n for k in units if (n := stock[loc.id].get(k, 0)) > 0})
            ]
            t0 = time.perf_counter()
            p = plan(o.demand, candidates, policy, config)
            ms.append((time.perf_counter() - t0) * 1e3)
            for s in p.chosen.shipments:
                for k, q in s.items.items():
                    stock[s.location_id][k] -= q
        p50, p99 = statistics.median(ms), percentile(ms, 0.99)
        line = f"  {policy.value:15s} p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {max(ms):.2f} ms"
        if base:
            line += (
                f"  (p99 {p99 / base['nearest']:.1f}x nearest, "
                f"{p99 / base['landed_cost']:.2f}x landed_cost)"
                if "landed_cost" in base
                else f"  (p99 {p99 / base['nearest']:.1f}x nearest)"
            )
        base[policy.value] = p99
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--policies", default="optimal,nearest")
    ap.add_argument("--decision-orders", type=int, default=20_000)
    args = ap.parse_args()

    decision_times(args.decision_orders)
    started = time.perf_counter()
    big = synthetic(args.orders, seed=7, history_days=0)
    made = time.perf_counter() - started
    for policy in args.policies.split(","):
        r = run_policy(big, policy)
        print(
            f"simulate {policy} over {len(big.orders)} synthetic orders (2-8 lines, "
            f"{len(big.locations)} locations): {r.seconds:.1f} s "
            f"({len(big.orders) / r.seconds:,.0f} orders/s); decision p99 "
            f"{percentile(r.decision_s, 0.99) * 1e3:.2f} ms"
        )
    print(f"generating the scenario took {made:.1f} s")


if __name__ == "__main__":
    main()
