"""Wave re-planning (waves) meeting fulfilment orders a 3PL already holds (hand-off), on SQLite
and PostgreSQL: a wave leaves alone the orders a warehouse already has part of.

The network: A at the customer's door (0 km) with 2 X, B 700 km east with 5 X; handling 1.50;
the builders' card (up to 1 kg: 0-100 km 4.00, 100-500 km 6.00, 500-1000 km 8.00), OPTIMAL.
1. A customer 250 km from A (450 km from B) orders 2 X (1 kg): 6.00 + 1.50 = 7.50 from either;
   the tie goes to the nearer, A, which empties A.
2. A customer at A's door orders 2 X: only B is left, 8.00 + 1.50 = 9.50.
Re-planned together the wave would cost 7.50 + 5.50 = 13.00 instead of 17.00, by moving both.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.routing import Policy
from aoms.services import handoff as svc
from aoms.services import orders, waves
from tests.builders import T0, east, later, network, order
from tests.integration.test_handoff import connect, fos, run

SHOP = "shop.myshopify.com"


@pytest.fixture
def hstore(runtime: Runtime) -> SqlHandoffStore:
    return SqlHandoffStore(runtime.store)


def place(rt: Runtime, ext: str, km: float) -> int:
    with rt.store.transaction() as tx:
        got = orders.receive_order(
            tx, order(("X", 2), external_id=ext, dest=east(km)), geocode=geocode, now=T0
        )
    return got.order_id


def units_to_ship(rt: Runtime, hstore: SqlHandoffStore, order_id: int) -> int:
    """X units the order's live fulfilment orders still ask their locations to ship: an FO's
    lines once aoms has recorded them (not shipped, not closed), else its items."""
    live = ("open", "requested", "accepted", "partly_shipped", "cancel_requested")
    total = 0
    for fo_id, _, status, items in fos(rt, order_id):
        if status not in live:
            continue
        detail = hstore.fulfilment_order(fo_id)
        assert detail is not None
        lines = [ln for ln in detail["lines"] if ln["sku"] == "X"]
        if detail["lines"]:
            total += sum(int(x["quantity"]) - int(x["shipped"]) - int(x["closed"]) for x in lines)
        else:
            total += items.get("X", 0)
    return total


def active(rt: Runtime, order_id: int) -> dict[str, int]:
    r = t.reservations.c
    with rt.store.read() as conn:
        rows = conn.execute(
            select(r.location_id, r.quantity).where(r.order_id == order_id, r.status == "active")
        ).all()
    held: dict[str, int] = {}
    for loc, q in rows:
        held[loc] = held.get(loc, 0) + int(q)
    return held


def test_a_wave_does_not_move_units_a_3pl_already_holds(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    stock = {("X", "a"): 2, ("X", "b"): 5}
    network(runtime.engine, stock, locations={"a": 0, "b": 700}, policy=Policy.OPTIMAL)
    connect(runtime, hstore, "a")
    first, second = place(runtime, "1", 250), place(runtime, "2", 0)
    [(fo_id, loc, _, items)] = fos(runtime, first)
    assert (loc, items) == ("a", {"X": 2})
    # One of the first order's two units goes to the 3PL at A on its own.
    split = run(hstore, svc.split, fo_id, {"X": 1}, later(1))
    [part] = split.new_fo_ids
    run(hstore, svc.hand_off, part, later(2))
    run(hstore, svc.accept, part, later(3))
    assert units_to_ship(runtime, hstore, first) == 2

    with runtime.store.transaction() as tx:
        waves.replan_wave(tx, SHOP, T0 - timedelta(hours=1), now=later(4))

    # Whatever the wave did, the first order still ships exactly its 2 units, and the one the
    # 3PL at A accepted is still reserved there.
    assert units_to_ship(runtime, hstore, first) == 2
    assert active(runtime, first).get("a", 0) >= 1
    assert units_to_ship(runtime, hstore, second) == 2
