"""Whatever a 3PL sends, in whatever order, stock stays exact: a property test over random
message sequences on a real SQLite file (a fresh one per example).

After every message, accepted or refused: each location's reserved count equals its active
reservations; each location's on_hand equals the sum of its stock movements; units left the
network exactly as shipped, or as a rejection's stock adjustment; a refused message changed
nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from aoms.adapters.db import schema as t
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.db.store import SqlStore
from aoms.adapters.geocode import geocode
from aoms.domain.errors import AomsError
from aoms.domain.handoff import RejectReason
from aoms.services import handoff as svc
from aoms.services import orders
from tests.builders import T0, later, network, order

STOCK = {("X", "a"): 6, ("Y", "a"): 4, ("X", "b"): 5, ("Y", "b"): 5, ("X", "c"): 9, ("Y", "c"): 9}

op = st.one_of(
    st.tuples(st.just("ship"), st.sampled_from("XY"), st.integers(1, 3), st.sampled_from("aaabc")),
    st.tuples(st.just("request_cancel")),
    st.tuples(st.just("confirm_cancel")),
    st.tuples(st.just("refuse_cancel")),
    st.tuples(st.just("accept")),
    st.tuples(st.just("reject"), st.sampled_from(list(RejectReason))),
)


def snapshot(store: SqlStore) -> tuple[object, ...]:
    with store.read() as conn:
        levels = conn.execute(select(t.stock_levels).order_by("sku", "location_id")).all()
        fos = conn.execute(select(t.fulfilment_orders.c.status).order_by("id")).all()
        n = conn.execute(select(func.count()).select_from(t.stock_movements)).scalar_one()
    return (tuple(map(tuple, levels)), tuple(map(tuple, fos)), n)


def check_invariants(store: SqlStore, shipped: int) -> None:
    s, r, m = t.stock_levels.c, t.reservations.c, t.stock_movements.c
    with store.read() as conn:
        levels = {
            (x.sku, x.location_id): (x.on_hand, x.reserved)
            for x in conn.execute(select(s.sku, s.location_id, s.on_hand, s.reserved))
        }
        active = dict(
            conn.execute(
                select(r.sku + "@" + r.location_id, func.sum(r.quantity))
                .where(r.status == "active")
                .group_by(r.sku, r.location_id)
            ).all()
        )
        ledger = dict(
            conn.execute(
                select(m.sku + "@" + m.location_id, func.sum(m.on_hand_delta)).group_by(
                    m.sku, m.location_id
                )
            ).all()
        )
        adjusted = conn.execute(
            select(func.coalesce(func.sum(m.on_hand_delta), 0)).where(
                m.reason.in_(["3pl_not_in_stock", "damaged_unsellable"])
            )
        ).scalar_one()
    for (sku, loc), (on_hand, reserved) in levels.items():
        assert reserved == active.get(f"{sku}@{loc}", 0), (sku, loc)
        assert on_hand == ledger[f"{sku}@{loc}"], (sku, loc)
        assert on_hand >= reserved >= 0
    gone = sum(STOCK.values()) - sum(v[0] for v in levels.values())
    assert gone == shipped - adjusted


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4), st.integers(0, 3), st.lists(op, min_size=1, max_size=12))
def test_any_sequence_of_3pl_messages_keeps_stock_exact(
    x: int, y: int, ops: list[tuple[object, ...]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'p.db'}")
        t.metadata.create_all(engine)
        try:
            _run(engine, x, y, ops)
        finally:
            engine.dispose()


def _run(engine: object, x: int, y: int, ops: list[tuple[object, ...]]) -> None:
    network(engine, STOCK)  # type: ignore[arg-type]
    store = SqlStore(engine)  # type: ignore[arg-type]
    hstore = SqlHandoffStore(store)
    for loc in "abc":
        hstore.set_connection(loc, kind="rest", secret="s" * 20, base_url="http://x", now=T0)
    lines = [("X", x)] + ([("Y", y)] if y else [])
    with store.transaction() as tx:
        oid = orders.receive_order(tx, order(*lines), geocode=geocode, now=T0).order_id
    shipped = 0
    for n, (name, *args) in enumerate(ops):
        now = later(n + 1)
        with hstore.handoff_transaction() as htx:
            live = [
                f
                for f in htx.order_fos(oid)
                if f.status.value not in ("shipped", "rejected", "cancelled")
            ]
        if not live:
            break
        fo = live[0]
        if fo.status.value == "open":  # the sender hands it off when the order is ready
            try:
                with hstore.handoff_transaction() as htx:
                    svc.hand_off(htx, fo.id, now)
            except AomsError:
                pass
        before = snapshot(store)
        try:
            with hstore.handoff_transaction() as htx:
                if name == "ship":
                    sku, q, loc = args
                    res = svc.ship(
                        htx,
                        fo.id,
                        svc.Shipment(
                            f"s{n}",
                            {str(sku): int(q)},
                            now,  # type: ignore[call-overload]
                            str(loc),
                        ),
                        now,
                    )
                    shipped += int(q) if res.changed else 0  # type: ignore[call-overload]
                elif name == "reject":
                    svc.reject(htx, fo.id, args[0], now)  # type: ignore[arg-type]
                else:
                    getattr(svc, str(name))(htx, fo.id, now)
        except AomsError:
            assert snapshot(store) == before, name
        check_invariants(store, shipped)
