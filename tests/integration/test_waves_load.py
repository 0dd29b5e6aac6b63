"""A large wave must not stop the shop taking orders while it is re-planned, on SQLite and
PostgreSQL: real concurrent connections."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.orders import OrderStatus
from aoms.domain.routing import Policy
from aoms.services import orders, waves
from tests.builders import T0, east, network, order

SHOP = "shop.myshopify.com"


def test_an_order_placed_during_a_large_wave_re_plan_is_routed_within_seconds(
    runtime: Runtime,
) -> None:
    # 300 orders of 1-4 of 8 SKUs to customers 0-900 km away, over 6 locations (a fixed seed).
    # The wave takes tens of seconds to re-plan them (its final MILP has no time limit) and
    # holds, all that while, the write lock (SQLite) or the rows of every order and stock
    # level of the wave (PostgreSQL). A new order of one of those SKUs placed meanwhile
    # must still be routed within a few seconds, as it is when no wave runs (well under 1 s).
    rng = random.Random(1)
    skus = [f"S{i}" for i in range(8)]
    locs = {"a": 0, "b": 700, "c": 300, "d": 120, "e": 450, "f": 900}
    network(
        runtime.engine,
        {(s, loc): rng.randint(5, 60) for s in skus for loc in locs},
        locations=locs,
        policy=Policy.OPTIMAL,
    )
    for i in range(300):
        lines = [(s, rng.randint(1, 3)) for s in rng.sample(skus, rng.randint(1, 4))]
        dest = east(rng.choice([0, 100, 250, 500, 900]))
        with runtime.store.transaction() as tx:
            orders.receive_order(
                tx, order(*lines, external_id=str(i), dest=dest), geocode=geocode, now=T0
            )

    def wave() -> None:
        with runtime.store.transaction() as tx:
            waves.replan_wave(tx, SHOP, T0 - timedelta(hours=1), now=T0)

    running = threading.Thread(target=wave)
    running.start()
    time.sleep(4.0)  # the wave has its locks and is solving
    started = time.perf_counter()
    try:
        with runtime.store.transaction() as tx:
            got = orders.receive_order(
                tx, order(("S0", 1), external_id="new"), geocode=geocode, now=T0
            )
        took = time.perf_counter() - started
    finally:
        running.join()
    assert got.status is OrderStatus.ROUTED
    assert took < 5.0, f"the new order waited {took:.1f} s for the wave"
