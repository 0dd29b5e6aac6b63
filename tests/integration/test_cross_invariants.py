"""The stock invariants and the hash-chained ledger after a mix of every feature's stock
writers — hand-off shipments, a rejection for damage routed again, a cancellation, an order
edit, a return restocked, a refund restocked, a warehouse count — on SQLite and PostgreSQL.

`aoms ledger check-stock` (stock_checks over SqlStockCheck) must find no breach, every stock
movement must be chained in the ledger, and each location's on_hand must equal what this test
works out by hand from the units that came in and went out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from aoms.adapters.db import ledger
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.db.lifecycle import SqlStockCheck
from aoms.bootstrap import Runtime
from aoms.domain.handoff import RejectReason
from aoms.entrypoints.api.app import create_app
from aoms.services import handoff as svc
from aoms.services.stock_checks import check_stock
from tests.builders import later, network, order
from tests.integration.test_handoff import (
    assert_nothing_stuck,
    connect,
    fos,
    handed_off,
    receive,
    run,
    stock,
)


@pytest.fixture
def hstore(runtime: Runtime) -> SqlHandoffStore:
    return SqlHandoffStore(runtime.store)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: later(60)
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def ok(answer: object, status: int = 200) -> dict[str, object]:
    assert getattr(answer, "status_code", None) == status, getattr(answer, "text", answer)
    body: dict[str, object] = answer.json()  # type: ignore[attr-defined]
    return body


def test_every_writer_keeps_the_counters_and_the_ledger_whole(
    runtime: Runtime, hstore: SqlHandoffStore, client: TestClient
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("X", "b"): 10, ("Y", "a"): 5})
    connect(runtime, hstore, "a", "b")

    # 1. Order 1 (3 X) at A: the 3PL ships 2, then the last one is rejected as damaged and
    #    routed to B, which ships it. A: 10 - 2 shipped - 1 damaged = 7. B: 10 - 1 = 9.
    one = receive(runtime, order(("X", 3), external_id="1"))
    fo1 = handed_off(runtime, hstore, one)
    run(hstore, svc.ship, fo1, svc.Shipment("s-1", {"X": 2}, later(3)), later(3))
    rejected = run(hstore, svc.reject, fo1, RejectReason.DAMAGED, later(4))
    [fo1b] = rejected.new_fo_ids
    run(hstore, svc.hand_off, fo1b, later(5))
    run(hstore, svc.ship, fo1b, svc.Shipment("s-2", {"X": 1}, later(6)), later(6))

    # 2. Order 2 (2 X, 1 Y) at A, cancelled before hand-off: nothing leaves A.
    two = receive(runtime, order(("X", 2), ("Y", 1), external_id="2"))
    [(fo2, loc2, _, _)] = fos(runtime, two)
    assert loc2 == "a"
    run(hstore, svc.request_cancel, fo2, later(7))

    # 3. Order 3 (4 Y) at A, edited down to 1 Y before hand-off; it ships the 1.
    #    Y at A: 5 - 1 = 4.
    three = receive(runtime, order(("Y", 4), external_id="3"))
    ok(
        client.post(
            f"/v1/orders/{three}/edit",
            json={"actor": "ann", "lines": [{"line_no": 1, "quantity": 1}]},
        )
    )
    fo3 = handed_off(runtime, hstore, three)
    run(hstore, svc.ship, fo3, svc.Shipment("s-3", {"Y": 1}, later(8)), later(8))

    # 4. Order 1 is delivered; 1 X comes back to A through a return, restocked: A 7 + 1 = 8.
    ok(client.post(f"/v1/orders/{one}/delivered", json={}))
    ret = ok(
        client.post(
            "/v1/returns",
            json={"order_id": one, "items": [{"line_no": 1, "quantity": 1, "reason": "too_big"}]},
        ),
        201,
    )
    rid = ret["id"]
    [item] = ret["items"]  # type: ignore[misc]
    ok(client.post(f"/v1/returns/{rid}/receive", json={"location_id": "a"}))
    ok(
        client.post(
            f"/v1/returns/{rid}/inspect",
            json={
                "dispositions": [
                    {"item_id": item["id"], "disposition": "restock", "location_id": "a"}
                ]
            },
        )
    )
    # 5. Order 3's Y is refunded and restocked at A: Y at A 4 + 1 = 5.
    ok(client.post(f"/v1/orders/{three}/delivered", json={}))
    ok(
        client.post(
            f"/v1/orders/{three}/refunds",
            json={"lines": [{"line_no": 1, "quantity": 1, "restock_location_id": "a"}]},
        ),
        201,
    )
    # 6. A warehouse count at B finds 9 (what aoms has): no change.
    ok(
        client.post(
            "/v1/inventory/changes",
            json={
                "changes": [
                    {"kind": "count", "sku": "X", "location_id": "b", "quantity": 9,
                     "idempotency_key": "count-1"}
                ]
            },
        )
    )  # fmt: skip

    assert {k: v[0] for k, v in stock(runtime).items()} == {
        ("X", "a"): 8,
        ("X", "b"): 9,
        ("Y", "a"): 5,
    }
    assert_nothing_stuck(runtime)
    with runtime.store.transaction() as tx:
        assert check_stock(SqlStockCheck(tx), now=later(90)) == []
    verified = ledger.verify(runtime.store)
    assert verified.ok, verified.broken
