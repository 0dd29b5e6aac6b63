"""The dashboard's figures (dashboard) for orders whose fulfilment orders went on to a 3PL
(hand-off), on SQLite and PostgreSQL: a handed-off order still counts in the cost per order.
"""

from __future__ import annotations

import pytest

from aoms.adapters.db.dashboard import overview
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.bootstrap import Runtime
from aoms.services import handoff as svc
from tests.builders import T0, later, network, order
from tests.integration.test_handoff import connect, handed_off, receive, run


@pytest.fixture
def hstore(runtime: Runtime) -> SqlHandoffStore:
    return SqlHandoffStore(runtime.store)


def cost_per_order(runtime: Runtime) -> str | None:
    with runtime.store.read() as conn:
        value: str | None = overview(conn, now=later(30))["cost_per_order"]
    return value


def test_cost_per_order_does_not_forget_orders_once_they_are_handed_off(
    runtime: Runtime, hstore: SqlHandoffStore
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    connect(runtime, hstore, "a")
    # Two X of 500 g (1 kg) from A, 50 km away: the card's 0-100 km, up to 1 kg price 4.00,
    # plus A's handling 1.50: 5.50 for the one order.
    oid = receive(runtime, order(("X", 2)))
    assert T0.date() == later(30).date()
    assert cost_per_order(runtime) == "5.50"
    fo_id = handed_off(runtime, hstore, oid)  # requested, then accepted
    assert cost_per_order(runtime) == "5.50"
    run(hstore, svc.ship, fo_id, svc.Shipment("s-1", {"X": 2}, later(3)), later(3))
    assert cost_per_order(runtime) == "5.50"
