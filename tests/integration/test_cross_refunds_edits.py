"""Refunds (returns) meeting order edits (lifecycle), over the API on SQLite and PostgreSQL:
what an order can refund is bounded by what its payments captured, whatever the order's lines
became after an edit.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import later, network, place_order

SHOP = "shop.myshopify.com"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: later(60)
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def test_refunds_after_an_added_line_never_exceed_what_was_captured(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10, ("Y", "a"): 10})
    oid = int(place_order(client, SHOP, "R1", ("X", 1))["id"])
    ok(client.post(f"/v1/orders/{oid}/payments", json={"payments": [
        {"method": "card", "amount": "10.00"}]}))  # fmt: skip
    ok(client.post(f"/v1/orders/{oid}/edit", json={"actor": "ann", "add": [
        {"sku": "Y", "quantity": 1, "unit_price": "10.00"}]}))  # fmt: skip
    ok(client.post(f"/v1/orders/{oid}/delivered", json={}))  # both shipped: both refundable
    answer = client.post(
        f"/v1/orders/{oid}/refunds",
        json={"lines": [{"line_no": 1, "quantity": 1}, {"line_no": 2, "quantity": 1}]},
    )
    if answer.status_code == 201:
        refund = answer.json()["refund"]
        assert Decimal(refund["total"]) <= Decimal("10.00")
        assert sum(Decimal(p["amount"]) for p in refund["payments"]) <= Decimal("10.00")
    else:
        assert (answer.status_code, answer.json()["code"]) == (409, "refund_exceeds_captured")
    payments = ok(client.get(f"/v1/orders/{oid}/refunds"))["payments"]
    assert all(Decimal(p["refunded"]) <= Decimal(p["captured"]) for p in payments)
