"""Racing 3PL messages over real concurrent connections: a repeated callback applies once, and
a shipment racing a cancellation never both ships and releases the same units."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime
from aoms.domain.errors import AomsError
from aoms.services import handoff as svc
from aoms.services import orders
from tests.builders import T0, later, network, order
from tests.integration.test_handoff import assert_nothing_stuck, stock


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same moment; their results, or the AomsError each raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except AomsError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    return results


def handed_off_orders(rt: Runtime, hstore: SqlHandoffStore, n: int) -> list[int]:
    network(rt.engine, {("X", "a"): 10 * n})
    hstore.set_connection("a", kind="rest", secret="s" * 20, base_url="http://x", now=T0)
    fo_ids = []
    for i in range(n):
        with rt.store.transaction() as tx:
            oid = orders.receive_order(
                tx, order(("X", 2), external_id=str(i)), geocode=geocode, now=T0
            ).order_id
        with hstore.handoff_transaction() as htx:
            [fo] = htx.order_fos(oid)
            svc.hand_off(htx, fo.id, later(1))
        fo_ids.append(fo.id)
    return fo_ids


def test_the_same_callback_delivered_twice_at_once_applies_once(runtime: Runtime) -> None:
    hstore = SqlHandoffStore(runtime.store)
    rounds = 20 if runtime.engine.dialect.name == "postgresql" else 5
    fo_ids = handed_off_orders(runtime, hstore, rounds)
    for fo_id in fo_ids:
        ship = svc.Shipment(f"S-{fo_id}", {"X": 1}, later(2))
        msg = svc.Message(f"evt-{fo_id}", "shipped", fo_id, shipment=ship)

        def apply(m: svc.Message = msg) -> dict[str, Any]:
            with hstore.handoff_transaction() as htx:
                return svc.apply_message(htx, "a", m, later(2))

        outcomes = together(apply, apply)
        assert sorted(o["duplicate"] for o in outcomes) == [False, True], outcomes
    # each order shipped one of its two units, once
    assert stock(runtime) == {("X", "a"): (10 * rounds - rounds, rounds)}
    assert_nothing_stuck(runtime)


def test_a_shipment_racing_a_cancel_confirmation_either_ships_or_releases(
    runtime: Runtime,
) -> None:
    hstore = SqlHandoffStore(runtime.store)
    rounds = 20 if runtime.engine.dialect.name == "postgresql" else 5
    fo_ids = handed_off_orders(runtime, hstore, rounds)
    shipped = 0
    for fo_id in fo_ids:

        def ship(i: int = fo_id) -> svc.Result:
            with hstore.handoff_transaction() as htx:
                return svc.ship(htx, i, svc.Shipment("S", {"X": 2}, later(2)), later(2))

        def cancel(i: int = fo_id) -> svc.Result:
            with hstore.handoff_transaction() as htx:
                return svc.confirm_cancel(htx, i, later(2))

        got = together(ship, cancel)
        status = hstore.fulfilment_order(fo_id)["status"]  # type: ignore[index]
        assert status in ("shipped", "cancelled")
        # the loser was refused (a shipped FO cannot be cancelled, a cancelled one not shipped)
        assert sum(isinstance(g, AomsError) for g in got) == 1, got
        shipped += status == "shipped"
    assert stock(runtime) == {("X", "a"): (10 * rounds - 2 * shipped, 0)}
    assert_nothing_stuck(runtime)
