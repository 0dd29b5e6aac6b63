"""Racing reservations never oversell: real concurrent connections."""

from __future__ import annotations

import threading

from aoms.adapters.db import queries
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.orders import OrderStatus
from aoms.services import orders
from tests.builders import T0, network, order


def race(rt: Runtime, sku: str, ids: list[str]) -> list[OrderStatus]:
    barrier = threading.Barrier(len(ids))
    results: dict[str, OrderStatus] = {}
    errors: list[BaseException] = []

    def place(external_id: str) -> None:
        try:
            barrier.wait()
            with rt.store.transaction() as tx:
                got = orders.receive_order(
                    tx, order((sku, 1), external_id=external_id), geocode=geocode, now=T0
                )
            results[external_id] = got.status
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=place, args=(i,)) for i in ids]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
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
