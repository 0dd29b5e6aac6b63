"""Warehouse stock changes (receipts, deltas, counts) idempotent by key, and the stock
invariant check, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from aoms.adapters.db import ledger
from aoms.adapters.db import schema as t
from aoms.adapters.db.lifecycle import SqlStockCheck
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from aoms.services.stock_checks import check_stock
from tests.builders import T0, network, place_order

SHOP = "shop.myshopify.com"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def change(kind: str, qty: int, key: str, **kw: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "sku": "X",
        "location_id": "a",
        "quantity": qty,
        "idempotency_key": key,
        **kw,
    }


def alerts(rt: Runtime) -> list[dict[str, Any]]:
    with rt.store.read() as conn:
        return list(
            conn.execute(
                select(t.outbox.c.data).where(t.outbox.c.name == "stock.count_below_reserved")
            ).scalars()
        )


def test_receipts_deltas_and_counts_apply_once_per_key(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    batch = {
        "changes": [
            change("receipt", 5, "asn-1", reference="ASN 1"),
            change("delta", -2, "dmg-1", reason="damaged"),
            change("count", 11, "cc-1"),
            change("receipt", 5, "asn-1"),  # the same receipt again, in the same batch
        ]
    }
    answer = client.post("/v1/inventory/changes", json=batch)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [(x["applied"], x["on_hand"]) for x in items] == [
        (True, 15),
        (True, 13),
        (True, 11),
        (False, 11),
    ]
    again = client.post("/v1/inventory/changes", json=batch).json()["items"]
    assert [x["applied"] for x in again] == [False] * 4
    with runtime.store.read() as conn:
        m = t.stock_movements.c
        rows = conn.execute(
            select(m.on_hand_delta, m.reason, m.reference)
            .where(m.idempotency_key.is_not(None))
            .order_by(m.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        (5, "receipt", "ASN 1"),
        (-2, "damaged", None),
        (-2, "cycle_count", None),
    ]
    assert ledger.verify(runtime.store).ok


def test_a_bad_change_in_a_batch_changes_nothing(client: TestClient, runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 10})
    batch = {"changes": [change("receipt", 5, "r-1"), change("count", 3, "c-1", reason="guess")]}
    answer = client.post("/v1/inventory/changes", json=batch)
    assert answer.status_code == 422 and answer.json()["field"] == "changes[1].reason"
    with runtime.store.read() as conn:
        on_hand = conn.execute(select(t.stock_levels.c.on_hand)).scalar_one()
    assert on_hand == 10


def test_a_count_below_what_is_reserved_is_taken_and_raises_an_alert(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    place_order(client, SHOP, "R1", ("X", 6))
    # A delta may not go below what open orders hold …
    refused = client.post(
        "/v1/inventory/changes", json={"changes": [change("delta", -5, "d", reason="lost")]}
    )
    assert refused.status_code == 409 and refused.json()["code"] == "insufficient_stock"
    # … but a count is what is physically on the shelf.
    counted = client.post("/v1/inventory/changes", json={"changes": [change("count", 4, "c")]})
    assert counted.status_code == 200, counted.text
    assert counted.json()["items"][0] == {
        "sku": "X",
        "location_id": "a",
        "applied": True,
        "on_hand": 4,
        "reserved": 6,
        "available": 0,
    }
    assert [(a["counted"], a["reserved"], a["short"]) for a in alerts(runtime)] == [(4, 6, 2)]
    # The invariant check accepts what the count did …
    with runtime.store.transaction() as tx:
        assert check_stock(SqlStockCheck(tx), now=T0) == []


def test_the_stock_check_finds_counters_that_disagree_with_their_sources(
    client: TestClient, runtime: Runtime, db_url: str
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("Y", "a"): 3})
    place_order(client, SHOP, "R2", ("X", 2))
    with runtime.store.transaction() as tx:
        assert check_stock(SqlStockCheck(tx), now=T0) == []
    with runtime.engine.begin() as conn:  # a counter edited around the movements
        s = t.stock_levels.c
        conn.execute(update(t.stock_levels).where(s.sku == "X").values(reserved=5))
        conn.execute(update(t.stock_levels).where(s.sku == "Y").values(on_hand=1, reserved=2))
    with runtime.store.transaction() as tx:
        found = check_stock(SqlStockCheck(tx), now=T0)
    assert sorted((b.sku, b.invariant) for b in found) == [
        ("X", "reserved_matches_movements"),
        ("X", "reserved_matches_reservations"),
        ("Y", "available_not_negative"),
        ("Y", "on_hand_matches_movements"),
        ("Y", "reserved_matches_movements"),
        ("Y", "reserved_matches_reservations"),
    ]
    x = next(b for b in found if b.invariant == "reserved_matches_reservations" and b.sku == "X")
    assert x.detail == "reserved is 5 but open reservations hold 2"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aoms.entrypoints.cli",
            "ledger",
            "check-stock",
            "--json",
            "--database-url",
            db_url,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert '"ok": false' in done.stdout


def test_the_workers_check_stock_on_their_own_clock(client: TestClient, runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 10})
    runtime.settings = runtime.settings.model_copy(update={"stock_check_seconds": 3600})
    assert runtime.check_stock_if_due() == 0  # nothing wrong, and now checked
    with runtime.engine.begin() as conn:  # a counter edited around the movements
        s = t.stock_levels.c
        conn.execute(update(t.stock_levels).where(s.sku == "X").values(reserved=5))
    assert runtime.check_stock_if_due() is None  # not due for an hour
    runtime.stock_checked -= 3600
    assert runtime.check_stock_if_due() == 2  # reserved disagrees with reservations, movements
