"""Random sequences of returns and refunds through the use cases and a real database: a unit is
refunded and restocked at most once, and using up every unit refunds exactly what was paid."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aoms.adapters.db import queries
from aoms.adapters.db.returns import SqlReturnStore
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.errors import ReturnQuantityExceeded
from aoms.domain.money import Money
from aoms.domain.returns import Disposition
from aoms.services import orders, refunds
from aoms.services import returns as svc
from tests.builders import T0, network, order

COUNTER = itertools.count()
LINES = (("P-A", 3, "3.33", "0.50", "0.93"), ("P-B", 2, "19.99", "0", "4.20"))
ORDER_DISCOUNT = "1.01"
# Paid: 3 × 3.33 + 2 × 19.99 − 0.50 − 1.01 + 0.93 + 4.20 = 53.59
PAID = Money.of("53.59", "USD")

Step = tuple[str, int, int]  # (refund | return, line_no, units)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["refund", "return"]), st.sampled_from([1, 2]), st.integers(1, 3)
        ),
        max_size=8,
    )
)
def test_random_returns_and_refunds_never_refund_or_restock_a_unit_twice(
    runtime: Runtime, steps: list[Step]
) -> None:
    n = next(COUNTER)
    with runtime.store.read() as conn:
        fresh = queries.stock_level(conn, "P-A", "a") is None
    if fresh:  # the first example on this database
        network(runtime.engine, {("P-A", "a"): 50, ("P-B", "a"): 50})
    base = order(("P-A", 3), ("P-B", 2), external_id=f"prop-{n}")
    cur = "USD"
    lines = tuple(
        replace(ln, unit_price=Money.of(p, cur), discount=Money.of(d, cur), tax=Money.of(x, cur))
        for ln, (_, _, p, d, x) in zip(base.lines, LINES, strict=True)
    )
    tax = Money.of("5.13", cur)
    placed_order = replace(
        base,
        lines=lines,
        order_discount=Money.of(ORDER_DISCOUNT, cur),
        total_tax=tax,
        total_price=PAID,
    )
    with runtime.store.transaction() as tx:
        order_id = orders.receive_order(tx, placed_order, geocode=geocode, now=T0).order_id
    store = SqlReturnStore(runtime.store)
    with store.writing() as rtx:
        refunds.mark_delivered(
            rtx, order_id, delivered_at=T0, fulfilled_at=None, source="t", now=T0
        )
    with runtime.store.read() as conn:
        before = {s: queries.stock_level(conn, s, "a")["on_hand"] for s in ("P-A", "P-B")}  # type: ignore[index]
    left = {1: 3, 2: 2}
    restocked = {"P-A": 0, "P-B": 0}

    def apply(kind: str, line_no: int, units: int) -> None:
        with store.writing() as rtx:
            if kind == "refund":
                refunds.refund_order(
                    rtx,
                    refunds.RefundOrder(order_id, [refunds.RefundLineRequest(line_no, units, "a")]),
                    now=T0,
                )
                return
            rid = svc.request_return(
                rtx,
                svc.RequestReturn(order_id, [svc.ItemRequest(line_no, units, "changed_mind")]),
                geocode=geocode,
                now=T0,
            )
            svc.receive_return(rtx, rid, location_id="a", geocode=geocode, now=T0)
            record = rtx.get_return(rid)
            assert record is not None
            svc.inspect_return(
                rtx,
                rid,
                [svc.DispositionRequest(record.items[0].id, units, Disposition.RESTOCK)],
                now=T0,
            )

    for kind, line_no, units in steps:
        try:
            apply(kind, line_no, units)
        except ReturnQuantityExceeded:
            assert units > left[line_no]  # refused only when the units are not there
            continue
        assert units <= left[line_no]  # made only when they were
        left[line_no] -= units
        restocked["P-A" if line_no == 1 else "P-B"] += units
    for line_no, units in list(left.items()):  # then refund what is left
        if units:
            apply("refund", line_no, units)
            left[line_no] = 0
            restocked["P-A" if line_no == 1 else "P-B"] += units
    assert left == {1: 0, 2: 0}
    with runtime.store.read() as conn:
        after = {s: queries.stock_level(conn, s, "a")["on_hand"] for s in ("P-A", "P-B")}  # type: ignore[index]
        made = refunds_made(conn, order_id)
    assert {s: after[s] - before[s] for s in after} == restocked == {"P-A": 3, "P-B": 2}
    assert made == PAID.in_minor()


def refunds_made(conn: object, order_id: int) -> int:
    from sqlalchemy import Connection, func, select

    from aoms.adapters.db import schema as t

    assert isinstance(conn, Connection)
    total = conn.execute(
        select(func.sum(t.refunds.c.total_minor)).where(t.refunds.c.order_id == order_id)
    ).scalar()
    return int(total or 0)
