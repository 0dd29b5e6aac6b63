"""Fulfilment orders after hand-off — partial shipments, cancellation, shipping from another
location, rejections that route the lines again — on SQLite and PostgreSQL.

The network (tests.builders): A 50 km from the customer, B 80 km, C 700 km; every order goes
to the nearest location that has all of it. Expected numbers are worked out by hand in each
test from the counts it sets up.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from aoms.adapters.db import schema as t
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.errors import Conflict, InvalidTransition, NotReadyForFulfilment, OverShipment
from aoms.domain.handoff import FoStatus, RejectReason
from aoms.domain.orders import OrderStatus
from aoms.services import handoff as svc
from aoms.services import orders
from tests.builders import T0, later, network, order


def receive(rt: Runtime, o: Any) -> int:
    with rt.store.transaction() as tx:
        return orders.receive_order(tx, o, geocode=geocode, now=T0).order_id


def stock(rt: Runtime) -> dict[tuple[str, str], tuple[int, int]]:
    """(sku, location) -> (on_hand, reserved) of every stock row."""
    s = t.stock_levels.c
    with rt.store.read() as conn:
        rows = conn.execute(select(s.sku, s.location_id, s.on_hand, s.reserved)).all()
    return {(r.sku, r.location_id): (r.on_hand, r.reserved) for r in rows}


def active_reservations(rt: Runtime) -> dict[tuple[str, str], int]:
    r = t.reservations.c
    with rt.store.read() as conn:
        rows = conn.execute(
            select(r.sku, r.location_id, func.sum(r.quantity))
            .where(r.status == "active")
            .group_by(r.sku, r.location_id)
        ).all()
    return {(sku, loc): int(q) for sku, loc, q in rows}


def assert_nothing_stuck(rt: Runtime) -> None:
    """Every location's reserved count is exactly what its active reservations add up to."""
    held = active_reservations(rt)
    for key, (_, reserved) in stock(rt).items():
        assert reserved == held.get(key, 0), key


def movements(rt: Runtime) -> int:
    with rt.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.stock_movements)).scalar_one())


def fos(rt: Runtime, order_id: int) -> list[tuple[int, str, str, dict[str, int]]]:
    f = t.fulfilment_orders.c
    with rt.store.read() as conn:
        rows = conn.execute(
            select(f.id, f.location_id, f.status, f["items"])
            .where(f.order_id == order_id)
            .order_by(f.id)
        ).all()
    return [(r.id, r.location_id, r.status, dict(r.items)) for r in rows]


@pytest.fixture
def hstore(runtime: Runtime) -> SqlHandoffStore:
    store = SqlHandoffStore(runtime.store)
    return store


def connect(rt: Runtime, hstore: SqlHandoffStore, *locations: str) -> None:
    for loc in locations:
        hstore.set_connection(loc, kind="rest", secret="s" * 24, base_url="http://x", now=T0)


def run(hstore: SqlHandoffStore, fn: Any, *args: Any, **kw: Any) -> Any:
    with hstore.handoff_transaction() as htx:
        return fn(htx, *args, **kw)


def handed_off(rt: Runtime, hstore: SqlHandoffStore, order_id: int) -> int:
    """Hand the order's one FO off and have the 3PL accept it; its id."""
    [(fo_id, loc, status, _)] = fos(rt, order_id)
    assert status == "open"
    request = run(hstore, svc.hand_off, fo_id, later(1))
    assert request.location_id == loc
    run(hstore, svc.accept, fo_id, later(2))
    return int(fo_id)


def test_an_order_partly_shipped_then_the_rest_cancelled_changes_only_its_own_stock(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("Y", "a"): 5, ("X", "b"): 4})
    connect(runtime, hstore, "a")
    other = receive(runtime, order(("X", 1), external_id="other"))  # holds 1 X at A
    oid = receive(runtime, order(("X", 3), ("Y", 2)))
    assert stock(runtime)[("X", "a")] == (10, 4)
    fo_id = handed_off(runtime, hstore, oid)

    shipped = svc.Shipment("s-1", {"X": 1}, later(3), tracking_number="1Z999")
    assert run(hstore, svc.ship, fo_id, shipped, later(3)).status is FoStatus.PARTLY_SHIPPED
    asked = run(hstore, svc.request_cancel, fo_id, later(4))
    assert (asked.status, asked.changed) == (FoStatus.CANCEL_REQUESTED, True)
    assert stock(runtime)[("X", "a")] == (9, 3)  # nothing released before the 3PL confirms
    done = run(hstore, svc.confirm_cancel, fo_id, later(5))
    assert done.status is FoStatus.CANCELLED

    # The shipped X left on_hand (10 → 9); the 2 X and 2 Y not shipped are released; the
    # other order's 1 X stays reserved; B is untouched.
    assert stock(runtime) == {("X", "a"): (9, 1), ("Y", "a"): (5, 0), ("X", "b"): (4, 0)}
    r = t.reservations.c
    with runtime.store.read() as conn:
        rows = conn.execute(
            select(r.order_id, r.sku, r.status, func.sum(r.quantity))
            .group_by(r.order_id, r.sku, r.status)
            .order_by(r.order_id, r.sku, r.status)
        ).all()
    assert [tuple(x) for x in rows] == [
        (other, "X", "active", 1),
        (oid, "X", "released", 2),
        (oid, "X", "shipped", 1),
        (oid, "Y", "released", 2),
    ]
    detail = hstore.fulfilment_order(fo_id)
    assert detail is not None
    assert [(x["sku"], x["shipped"], x["closed"]) for x in detail["lines"]] == [
        ("X", 1, 2),
        ("Y", 0, 2),
    ]
    assert detail["shipments"][0]["tracking_number"] == "1Z999"
    assert_nothing_stuck(runtime)


def test_a_fulfilment_cancelled_twice_changes_nothing_the_second_time_and_says_so(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 2)))
    fo_id = handed_off(runtime, hstore, oid)
    run(hstore, svc.request_cancel, fo_id, later(3))
    again = run(hstore, svc.request_cancel, fo_id, later(4))
    assert (again.changed, again.detail) == (
        False,
        "cancellation already requested; waiting for the 3PL",
    )
    run(hstore, svc.confirm_cancel, fo_id, later(5))
    before = (stock(runtime), movements(runtime))
    assert before[0] == {("X", "a"): (5, 0)}

    twice = run(hstore, svc.confirm_cancel, fo_id, later(6))
    assert (twice.status, twice.changed) == (FoStatus.CANCELLED, False)
    assert "already cancelled" in twice.detail
    thrice = run(hstore, svc.request_cancel, fo_id, later(7))
    assert (thrice.changed, thrice.detail) == (False, "already cancelled")
    assert (stock(runtime), movements(runtime)) == before


def test_an_fo_not_handed_off_is_cancelled_at_once_and_only_once(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    oid = receive(runtime, order(("X", 2)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    first = run(hstore, svc.request_cancel, fo_id, later(1))
    assert (first.status, first.changed) == (FoStatus.CANCELLED, True)
    count = movements(runtime)
    second = run(hstore, svc.request_cancel, fo_id, later(2))
    assert (second.changed, movements(runtime)) == (False, count)
    assert stock(runtime) == {("X", "a"): (5, 0)}


def test_shipping_from_another_location_moves_the_reservation_and_leaves_none_stuck(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("X", "b"): 4})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 3)))
    fo_id = handed_off(runtime, hstore, oid)
    assert stock(runtime) == {("X", "a"): (10, 3), ("X", "b"): (4, 0)}

    result = run(hstore, svc.ship, fo_id, svc.Shipment("s-9", {"X": 3}, later(3), "b"), later(3))
    assert result.status is FoStatus.SHIPPED
    # A's 3 reserved are gone and A still has its 10; the 3 units left B's shelf.
    assert stock(runtime) == {("X", "a"): (10, 0), ("X", "b"): (1, 0)}
    assert active_reservations(runtime) == {}
    assert_nothing_stuck(runtime)
    m = t.stock_movements.c
    with runtime.store.read() as conn:
        moved = conn.execute(
            select(m.location_id, m.on_hand_delta, m.reserved_delta, m.reason)
            .where(m.reference == f"fulfilment_order:{fo_id}")
            .order_by(m.id)
        ).all()
    assert [tuple(x) for x in moved] == [("a", 0, -3, "reservation_moved"), ("b", -3, 0, "ship")]
    # a repeat of the same shipment is recorded once
    again = run(hstore, svc.ship, fo_id, svc.Shipment("s-9", {"X": 3}, later(3), "b"), later(4))
    assert again.changed is False
    assert stock(runtime) == {("X", "a"): (10, 0), ("X", "b"): (1, 0)}


def test_a_split_shipment_from_two_locations_consumes_the_whole_reservation(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("X", "b"): 4})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 3)))
    fo_id = handed_off(runtime, hstore, oid)
    run(hstore, svc.ship, fo_id, svc.Shipment("s-1", {"X": 1}, later(3)), later(3))
    before = (stock(runtime), movements(runtime))
    with pytest.raises(OverShipment):  # 2 are still expected, not 3; nothing is written
        run(hstore, svc.ship, fo_id, svc.Shipment("s-2", {"X": 3}, later(4)), later(4))
    assert (stock(runtime), movements(runtime)) == before
    run(hstore, svc.ship, fo_id, svc.Shipment("s-2", {"X": 2}, later(4), "b"), later(4))
    assert stock(runtime) == {("X", "a"): (9, 0), ("X", "b"): (2, 0)}
    assert hstore.fulfilment_order(fo_id)["status"] == "shipped"  # type: ignore[index]
    with pytest.raises(Conflict):
        run(hstore, svc.ship, fo_id, svc.Shipment("s-3", {"X": 1}, later(5)), later(5))
    assert_nothing_stuck(runtime)


def test_a_3pl_rejecting_not_in_stock_zeroes_available_and_routes_to_the_next_best(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(
        runtime.engine,
        {("X", "a"): 10, ("Y", "a"): 5, ("X", "b"): 3, ("Y", "b"): 3, ("X", "c"): 9, ("Y", "c"): 9},
    )
    connect(runtime, hstore, "a", "b")
    other = receive(runtime, order(("X", 1), external_id="other"))  # 1 X held at A
    oid = receive(runtime, order(("X", 2), ("Y", 1)))
    fo_id = handed_off(runtime, hstore, oid)

    result = run(hstore, svc.reject, fo_id, RejectReason.NOT_IN_STOCK, later(3))
    assert result.status is FoStatus.REJECTED
    # A: X on_hand 10 → 1 (just the other order's reserved unit: available 0); Y 5 → 0.
    # The lines go to B, the next nearest with both SKUs, in the same transaction.
    assert stock(runtime) == {
        ("X", "a"): (1, 1),
        ("Y", "a"): (0, 0),
        ("X", "b"): (3, 2),
        ("Y", "b"): (3, 1),
        ("X", "c"): (9, 0),
        ("Y", "c"): (9, 0),
    }
    after = fos(runtime, oid)
    assert [(loc, status, items) for _, loc, status, items in after] == [
        ("a", "rejected", {"X": 2, "Y": 1}),
        ("b", "open", {"X": 2, "Y": 1}),
    ]
    assert result.new_fo_ids == [after[1][0]]
    assert result.order_status == OrderStatus.ROUTED.value
    with runtime.store.transaction() as tx:
        assert svc.ready_for_fulfilment(tx, oid).ready
        assert tx.get_order(other) is not None
    assert_nothing_stuck(runtime)
    # a repeat of the rejection changes nothing
    count = movements(runtime)
    again = run(hstore, svc.reject, fo_id, RejectReason.NOT_IN_STOCK, later(4))
    assert (again.changed, movements(runtime)) == (False, count)


def test_a_rejection_whose_transaction_fails_leaves_stock_and_routing_as_they_were(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("X", "b"): 3})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 2)))
    fo_id = handed_off(runtime, hstore, oid)
    before = (stock(runtime), fos(runtime, oid), movements(runtime))

    class Boom(Exception):
        pass

    with pytest.raises(Boom), hstore.handoff_transaction() as htx:
        svc.reject(htx, fo_id, RejectReason.NOT_IN_STOCK, later(3))
        raise Boom
    assert (stock(runtime), fos(runtime, oid), movements(runtime)) == before


def test_damaged_units_leave_on_hand_and_the_rest_is_routed_again(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("X", "b"): 3})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 3)))
    fo_id = handed_off(runtime, hstore, oid)
    run(hstore, svc.reject, fo_id, RejectReason.DAMAGED, later(3), units={"X": 2})
    # 2 damaged units are off A's on_hand (10 → 8); the 3 are reserved at B.
    assert stock(runtime) == {("X", "a"): (8, 0), ("X", "b"): (3, 3)}
    m = t.stock_movements.c
    with runtime.store.read() as conn:
        reasons = conn.execute(
            select(m.reason, m.on_hand_delta).where(m.reason == "damaged_unsellable")
        ).all()
    assert [tuple(x) for x in reasons] == [("damaged_unsellable", -2)]
    assert_nothing_stuck(runtime)


def test_a_rejection_with_nowhere_else_to_go_backorders_the_order(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 2)))
    fo_id = handed_off(runtime, hstore, oid)
    result = run(hstore, svc.reject, fo_id, RejectReason.ADDRESS_UNSERVICEABLE, later(3))
    assert result.order_status == OrderStatus.BACKORDERED.value
    assert stock(runtime) == {("X", "a"): (10, 0)}  # this reason changes no stock
    with runtime.store.transaction() as tx:
        readiness = svc.ready_for_fulfilment(tx, oid)
    assert not readiness.ready and "backordered" in readiness.reason


def test_a_late_acceptance_cannot_take_a_shipped_fo_backwards(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 1)))
    fo_id = handed_off(runtime, hstore, oid)
    run(hstore, svc.ship, fo_id, svc.Shipment("s", {"X": 1}, later(3)), later(3))
    assert run(hstore, svc.accept, fo_id, later(4)).changed is False
    with pytest.raises(InvalidTransition):
        run(hstore, svc.reject, fo_id, RejectReason.OTHER, later(4))


def test_a_cancelled_order_is_not_handed_off(runtime: Runtime, hstore: SqlHandoffStore) -> None:
    network(runtime.engine, {("X", "a"): 10})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 1)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    with runtime.store.transaction() as tx:
        orders.cancel_order(tx, oid, now=later(1))
    with pytest.raises(NotReadyForFulfilment):
        run(hstore, svc.hand_off, fo_id, later(2))
    assert hstore.fos_to_claim(10) == []


def test_split_then_merge_keeps_the_reservation_where_it_was(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("Y", "a"): 10})
    oid = receive(runtime, order(("X", 3), ("Y", 2)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    split = run(hstore, svc.split, fo_id, {"X": 1, "Y": 2}, later(1))
    [new_id] = split.new_fo_ids
    assert stock(runtime) == {("X", "a"): (10, 3), ("Y", "a"): (10, 2)}
    lines = {
        i: [(x["sku"], x["remaining"]) for x in hstore.fulfilment_order(i)["lines"]]  # type: ignore[index]
        for i in (fo_id, new_id)
    }
    assert lines == {fo_id: [("X", 2), ("Y", 0)], new_id: [("X", 1), ("Y", 2)]}
    merged = run(hstore, svc.merge, [fo_id, new_id], later(2))
    detail = hstore.fulfilment_order(merged.fo_id)
    assert detail is not None and detail["items"] == {"X": 3, "Y": 2}
    assert [s for _, _, s, _ in fos(runtime, oid)] == ["cancelled", "cancelled", "open"]
    # the merged FO ships and consumes exactly the order's reservation
    connect(runtime, hstore, "a")
    run(hstore, svc.hand_off, merged.fo_id, later(3))
    ship = svc.Shipment("s", {"X": 3, "Y": 2}, later(4))
    assert run(hstore, svc.ship, merged.fo_id, ship, later(4)).status is FoStatus.SHIPPED
    assert stock(runtime) == {("X", "a"): (7, 0), ("Y", "a"): (8, 0)}
    assert_nothing_stuck(runtime)


def test_a_rejection_also_replans_the_orders_fos_not_handed_off_even_at_that_location(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("X", "b"): 10})
    connect(runtime, hstore, "a")
    oid = receive(runtime, order(("X", 3)))
    [(fo_id, _, _, _)] = fos(runtime, oid)
    [kept] = run(hstore, svc.split, fo_id, {"X": 1}, later(1)).new_fo_ids  # stays open
    run(hstore, svc.hand_off, fo_id, later(2))
    run(hstore, svc.reject, fo_id, RejectReason.NOT_IN_STOCK, later(3))
    # Both parts leave A, whose X is now 0 available (on_hand 0: nothing else holds any);
    # all 3 units are reserved at B in one new FO.
    assert stock(runtime) == {("X", "a"): (0, 0), ("X", "b"): (10, 3)}
    assert [(i, loc, s, items) for i, loc, s, items in fos(runtime, oid)][1:] == [
        (kept, "a", "cancelled", {"X": 1}),
        (kept + 1, "b", "open", {"X": 3}),
    ]
    assert_nothing_stuck(runtime)
