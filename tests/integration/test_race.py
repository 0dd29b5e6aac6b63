"""Racing reservations never oversell: real concurrent connections."""

from __future__ import annotations

import threading
from functools import partial

from aoms.adapters.db import queries
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.orders import OrderStatus
from aoms.services import orders
from tests.builders import T0, later, network, order


def race(rt: Runtime, sku: str, ids: list[str]) -> list[OrderStatus]:
    """Place one order of one unit per id, all at the same moment."""
    results: dict[str, OrderStatus] = {}

    def place(external_id: str) -> None:
        with rt.store.transaction() as tx:
            got = orders.receive_order(
                tx, order((sku, 1), external_id=external_id), geocode=geocode, now=T0
            )
        results[external_id] = got.status

    _together(*(lambda i=i: place(i) for i in ids))
    return [results[i] for i in ids]


def test_two_orders_race_for_the_last_unit_and_exactly_one_wins(runtime: Runtime) -> None:
    rounds = 200 if runtime.engine.dialect.name == "postgresql" else 50
    network(runtime.engine, {(f"LAST-{n}", "a"): 1 for n in range(rounds)})
    for n in range(rounds):
        statuses = race(runtime, f"LAST-{n}", [f"{n}-a", f"{n}-b"])
        assert sorted(statuses) == [OrderStatus.BACKORDERED, OrderStatus.ROUTED], n
        with runtime.store.read() as conn:
            lv = queries.stock_level(conn, f"LAST-{n}", "a")
        assert lv is not None and lv["available"] == 0 and lv["reserved"] == 1


def test_two_orders_of_one_unit_from_five_both_count(runtime: Runtime) -> None:
    rounds = 50
    network(runtime.engine, {(f"FIVE-{n}", "a"): 5 for n in range(rounds)})
    for n in range(rounds):
        assert race(runtime, f"FIVE-{n}", [f"{n}-a", f"{n}-b"]) == [OrderStatus.ROUTED] * 2
        with runtime.store.read() as conn:
            lv = queries.stock_level(conn, f"FIVE-{n}", "a")
        assert lv is not None and lv["reserved"] == 2 and lv["available"] == 3


def _together(*calls):  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call):  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors


def test_two_cancels_of_one_order_at_once_release_its_stock_once(runtime: Runtime) -> None:
    rounds = 40
    network(runtime.engine, {(f"C-{n}", "a"): 2 for n in range(rounds)})
    for n in range(rounds):
        with runtime.store.transaction() as tx:
            placed = orders.receive_order(tx, order((f"C-{n}", 1), external_id=f"c{n}"),
                                          geocode=geocode, now=T0)  # fmt: skip

        def cancel(order_id: int = placed.order_id) -> None:
            with runtime.store.transaction() as tx:
                orders.cancel_order(tx, order_id, now=later(1))

        _together(cancel, cancel)
        with runtime.store.read() as conn:
            lv = queries.stock_level(conn, f"C-{n}", "a")
        assert lv is not None and (lv["reserved"], lv["available"]) == (0, 2), n


def test_an_older_update_racing_a_newer_cancel_leaves_the_order_cancelled(
    runtime: Runtime,
) -> None:
    rounds = 40
    network(runtime.engine, {(f"U-{n}", "a"): 5 for n in range(rounds)})
    for n in range(rounds):
        sku, ext = f"U-{n}", f"u{n}"
        with runtime.store.transaction() as tx:
            orders.receive_order(tx, order((sku, 1), external_id=ext), geocode=geocode, now=T0)

        def apply(o) -> None:  # type: ignore[no-untyped-def]
            with runtime.store.transaction() as tx:
                orders.receive_order(tx, o, geocode=geocode, now=T0)

        update = order((sku, 2), external_id=ext, updated=later(1))
        cancel = order((sku, 1), external_id=ext, updated=later(2), cancelled_at=later(2))
        _together(lambda u=update: apply(u), lambda c=cancel: apply(c))
        with runtime.store.read() as conn:
            lv = queries.stock_level(conn, sku, "a")
            found, _ = queries.list_orders(conn, name=f"#{ext}")
            detail = queries.order_detail(conn, found[0]["id"])
        assert detail["status"] == "cancelled", n
        assert lv is not None and lv["reserved"] == 0, n
        assert [f for f in detail["fulfilment_orders"] if f["status"] == "open"] == [], n


def test_orders_routed_again_at_once_do_not_deadlock(runtime: Runtime) -> None:
    rounds = 30
    stock = {}
    for n in range(rounds):
        stock |= {(f"A-{n}", "a"): 10, (f"B-{n}", "a"): 10}
    network(runtime.engine, stock)
    for n in range(rounds):
        a, b = f"A-{n}", f"B-{n}"
        for ext, sku in ((f"p{n}", a), (f"q{n}", b)):
            with runtime.store.transaction() as tx:
                orders.receive_order(tx, order((sku, 1), external_id=ext), geocode=geocode,
                                     now=T0)  # fmt: skip

        def grow(ext: str, first: str, second: str) -> None:
            # Holds `first`, now wants `second` too: release and lock both.
            with runtime.store.transaction() as tx:
                newer = order((first, 1), (second, 1), external_id=ext, updated=later(1))
                orders.receive_order(tx, newer, geocode=geocode, now=T0)

        _together(partial(grow, f"p{n}", a, b), partial(grow, f"q{n}", b, a))
        with runtime.store.read() as conn:
            levels = [queries.stock_level(conn, sku, "a") for sku in (a, b)]
        assert [lv["reserved"] for lv in levels if lv] == [2, 2], n
