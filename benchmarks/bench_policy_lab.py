"""The policy lab's speed: per-order decision time of the exact optimiser, and a whole simulation.

1. Decision time per order on the synthetic scenario's orders of at most 5 lines (8 locations,
   the stock as it runs down), for `optimal` against `landed_cost` (the v1 heuristic) measured
   in the same run: p50, p99 and their ratio.
2. `simulate` wall time over N synthetic orders for one policy (default `optimal`), with the
   orders generated beforehand (generation is not timed).

    .venv/bin/python benchmarks/bench_policy_lab.py [--orders 100000] [--policy optimal]
"""

from __future__ import annotations

import argparse
import statistics
import time

from aoms.demo.scenario import synthetic
from aoms.services.policy_lab import run_policy


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--policy", default="optimal")
    ap.add_argument("--decision-orders", type=int, default=20_000)
    args = ap.parse_args()

    small = synthetic(args.decision_orders, seed=11)
    small = type(small)(
        small.name, small.currency, small.card, small.locations, small.stock,
        [o for o in small.orders if len(o.demand.units) <= 5],
    )  # fmt: skip
    print(f"decision time, {len(small.orders)} orders of 2-5 lines, 8 locations")
    for policy in ("landed_cost", "optimal"):
        r = run_policy(small, policy)
        ms = [t * 1e3 for t in r.decision_s]
        print(
            f"  {policy:12s} p50 {statistics.median(ms):.3f} ms  p99 {percentile(ms, 0.99):.3f} ms"
            f"  max {max(ms):.2f} ms"
        )
        if policy == "landed_cost":
            base = (statistics.median(ms), percentile(ms, 0.99))
        else:
            print(
                f"  ratio optimal/landed_cost: p50 {statistics.median(ms) / base[0]:.2f}x, "
                f"p99 {percentile(ms, 0.99) / base[1]:.2f}x"
            )

    started = time.perf_counter()
    big = synthetic(args.orders, seed=7)
    made = time.perf_counter() - started
    r = run_policy(big, args.policy)
    print(
        f"simulate {args.policy} over {len(big.orders)} synthetic orders (2-8 lines): "
        f"{r.seconds:.1f} s ({len(big.orders) / r.seconds:,.0f} orders/s); "
        f"generating the scenario took {made:.1f} s"
    )


if __name__ == "__main__":
    main()
