"""The hand-off and the order lifecycle together, on SQLite and PostgreSQL: a held order
does not go to its warehouse, and what a warehouse ships counts as shipped on the order."""

from __future__ import annotations

import pytest

from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.db.lifecycle import SqlLifecycleRepo
from aoms.bootstrap import Runtime
from aoms.domain.errors import Conflict, NotReadyForFulfilment
from aoms.domain.lifecycle import HoldKind
from aoms.services import handoff as svc
from aoms.services import holds
from aoms.services.order_edits import edit_order
from tests.builders import later, network, order
from tests.integration.test_handoff import connect, fos, receive, run


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
