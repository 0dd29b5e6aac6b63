"""Shopify's order webhooks (sync) meeting order edits made in aoms (lifecycle), over the API
on SQLite and PostgreSQL: an update that leaves the lines as Shopify last had them keeps
aoms's edit; one that changes them is Shopify's own edit, and wins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import later, network, shopify_payload
from tests.integration.test_lifecycle import deliver, order_id, reserved


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: later(30)
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def quantities(runtime: Runtime, oid: int) -> list[tuple[str, int]]:
    c = t.order_lines.c
    with runtime.store.read() as conn:
        rows = conn.execute(
            select(c.sku, c.quantity).where(c.order_id == oid).order_by(c.line_no)
        ).all()
    return [(r.sku, int(r.quantity)) for r in rows]


def test_an_edit_made_in_aoms_survives_the_next_unrelated_shopify_update(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    payload = shopify_payload(7001, lines=[("X", 3, "10.00")], financial_status="paid")
    deliver(client, runtime, payload, "orders/create", "w-1")
    oid = order_id(runtime, 7001)
    assert reserved(runtime, "X", "a") == 3
    edited = client.post(
        f"/v1/orders/{oid}/edit", json={"actor": "ann", "lines": [{"line_no": 1, "quantity": 1}]}
    )
    assert edited.status_code == 200, edited.text
    assert (quantities(runtime, oid), reserved(runtime, "X", "a")) == ([("X", 1)], 1)

    # Shopify tells of a note added to the order: its lines are the ones it always had.
    noted = {**payload, "note": "gift wrap", "updated_at": later(40).isoformat()}
    deliver(client, runtime, noted, "orders/updated", "w-2")
    assert (quantities(runtime, oid), reserved(runtime, "X", "a")) == ([("X", 1)], 1)

    # Shopify's own edit of the line (the channel's quantity changed): the channel wins.
    changed = shopify_payload(7001, lines=[("X", 2, "10.00")], financial_status="paid",
                              updated_at=later(50))  # fmt: skip
    deliver(client, runtime, changed, "orders/updated", "w-3")
    assert (quantities(runtime, oid), reserved(runtime, "X", "a")) == ([("X", 2)], 2)
