"""The order lifecycle over the API: holds and the review queue, the payment gate, fraud
decisions and the release for fulfilment, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aoms.adapters.db import ledger
from aoms.adapters.db import schema as t
from aoms.adapters.db.lifecycle import ready_for_fulfilment
from aoms.adapters.shopify.webhooks import sign
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, later, network, shopify_payload
from tests.conftest import SECRET

SHOP = "shop.myshopify.com"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def deliver(client: TestClient, runtime: Runtime, payload: Any, topic: str, wid: str) -> None:
    raw = json.dumps(payload).encode()
    answer = client.post(
        "/webhooks/shopify",
        content=raw,
        headers={
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Hmac-Sha256": sign(raw, SECRET),
            "X-Shopify-Webhook-Id": wid,
        },
    )
    assert answer.status_code == 200, answer.text
    assert runtime.process_inbox().failed == 0


def order_id(runtime: Runtime, external_id: int) -> int:
    with runtime.store.read() as conn:
        return int(
            conn.execute(
                select(t.orders.c.id).where(t.orders.c.external_id == str(external_id))
            ).scalar_one()
        )


def events(runtime: Runtime, oid: int, name: str) -> list[dict[str, Any]]:
    with runtime.store.read() as conn:
        rows = conn.execute(
            select(t.outbox.c.data).where(
                t.outbox.c.aggregate == f"order:{oid}", t.outbox.c.name == name
            )
        ).scalars()
        return list(rows)


def reserved(runtime: Runtime, sku: str, location: str) -> int:
    with runtime.store.read() as conn:
        return int(
            conn.execute(
                select(t.stock_levels.c.reserved).where(
                    t.stock_levels.c.sku == sku, t.stock_levels.c.location_id == location
                )
            ).scalar_one()
        )


def test_an_unpaid_order_is_reserved_but_held_until_shopify_says_it_is_paid(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    payload = shopify_payload(5001, lines=[("X", 2, "10.00")], financial_status="pending")
    deliver(client, runtime, payload, "orders/create", "w-1")
    oid = order_id(runtime, 5001)
    state = client.get(f"/v1/orders/{oid}/lifecycle").json()
    assert state["state"] == "on_hold"
    assert state["routing_status"] == "routed"
    assert [(h["kind"], h["status"]) for h in state["holds"]] == [("awaiting_payment", "open")]
    assert reserved(runtime, "X", "a") == 2  # the held order's stock is protected
    assert not ready_for_fulfilment(runtime.store, oid)
    assert events(runtime, oid, "order.released_for_fulfilment") == []

    paid = {**payload, "financial_status": "paid", "updated_at": later(5).isoformat()}
    deliver(client, runtime, paid, "orders/paid", "w-2")
    state = client.get(f"/v1/orders/{oid}/lifecycle").json()
    assert state["state"] == "ready_for_fulfilment"
    assert state["holds"][0]["status"] == "released"
    assert state["holds"][0]["resolved_by"] == "aoms"
    assert ready_for_fulfilment(runtime.store, oid)
    assert len(events(runtime, oid, "order.released_for_fulfilment")) == 1
    # A later update changes nothing: the order is released once.
    again = {**paid, "updated_at": later(9).isoformat()}
    deliver(client, runtime, again, "orders/updated", "w-3")
    assert len(events(runtime, oid, "order.released_for_fulfilment")) == 1
    with runtime.store.read() as conn:
        kinds = conn.execute(
            select(t.ledger_entries.c.kind)
            .where(t.ledger_entries.c.ref == f"order:{oid}")
            .order_by(t.ledger_entries.c.seq)
        ).scalars()
        assert list(kinds) == [
            "routing_decision",
            "hold_placed",
            "fraud_decision",
            "hold_resolved",
            "released_for_fulfilment",
        ]
    assert ledger.verify(runtime.store).ok
    history = [x["event"] for x in client.get(f"/v1/orders/{oid}/history").json()["items"]]
    assert history == [
        "order.received",
        "order.routed",
        "stock.reserved",
        "order.hold_placed",
        "order.fraud_assessed",
        "order.updated",
        "order.hold_released",
        "order.released_for_fulfilment",
        "order.updated",
    ]


def test_a_store_that_ships_on_authorisation_does_not_hold_an_authorised_order(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    put = client.put(f"/v1/shops/{SHOP}/lifecycle", json={"payment_gate": "authorized"})
    assert put.status_code == 200, put.text
    payload = shopify_payload(5002, lines=[("X", 1, "10.00")], financial_status="authorized")
    deliver(client, runtime, payload, "orders/create", "w-1")
    oid = order_id(runtime, 5002)
    state = client.get(f"/v1/orders/{oid}/lifecycle").json()
    assert state["state"] == "ready_for_fulfilment"
    assert state["holds"] == []
    assert len(events(runtime, oid, "order.released_for_fulfilment")) == 1


def test_the_review_queue_pages_by_cursor_and_a_hold_is_released_once(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 50})
    client.put(f"/v1/shops/{SHOP}/lifecycle", json={"payment_gate": "authorized"})
    ids = []
    for n in range(5):
        paid = shopify_payload(6000 + n, lines=[("X", 1, "10.00")], financial_status="paid")
        deliver(client, runtime, paid, "orders/create", f"w{n}")
        oid = order_id(runtime, 6000 + n)
        ids.append(oid)
        hold = {"kind": "manual_review", "reason": "VIP", "actor": "ann"}
        made = client.post(f"/v1/orders/{oid}/holds", json=hold)
        assert made.status_code == 201, made.text
    seen: list[int] = []
    cursor = None
    while True:
        params = {"kind": "manual_review", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/holds", params=params).json()
        seen.extend(h["order_id"] for h in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert client.get("/v1/holds", params={"kind": "awaiting_payment"}).json()["items"] == []

    hold_id = client.get("/v1/holds", params={"limit": 1}).json()["items"][0]["id"]
    first = client.post(f"/v1/holds/{hold_id}/release", json={"actor": "bob", "note": "ok"})
    assert first.status_code == 200, first.text
    assert first.json()["hold"]["resolved_by"] == "bob"
    assert first.json()["order"]["state"] == "ready_for_fulfilment"
    second = client.post(f"/v1/holds/{hold_id}/release", json={"actor": "bob"})
    assert second.status_code == 409
    assert second.json()["code"] == "hold_not_open"
    # Released after the manual hold: exactly once.
    assert len(events(runtime, ids[0], "order.released_for_fulfilment")) == 1
    assert client.post("/v1/holds/999999/release", json={"actor": "x"}).status_code == 404
    open_now = client.get("/v1/holds").json()["items"]
    assert [h["order_id"] for h in open_now] == ids[1:]


def test_a_high_risk_assessment_holds_for_review_and_a_higher_score_cancels(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    client.put(
        f"/v1/shops/{SHOP}/lifecycle",
        json={
            "payment_gate": "authorized",
            "fraud": {
                "review_at": 50,
                "cancel_at": 90,
                "high_value": "100.00",
                "high_value_currency": "USD",
                "high_value_points": 20,
            },
        },
    )
    paid = shopify_payload(7001, lines=[("X", 1, "10.00")], financial_status="paid")
    deliver(client, runtime, paid, "orders/create", "w1")
    small = order_id(runtime, 7001)
    risk = {
        "assessments": [
            {
                "riskLevel": "HIGH",
                "provider": None,
                "facts": [
                    {
                        "description": "Billing address is far from the IP location",
                        "sentiment": "NEGATIVE",
                    },
                ],
            }
        ]
    }
    state = client.post(f"/v1/orders/{small}/risk-assessments", json=risk).json()
    # HIGH is 70 points: at least 50 (review), below 90 (cancel).
    assert [d["score"] for d in state["fraud_decisions"]] == [0, 70]
    assert state["fraud_decisions"][-1]["action"] == "review"
    assert "Shopify assessed the risk as HIGH" in state["fraud_decisions"][-1]["reasons"][0]
    assert [h["kind"] for h in state["holds"] if h["status"] == "open"] == ["high_fraud_risk"]
    assert state["state"] == "on_hold"

    paid = shopify_payload(7002, lines=[("X", 12, "10.00")], financial_status="paid")
    deliver(client, runtime, paid, "orders/create", "w2")
    big = order_id(runtime, 7002)  # 120.00 ≥ 100.00: +20; HIGH: +70 → 90, the cancel threshold
    before = reserved(runtime, "X", "a")
    assert before == 10  # 1 + the 9 left at a (3 units backordered)
    state = client.post(f"/v1/orders/{big}/risk-assessments", json=risk).json()
    assert state["fraud_decisions"][-1]["score"] == 90
    assert state["fraud_decisions"][-1]["action"] == "cancel"
    assert state["state"] == "cancelled"
    assert reserved(runtime, "X", "a") == 1  # the cancelled order's 9 units are free again
    assert all(h["status"] != "open" for h in state["holds"])


def test_cancelling_from_the_review_queue_releases_the_stock_and_closes_the_holds(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    deliver(
        client, runtime, shopify_payload(8001, lines=[("X", 3, "10.00")]), "orders/create", "w1"
    )
    oid = order_id(runtime, 8001)
    assert reserved(runtime, "X", "a") == 3
    answer = client.post(f"/v1/orders/{oid}/cancel")
    assert answer.status_code == 200, answer.text
    state = client.get(f"/v1/orders/{oid}/lifecycle").json()
    assert state["state"] == "cancelled"
    assert [h["status"] for h in state["holds"]] == ["cancelled"]
    assert reserved(runtime, "X", "a") == 0
    assert client.get("/v1/holds").json()["items"] == []


def test_a_backordered_order_is_released_when_stock_arrives_and_routes_it(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 1})
    paid = shopify_payload(9001, lines=[("X", 3, "10.00")], financial_status="paid")
    deliver(client, runtime, paid, "orders/create", "w1")
    oid = order_id(runtime, 9001)
    assert client.get(f"/v1/orders/{oid}/lifecycle").json()["state"] == "backordered"
    assert events(runtime, oid, "order.released_for_fulfilment") == []
    receipt = {
        "kind": "receipt",
        "sku": "X",
        "location_id": "a",
        "quantity": 5,
        "idempotency_key": "asn-9",
    }
    answer = client.post("/v1/inventory/changes", json={"changes": [receipt]})
    assert answer.json()["rerouted"] == {"routed": 1}
    assert client.get(f"/v1/orders/{oid}/lifecycle").json()["state"] == "ready_for_fulfilment"
    assert len(events(runtime, oid, "order.released_for_fulfilment")) == 1


def test_a_tagged_order_and_an_address_that_cannot_be_placed_are_held(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    client.put(f"/v1/shops/{SHOP}/lifecycle", json={"hold_tags": ["wholesale"]})
    tagged = {
        **shopify_payload(9101, lines=[("X", 1, "10.00")], financial_status="paid"),
        "tags": "vip, wholesale",
    }
    deliver(client, runtime, tagged, "orders/create", "w1")
    holds = client.get(f"/v1/orders/{order_id(runtime, 9101)}/lifecycle").json()["holds"]
    assert [(h["kind"], h["reason"]) for h in holds] == [("merchant_rule", "tagged wholesale")]

    nowhere = shopify_payload(9102, lines=[("X", 1, "10.00")], financial_status="paid")
    nowhere["shipping_address"] = {"country_code": None, "zip": None}
    deliver(client, runtime, nowhere, "orders/create", "w2")
    state = client.get(f"/v1/orders/{order_id(runtime, 9102)}/lifecycle").json()
    assert state["routing_status"] == "unroutable"
    assert [h["kind"] for h in state["holds"]] == ["incorrect_address"]


def test_a_released_merchant_rule_hold_is_not_placed_again_by_the_next_update(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    client.put(f"/v1/shops/{SHOP}/lifecycle", json={"hold_tags": ["wholesale"]})
    tagged = {
        **shopify_payload(9201, lines=[("X", 1, "10.00")], financial_status="paid"),
        "tags": "wholesale",
    }
    deliver(client, runtime, tagged, "orders/create", "w1")
    oid = order_id(runtime, 9201)
    hold_id = client.get(f"/v1/orders/{oid}/lifecycle").json()["holds"][0]["id"]
    client.post(f"/v1/holds/{hold_id}/release", json={"actor": "ann", "note": "known buyer"})
    deliver(client, runtime, {**tagged, "updated_at": later(3).isoformat()}, "orders/updated", "w2")
    state = client.get(f"/v1/orders/{oid}/lifecycle").json()
    assert [h["status"] for h in state["holds"]] == ["released"]
    assert state["state"] == "ready_for_fulfilment"


def test_a_risk_assessment_webhook_scores_the_order_again_and_holds_it(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    paid = shopify_payload(9301, lines=[("X", 1, "10.00")], financial_status="paid")
    deliver(client, runtime, paid, "orders/create", "w1")
    oid = order_id(runtime, 9301)
    assert client.get(f"/v1/orders/{oid}/lifecycle").json()["state"] == "ready_for_fulfilment"
    # The body of orders/risk_assessment_changed, as Shopify documents it.
    assessment = {
        "provider_id": None,
        "provider_title": None,
        "risk_level": "high",
        "created_at": later(2).isoformat(),
        "order_id": "9301",
        "admin_graphql_api_order_id": "gid://shopify/Order/9301",
    }
    deliver(client, runtime, assessment, "orders/risk_assessment_changed", "w2")
    state = client.get(f"/v1/orders/{oid}/lifecycle").json()
    assert [d["score"] for d in state["fraud_decisions"]] == [0, 70]
    assert [h["kind"] for h in state["holds"]] == ["high_fraud_risk"]
    assert state["state"] == "on_hold"
    # For an order never received it is ignored, and one that cannot be read fails alone.
    deliver(
        client, runtime, {**assessment, "order_id": "77"}, "orders/risk_assessment_changed", "w3"
    )
    raw = json.dumps({**assessment, "risk_level": "scary"}).encode()
    client.post(
        "/webhooks/shopify",
        content=raw,
        headers={
            "X-Shopify-Topic": "orders/risk_assessment_changed",
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Hmac-Sha256": sign(raw, SECRET),
            "X-Shopify-Webhook-Id": "w4",
        },
    )
    assert runtime.process_inbox().failed == 1
    with runtime.store.read() as conn:
        w = t.webhook_inbox.c
        rows = conn.execute(select(w.webhook_id, w.status, w.error_code).order_by(w.id)).all()
    assert [tuple(r) for r in rows][1:] == [
        ("w2", "processed", None),
        ("w3", "ignored", None),
        ("w4", "failed", "invalid_input"),
    ]


def test_velocity_per_customer_and_a_billing_mismatch_are_scored_from_the_webhooks(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 50})
    client.put(
        f"/v1/shops/{SHOP}/lifecycle",
        json={"fraud": {"review_at": 40, "velocity_limit": 3, "velocity_window_hours": 24}},
    )
    scores = []
    for n in range(5):
        body = {
            **shopify_payload(9400 + n, lines=[("X", 1, "10.00")], financial_status="paid"),
            "customer": {"id": 555, "email": "a@example.com"},
            "billing_address": {"country_code": "CA" if n == 4 else "US"},
        }
        # A different door each time: only the customer repeats (the address has its own count).
        body["shipping_address"] = {**body["shipping_address"], "zip": f"1000{n}"}
        deliver(client, runtime, body, "orders/create", f"v{n}")
        state = client.get(f"/v1/orders/{order_id(runtime, 9400 + n)}/lifecycle").json()
        scores.append(state["fraud_decisions"][0]["score"])
    # The 4th order is the 4th in 24 h (limit 3): +25; the 5th is also billed in Canada: +15.
    assert scores == [0, 0, 0, 25, 40]
    last = client.get(f"/v1/orders/{order_id(runtime, 9404)}/lifecycle").json()
    assert last["fraud_decisions"][0]["reasons"] == [
        "+25: 5 orders from this customer in 24 h (limit 3)",
        "+15: billed in CA but shipped to US",
    ]
    assert [h["kind"] for h in last["holds"]] == ["high_fraud_risk"]  # 40 reaches review_at

    # The same door for two more orders by other customers: the address count fires too.
    for n in (5, 6):
        body = {
            **shopify_payload(9400 + n, lines=[("X", 1, "10.00")], financial_status="paid"),
            "customer": {"id": 600 + n},
        }
        body["shipping_address"] = {**body["shipping_address"], "zip": "10004"}
        deliver(client, runtime, body, "orders/create", f"v{n}")
    state = client.get(f"/v1/orders/{order_id(runtime, 9406)}/lifecycle").json()
    assert state["fraud_decisions"][0]["score"] == 0  # 3 orders to 10004: not more than 3
    body = {
        **shopify_payload(9407, lines=[("X", 1, "10.00")], financial_status="paid"),
        "customer": {"id": 700},
    }
    body["shipping_address"] = {**body["shipping_address"], "zip": " 10004 "}
    deliver(client, runtime, body, "orders/create", "v7")
    state = client.get(f"/v1/orders/{order_id(runtime, 9407)}/lifecycle").json()
    assert state["fraud_decisions"][0]["reasons"] == [
        "+25: 4 orders from this shipping address in 24 h (limit 3)"
    ]


def test_an_order_through_the_api_is_scored_on_its_customer_and_billing_country(
    client: TestClient, runtime: Runtime
) -> None:
    """The same signals as a Shopify order's, from the API's customer_id, email and
    billing_address: velocity per customer (by id, else by e-mail) and billed vs shipped."""
    network(runtime.engine, {("X", "a"): 50})
    client.put(
        f"/v1/shops/{SHOP}/lifecycle",
        json={"fraud": {"review_at": 40, "velocity_limit": 1, "velocity_window_hours": 24}},
    )

    def score(n: int, **extra: object) -> list[str]:
        body = {"shop": SHOP, "channel": "pos", "external_id": f"api-{n}", "currency": "USD",
                "placed_at": T0.isoformat(), "financial_status": "paid",
                "shipping_address": {"country_code": "US", "zip": f"2000{n}",
                                     "latitude": 0.0, "longitude": 10.0},
                "lines": [{"sku": "X", "quantity": 1, "unit_price": "10.00"}], **extra}  # fmt: skip
        answer = client.post("/v1/orders", json=body)
        assert answer.status_code in (200, 201), answer.text
        state = client.get(f"/v1/orders/{answer.json()['order']['id']}/lifecycle").json()
        return list(state["fraud_decisions"][0]["reasons"])

    assert score(1, customer_id="c-9") == []
    # The 2nd order of customer c-9 in 24 h (limit 1), billed in Canada: 25 + 15.
    assert score(2, customer_id="c-9", billing_address={"country_code": "CA"}) == [
        "+25: 2 orders from this customer in 24 h (limit 1)",
        "+15: billed in CA but shipped to US",
    ]
    # No customer id: the e-mail, whatever its case, is the customer.
    assert score(3, email="Ana@Example.com") == []
    assert score(4, email="ana@example.com") == [
        "+25: 2 orders from this customer in 24 h (limit 1)"
    ]
    bad = client.post("/v1/orders", json={"shop": SHOP, "external_id": "api-9", "currency": "USD",
                                          "placed_at": T0.isoformat(), "email": "not-an-address",
                                          "shipping_address": {"country_code": "US"},
                                          "lines": [{"sku": "X", "quantity": 1,
                                                     "unit_price": "1.00"}]})  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["errors"] == [
        {"field": "email", "message": "must be an e-mail address, e.g. ana@example.com"}
    ]
