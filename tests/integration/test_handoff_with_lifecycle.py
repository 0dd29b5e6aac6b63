"""The hand-off and the order lifecycle together, on SQLite and PostgreSQL: a held order
does not go to its warehouse, and what a warehouse ships counts as shipped on the order."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.db.lifecycle import SqlLifecycleRepo
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.errors import Conflict, NotReadyForFulfilment
from aoms.domain.handoff import RejectReason
from aoms.domain.lifecycle import HoldKind
from aoms.domain.orders import OrderStatus
from aoms.services import handoff as svc
from aoms.services import holds, inventory, orders
from aoms.services.order_edits import edit_order
from tests.builders import later, network, order
from tests.integration.test_handoff import (
    active_reservations,
    assert_nothing_stuck,
    connect,
    fos,
    receive,
    run,
    stock,
)


@pytest.fixture
def hstore(runtime: Runtime) -> SqlHandoffStore:
    return SqlHandoffStore(runtime.store)


def test_an_order_on_hold_is_not_handed_off_until_the_hold_is_released(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 1)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    with runtime.store.transaction() as tx:
        hold_id = holds.place_hold(
            SqlLifecycleRepo(tx), oid, HoldKind.MANUAL_REVIEW, "looks odd", now=later(1)
        )
    assert hold_id is not None
    assert hstore.fos_to_claim(10) == []  # the hand-off loop does not even look at it
    with pytest.raises(NotReadyForFulfilment, match="on hold \\(manual_review\\)"):
        run(hstore, svc.hand_off, fo_id, later(2))
    assert run(hstore, svc.claim, fo_id, later(2)) is None
    assert fos(runtime, oid)[0][2] == "open"
    with runtime.store.transaction() as tx:
        holds.release_hold(SqlLifecycleRepo(tx), hold_id, actor="ops", note="fine", now=later(3))
    assert hstore.fos_to_claim(10) == [fo_id]
    assert run(hstore, svc.claim, fo_id, later(4)) is not None
    assert fos(runtime, oid)[0][2] == "requested"


def test_units_a_warehouse_shipped_cannot_be_edited_away(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 3)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    run(hstore, svc.hand_off, fo_id, later(1))
    run(hstore, svc.accept, fo_id, later(2))
    run(hstore, svc.ship, fo_id, svc.Shipment("s-1", {"X": 2}, later(3)), later(3))
    with runtime.store.transaction() as tx, pytest.raises(Conflict) as refused:
        edit_order(SqlLifecycleRepo(tx), oid, quantities={1: 1}, actor="ops", now=later(4))
    assert refused.value.code == "quantity_below_shipped"


def test_routing_an_order_again_leaves_what_a_warehouse_has_where_it_is(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    # X at A, Y at B: two fulfilment orders, both handed off. A accepts; B rejects (not in
    # stock) and the Y has nowhere else to go, so the order waits. When 3 Y arrive at C, only
    # the Y is routed (to C): A's X stays reserved once, its fulfilment order accepted.
    network(runtime.engine, {("X", "a"): 5, ("Y", "b"): 1, ("Y", "c"): 0})
    connect(runtime, hstore, "a", "b")
    oid = receive(runtime, order(("X", 1), ("Y", 1)))
    by_loc = {loc: fo_id for fo_id, loc, _, _ in fos(runtime, oid)}
    for fo_id in by_loc.values():
        run(hstore, svc.hand_off, fo_id, later(1))
    run(hstore, svc.accept, by_loc["a"], later(2))
    rejected = run(hstore, svc.reject, by_loc["b"], RejectReason.NOT_IN_STOCK, later(2))
    assert rejected.order_status == "backordered"
    with runtime.store.transaction() as tx:
        inventory.adjust_stock(tx, sku="Y", location_id="c", reason="receipt", delta=3,
                               now=later(3))  # fmt: skip
    result = orders.retry_waiting(runtime.store, geocode=geocode, clock=lambda: later(4),
                                  status=OrderStatus.BACKORDERED, sku="Y")  # fmt: skip
    assert result == {"routed": 1}
    assert [(loc, status, items) for _, loc, status, items in fos(runtime, oid)] == [
        ("a", "accepted", {"X": 1}),
        ("b", "rejected", {"Y": 1}),
        ("c", "open", {"Y": 1}),
    ]
    assert active_reservations(runtime) == {("X", "a"): 1, ("Y", "c"): 1}
    assert_nothing_stuck(runtime)


def test_a_channel_cancellation_after_the_hand_off_asks_the_warehouse_to_stop(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 2)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    run(hstore, svc.hand_off, fo_id, later(1))
    run(hstore, svc.accept, fo_id, later(2))
    with runtime.store.transaction() as tx:
        assert orders.cancel(tx, oid, at=later(3), now=later(3)) is OrderStatus.CANCELLED
    # The warehouse has the 2 X until it confirms it stopped: they stay reserved meanwhile.
    assert fos(runtime, oid)[0][2] == "cancel_requested"
    assert active_reservations(runtime) == {("X", "a"): 2}
    run(hstore, svc.confirm_cancel, fo_id, later(4))
    assert fos(runtime, oid)[0][2] == "cancelled"
    assert active_reservations(runtime) == {}
    assert_nothing_stuck(runtime)


def test_a_channel_edit_of_what_a_warehouse_has_changes_no_stock_and_says_so(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 2)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    run(hstore, svc.hand_off, fo_id, later(1))
    receive(runtime, order(("X", 3), updated=later(2)))  # the channel says 3 now
    assert active_reservations(runtime) == {("X", "a"): 2}
    assert [(loc, status) for _, loc, status, _ in fos(runtime, oid)] == [("a", "requested")]
    with runtime.store.read() as conn:
        names = [n for (n,) in conn.execute(select(t.outbox.c.name).order_by(t.outbox.c.id))]
    assert "order.changed_after_handoff" in names


def test_an_edit_after_a_split_takes_units_off_both_parts_and_cancels_the_one_it_empties(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 3)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    [part] = run(hstore, svc.split, fo_id, {"X": 1}, later(1)).new_fo_ids
    with runtime.store.transaction() as tx:
        edit_order(SqlLifecycleRepo(tx), oid, quantities={1: 1}, actor="ops", now=later(2))
    # 2 of the 3 X cut, newest part first: the split-off part (1) is emptied and cancelled,
    # the original (2) keeps 1. A holds 10 on hand and now 1 reserved.
    assert [(i, status, items) for i, _, status, items in fos(runtime, oid)] == [
        (fo_id, "open", {"X": 1}),
        (part, "cancelled", {}),
    ]
    assert active_reservations(runtime) == {("X", "a"): 1}
    assert_nothing_stuck(runtime)
    o = t.outbox.c
    with runtime.store.read() as conn:  # the one part left is the order's one shipment
        shipments = select(t.orders.c.shipments).where(t.orders.c.id == oid)
        assert conn.execute(shipments).scalar_one() == 1
    with runtime.store.read() as conn:
        cancelled = (
            conn.execute(select(o.data).where(o.name == "fulfilment_order.cancelled"))
            .scalars()
            .all()
        )
    assert cancelled == [{"fulfilment_order_id": part, "location_id": "a", "released": {"X": 1}}]
    # Its recorded lines say the same as its items: the 3PL is asked for 1 X.
    request = run(hstore, svc.hand_off, fo_id, later(3))
    assert request.lines == [{"line_no": 1, "sku": "X", "quantity": 1}]


def _hold(runtime: Runtime, oid: int, at: int) -> int:
    with runtime.store.transaction() as tx:
        hold_id = holds.place_hold(
            SqlLifecycleRepo(tx), oid, HoldKind.HIGH_FRAUD_RISK, "chargeback", now=later(at)
        )
    assert hold_id is not None
    return hold_id


def _release(runtime: Runtime, hold_id: int, at: int) -> None:
    with runtime.store.transaction() as tx:
        holds.release_hold(SqlLifecycleRepo(tx), hold_id, actor="ann", note="ok", now=later(at))


def test_a_hold_after_hand_off_stops_the_3pl_and_the_units_go_again_once_released(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 2)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    run(hstore, svc.hand_off, fo_id, later(1))
    run(hstore, svc.accept, fo_id, later(2))
    hold_id = _hold(runtime, oid, 3)
    # The 3PL is asked to stop; until it confirms, its 2 units stay reserved (it may be packing).
    assert fos(runtime, oid) == [(fo_id, "a", "cancel_requested", {"X": 2})]
    assert stock(runtime)[("X", "a")] == (10, 2)
    assert hstore.cancels_to_deliver(later(3), 10) == [fo_id]
    # It confirms: the 2 are released and reserved again at once (the order still wants them,
    # and a held order's stock is protected), in a new FO that waits for the hold.
    result = run(hstore, svc.confirm_cancel, fo_id, later(4))
    [(_, _, _, _), (new_fo, loc, status, items)] = fos(runtime, oid)
    assert (result.new_fo_ids, loc, status, items) == ([new_fo], "a", "open", {"X": 2})
    assert stock(runtime)[("X", "a")] == (10, 2)  # 2 released, the same 2 reserved again
    assert_nothing_stuck(runtime)
    assert hstore.fos_to_claim(10) == []  # held: it does not go yet
    _release(runtime, hold_id, 5)
    assert hstore.fos_to_claim(10) == [new_fo]
    assert run(hstore, svc.claim, new_fo, later(6)) is not None
    assert stock(runtime)[("X", "a")] == (10, 2)


def test_a_hold_released_before_the_3pl_confirms_sends_the_units_when_it_does(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 3)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    run(hstore, svc.hand_off, fo_id, later(1))
    run(hstore, svc.ship, fo_id, svc.Shipment("s-1", {"X": 1}, later(2)), later(2))
    _release(runtime, _hold(runtime, oid, 3), 4)
    assert fos(runtime, oid)[0][2] == "cancel_requested"  # the request stands
    assert stock(runtime)[("X", "a")] == (9, 2)  # 1 left; 2 the 3PL may still ship
    run(hstore, svc.confirm_cancel, fo_id, later(5))
    # The 2 it did not ship go again, at once: no hold is open.
    [_, (new_fo, _, _, items)] = fos(runtime, oid)
    assert items == {"X": 2}
    assert hstore.fos_to_claim(10) == [new_fo]
    assert stock(runtime)[("X", "a")] == (9, 2)
    assert_nothing_stuck(runtime)


def test_a_3pl_that_cannot_stop_ships_and_nothing_is_routed_again(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 2)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    run(hstore, svc.hand_off, fo_id, later(1))
    run(hstore, svc.accept, fo_id, later(2))
    _hold(runtime, oid, 3)
    run(hstore, svc.refuse_cancel, fo_id, later(4), "already packed")
    assert fos(runtime, oid) == [(fo_id, "a", "accepted", {"X": 2})]
    run(hstore, svc.ship, fo_id, svc.Shipment("s-1", {"X": 2}, later(5)), later(5))
    assert stock(runtime)[("X", "a")] == (8, 0)
    assert [f[2] for f in fos(runtime, oid)] == ["shipped"]


def test_routing_again_after_a_partly_shipped_fo_was_cancelled_leaves_what_shipped_shipped(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 3)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    run(hstore, svc.hand_off, fo_id, later(1))
    run(hstore, svc.ship, fo_id, svc.Shipment("s-1", {"X": 1}, later(2)), later(2))
    run(hstore, svc.request_cancel, fo_id, later(3))
    run(hstore, svc.confirm_cancel, fo_id, later(4))  # no hold asked: nothing is routed yet
    assert stock(runtime)[("X", "a")] == (9, 0)
    assert len(fos(runtime, oid)) == 1
    assert run(hstore, svc.route_rest, oid, later(5)) is OrderStatus.ROUTED
    # 1 of the 3 left under the cancelled FO: only the other 2 are routed again.
    assert [f[3] for f in fos(runtime, oid)][1:] == [{"X": 2}]
    assert stock(runtime)[("X", "a")] == (9, 2)
    assert_nothing_stuck(runtime)
