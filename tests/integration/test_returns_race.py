"""Two refunds of the same last units at once: exactly one is made, and stock moves once."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import func, select

from aoms.adapters.db import queries
from aoms.adapters.db import schema as t
from aoms.adapters.db.returns import SqlReturnStore
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.errors import AomsError
from aoms.services import orders, refunds
from tests.builders import T0, network, order


def _together(*calls: Callable[[], None]) -> None:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], None]) -> None:
        barrier.wait()
        call()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def test_two_racing_refunds_of_the_last_units_make_one_refund_and_one_restock(
    runtime: Runtime,
) -> None:
    rounds = 30 if runtime.engine.dialect.name == "postgresql" else 10
    network(runtime.engine, {(f"R-{n}", "a"): 5 for n in range(rounds)})
    store = SqlReturnStore(runtime.store)
    for n in range(rounds):
        with runtime.store.transaction() as tx:
            placed = orders.receive_order(
                tx, order((f"R-{n}", 2), external_id=f"r{n}"), geocode=geocode, now=T0
            )
        with store.writing() as rtx:
            refunds.mark_delivered(
                rtx, placed.order_id, delivered_at=T0, fulfilled_at=None, source="test", now=T0
            )
        outcomes: list[str] = []

        def refund(order_id: int = placed.order_id, outcomes: list[str] = outcomes) -> None:
            cmd = refunds.RefundOrder(order_id, [refunds.RefundLineRequest(1, 2, "a")])
            try:
                with store.writing() as rtx:
                    refunds.refund_order(rtx, cmd, now=T0)
                outcomes.append("refunded")
            except AomsError as exc:
                outcomes.append(exc.code)

        _together(refund, refund)
        assert sorted(outcomes) == ["refunded", "return_quantity_exceeded"], (n, outcomes)
        with runtime.store.read() as conn:
            made = conn.execute(
                select(func.count())
                .select_from(t.refunds)
                .where(t.refunds.c.order_id == placed.order_id)
            ).scalar_one()
            level = queries.stock_level(conn, f"R-{n}", "a")
        assert made == 1
        # 5 − the 2 that left when it was delivered + the 2 restocked, once
        assert level is not None and level["on_hand"] == 5
