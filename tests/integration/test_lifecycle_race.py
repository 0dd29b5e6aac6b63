"""Releasing the last holds from two sides at once releases the order for fulfilment exactly
once: real concurrent connections, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import replace

from sqlalchemy import func, select

from aoms.adapters.db import ledger
from aoms.adapters.db import schema as t
from aoms.adapters.db.lifecycle import SqlLifecycleStore
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.lifecycle import HoldKind
from aoms.services import holds, orders
from tests.builders import T0, later, network, order


def test_a_payment_and_a_manual_release_at_once_release_the_order_once(
    runtime: Runtime,
) -> None:
    rounds = 25
    network(runtime.engine, {("X", "a"): rounds})
    lifecycle = SqlLifecycleStore(runtime.store)
    assert runtime.after_receive is not None
    for n in range(rounds):
        unpaid = order(("X", 1), external_id=f"r{n}", financial_status="pending")
        with lifecycle.transaction() as repo:
            oid = orders.receive_order(repo.tx, unpaid, geocode=geocode, now=T0).order_id
            runtime.after_receive(repo.tx, unpaid, oid, True)
            manual = holds.place_hold(repo, oid, HoldKind.MANUAL_REVIEW, "look", now=T0)
        assert manual is not None
        paid = replace(unpaid, financial_status="paid", source_updated_at=later(1))
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def pay(paid_order=paid, order_id=oid) -> None:  # type: ignore[no-untyped-def]
            with runtime.store.transaction() as tx:
                orders.receive_order(tx, paid_order, geocode=geocode, now=later(1))
                assert runtime.after_receive is not None
                runtime.after_receive(tx, paid_order, order_id, False)

        def release(hold_id: int = manual) -> None:
            with lifecycle.transaction() as repo:
                holds.release_hold(repo, hold_id, actor="ann", note=None, now=later(1))

        def run(call, barrier=barrier, errors=errors) -> None:  # type: ignore[no-untyped-def]
            try:
                barrier.wait()
                call()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(c,)) for c in (pay, release)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors
        with runtime.store.read() as conn:
            released = conn.execute(
                select(func.count()).where(
                    t.outbox.c.aggregate == f"order:{oid}",
                    t.outbox.c.name == "order.released_for_fulfilment",
                )
            ).scalar_one()
        assert released == 1, n
    assert ledger.verify(runtime.store).ok
