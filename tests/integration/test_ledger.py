"""The hash-chained ledger on SQLite and PostgreSQL: every stock movement and routing decision
is chained, concurrent writers keep one linear chain, and a hand edit is found and named."""

from __future__ import annotations

import threading

from sqlalchemy import func, select, text, update

from aoms.adapters.db import ledger
from aoms.adapters.db import schema as t
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.ledger import GENESIS, entry_hash
from aoms.services import inventory, orders
from tests.builders import T0, network, order


def count(rt: Runtime, table: t.Table) -> int:
    with rt.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def place_orders(rt: Runtime, n: int) -> None:
    for i in range(n):
        with rt.store.transaction() as tx:
            orders.receive_order(
                tx, order(("X", 1), ("Y", 2), external_id=f"L{i}"), geocode=geocode, now=T0
            )


def seq_of(rt: Runtime, ref: str) -> int:
    with rt.store.read() as conn:
        return int(
            conn.execute(
                select(t.ledger_entries.c.seq).where(t.ledger_entries.c.ref == ref)
            ).scalar_one()
        )


def test_every_movement_and_decision_is_chained_and_the_chain_verifies(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5, ("Y", "b"): 5})
    place_orders(runtime, 4)  # the fourth finds Y short: backordered
    result = ledger.verify(runtime.store)
    assert result.ok, result.broken
    movements, decisions = count(runtime, t.stock_movements), count(runtime, t.routing_decisions)
    assert result.movements == movements
    assert result.entries == movements + decisions == count(runtime, t.ledger_entries)
    with runtime.store.read() as conn:
        rows = conn.execute(select(t.ledger_entries).order_by(t.ledger_entries.c.seq)).all()
    # Recompute the chain independently of verify: sha256 over prev|seq|kind|canonical body.
    prev = GENESIS
    for n, row in enumerate(rows, start=1):
        assert row.seq == n and row.prev_hash == prev
        assert row.hash == entry_hash(prev, n, row.kind, row.body)
        prev = row.hash
    assert result.head == prev


def test_a_hand_edited_movement_row_is_found_and_its_entry_named(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5, ("Y", "b"): 5})
    place_orders(runtime, 2)
    with runtime.store.read() as conn:
        victim = (
            conn.execute(
                select(t.stock_movements.c.id).where(t.stock_movements.c.reason == "reserve")
            )
            .scalars()
            .first()
        )
    with runtime.engine.begin() as conn:
        conn.execute(
            update(t.stock_movements)
            .where(t.stock_movements.c.id == victim)
            .values(reserved_delta=0)
        )
    result = ledger.verify(runtime.store)
    assert result.broken is not None
    assert result.broken.seq == seq_of(runtime, f"stock_movement:{victim}")
    assert "edited" in result.broken.problem


def test_a_hand_edited_or_deleted_ledger_entry_breaks_the_chain_there(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5, ("Y", "b"): 5})
    place_orders(runtime, 3)
    total = count(runtime, t.ledger_entries)
    e = t.ledger_entries.c
    with runtime.engine.begin() as conn:
        decision = conn.execute(
            select(e.seq, e.body)
            .where(e.kind == "routing_decision")
            .order_by(e.seq.desc())
            .limit(1)
        ).one()
        conn.execute(
            update(t.ledger_entries)
            .where(e.seq == decision.seq)
            .values(body={**decision.body, "cost_minor": 1})
        )
    broken = ledger.verify(runtime.store).broken
    assert broken is not None and broken.seq == decision.seq
    assert "does not match its hash" in broken.problem

    with runtime.engine.begin() as conn:  # put it back, then remove an entry in the middle
        conn.execute(
            update(t.ledger_entries).where(e.seq == decision.seq).values(body=decision.body)
        )
    assert ledger.verify(runtime.store).ok
    with runtime.engine.begin() as conn:
        conn.execute(t.ledger_entries.delete().where(e.seq == total // 2))
    broken = ledger.verify(runtime.store).broken
    assert broken is not None and broken.seq == total // 2 + 1
    assert "missing" in broken.problem


def test_a_movement_written_around_the_ledger_is_found(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5})
    with runtime.engine.begin() as conn:
        conn.execute(
            t.stock_movements.insert().values(
                sku="X",
                location_id="a",
                on_hand_delta=100,
                reserved_delta=0,
                reason="sneaky",
                reference=None,
                idempotency_key=None,
                at=T0,
            )
        )
        sneaky = conn.execute(select(func.max(t.stock_movements.c.id))).scalar_one()
    broken = ledger.verify(runtime.store).broken
    assert broken is not None and f"stock movement {sneaky} has no ledger entry" in broken.problem


def test_concurrent_writers_keep_one_linear_chain(runtime: Runtime) -> None:
    writers, each = 6, 15
    network(runtime.engine, {(f"S{w}", "a"): 1000 for w in range(writers)})
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def write(w: int) -> None:
        try:
            barrier.wait()
            for k in range(each):
                with runtime.store.transaction() as tx:
                    inventory.adjust_stock(
                        tx,
                        sku=f"S{w}",
                        location_id="a",
                        reason="receipt",
                        now=T0,
                        delta=1,
                        idempotency_key=f"{w}-{k}",
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    result = ledger.verify(runtime.store)
    assert result.ok, result.broken
    assert result.entries == writers + writers * each  # the initial counts, then the receipts
    with runtime.store.read() as conn:
        seqs = conn.execute(text("SELECT seq FROM ledger_entries ORDER BY seq")).scalars().all()
    assert seqs == list(range(1, result.entries + 1))
