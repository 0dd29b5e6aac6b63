"""The wave re-plan racing new orders, cancels, updates and another wave: real concurrent
connections on SQLite and PostgreSQL.

Each round has its own SKU: A (at the door of customer 0 km) holds one, B (700 km) five.
Order p (customer 250 km from A) took A's unit, order q (at A's door) ships from B; the wave
would swap them (saves 4.00, tests/integration/test_waves.py). Meanwhile p is cancelled, or a
new order r at A's door arrives, or q grows to two units.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.orders import OrderStatus
from aoms.domain.routing import Policy
from aoms.services import orders, waves
from tests.builders import T0, east, network, order
from tests.integration.test_race import _together
from tests.integration.test_waves_edges import consistent

SHOP = "shop.myshopify.com"


def _place(
    rt: Runtime, sku: str, ext: str, km: float, now: datetime, q: int = 1, updated: datetime = T0
) -> int:
    with rt.store.transaction() as tx:
        got = orders.receive_order(
            tx, order((sku, q), external_id=ext, dest=east(km), updated=updated),
            geocode=geocode, now=now,
        )  # fmt: skip
    return got.order_id


def _wave(rt: Runtime, now: datetime) -> None:
    with rt.store.transaction() as tx:
        waves.replan_wave(tx, SHOP, now, now=now)


def _cancel(rt: Runtime, order_id: int, now: datetime) -> None:
    with rt.store.transaction() as tx:
        orders.cancel_order(tx, order_id, now=now)


def _holds(rt: Runtime, order_id: int) -> int:
    r = t.reservations.c
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(r.quantity).where(r.order_id == order_id, r.status == "active")
        ).scalars()
        return sum(rows)


def _status(rt: Runtime, order_id: int) -> str:
    with rt.engine.connect() as conn:
        return str(
            conn.execute(select(t.orders.c.status).where(t.orders.c.id == order_id)).scalar()
        )


def test_a_wave_racing_a_cancel_a_new_order_and_an_update_never_oversells(runtime: Runtime) -> None:
    rounds = 60 if runtime.engine.dialect.name == "postgresql" else 10
    stock = {}
    for n in range(rounds):
        stock |= {(f"W-{n}", "a"): 1, (f"W-{n}", "b"): 5}
    network(runtime.engine, stock, locations={"a": 0, "b": 700}, policy=Policy.OPTIMAL)
    for n in range(rounds):
        sku, now = f"W-{n}", T0 + timedelta(minutes=10 * n)
        p = _place(runtime, sku, f"p{n}", 250, now)
        q = _place(runtime, sku, f"q{n}", 0, now)
        ids: dict[str, int] = {}

        def new(sku: str = sku, n: int = n, now: datetime = now, ids: dict[str, int] = ids) -> None:
            ids["r"] = _place(runtime, sku, f"r{n}", 0, now)

        _together(
            partial(_wave, runtime, now),
            partial(_cancel, runtime, p, now),
            new,
            # q grows to two units (a newer version of it): released and routed again
            partial(_place, runtime, sku, f"q{n}", 0, now, 2, T0 + timedelta(seconds=1)),
            partial(_wave, runtime, now),
        )
        consistent(runtime)
        assert _holds(runtime, p) == 0, n
        for who, oid, want in (("q", q, 2), ("r", ids["r"], 1)):
            status = _status(runtime, oid)
            held = _holds(runtime, oid)
            if status == OrderStatus.ROUTED.value:
                assert held == want, (n, who)
