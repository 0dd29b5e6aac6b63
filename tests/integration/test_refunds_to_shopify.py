"""A refund made in aoms reaches Shopify over real HTTP (the local fake Admin API) and its
refunds/create echo is not counted twice; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from aoms.adapters.shopify.refunds import ShopifyRefundPublisher
from aoms.adapters.shopify.webhooks import sign
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, network, shopify_payload
from tests.conftest import SECRET
from tests.fakes.shopify_admin import FakeShopifyAdmin

SHOP = "shop.myshopify.com"


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    shopify = FakeShopifyAdmin(shop=SHOP, restore_rate=1000.0, bucket=2000.0)
    shopify.start()
    yield shopify
    shopify.stop()


@pytest.fixture
def client(runtime: Runtime, fake: FakeShopifyAdmin) -> Iterator[TestClient]:
    runtime.settings = runtime.settings.model_copy(
        update={"shopify_admin_tokens": {SHOP: SecretStr(fake.token)},
                "shopify_admin_url": fake.base_url}
    )  # fmt: skip
    runtime.clock = lambda: T0
    runtime.refund_publisher = ShopifyRefundPublisher(runtime.shopify_client)
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def webhook(client: TestClient, runtime: Runtime, topic: str, body: dict[str, Any], n: int) -> None:
    raw = json.dumps(body).encode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": SHOP,
               "X-Shopify-Webhook-Id": f"w-{n}", "X-Shopify-Hmac-Sha256": sign(raw, SECRET),
               "content-type": "application/json"}  # fmt: skip
    assert client.post("/webhooks/shopify", content=raw, headers=headers).status_code == 200
    runtime.process_inbox()


def test_a_refund_made_in_aoms_is_told_to_shopify_once(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    network(runtime.engine, {("TEE", "a"): 5})
    order = shopify_payload(4001, lines=[("TEE", 2, "20.00")], financial_status="paid")
    fake.put_order(order)
    webhook(client, runtime, "orders/create", order, 1)
    found = client.get("/v1/orders", params={"q": "4001"}).json()
    order_id = next(o["id"] for o in found["items"] if o["external_id"] == "4001")
    assert client.post(f"/v1/orders/{order_id}/delivered", json={}).status_code == 200
    body = {"lines": [{"line_no": 1, "quantity": 1, "restock_location_id": "a"}]}
    answer = client.post(f"/v1/orders/{order_id}/refunds", json=body)
    assert answer.status_code == 201, answer.text
    refund = answer.json()["refund"]
    assert refund["total"] == "20.00"
    # Shopify got one refund: line 40010 (the order's first line item), 1 unit, no restock
    # there (aoms keeps the stock), 20.00 back on the order's gateway, aoms's mark in the note.
    [pushed] = fake.refunds
    assert pushed["lines"] == [
        {"lineItemId": "gid://shopify/LineItem/40010", "quantity": 1, "restockType": "NO_RESTOCK"}
    ]
    assert [(t["amount"], t["kind"]) for t in pushed["transactions"]] == [("20.00", "REFUND")]
    assert pushed["note"] == f"aoms-refund:{refund['id']}"
    # Shopify's refunds/create for it comes back: recognised, not a second refund.
    echo = {"id": int(pushed["id"].rsplit("/", 1)[-1]), "order_id": 4001,
            "note": pushed["note"], "created_at": T0.isoformat(), "restock": False,
            "refund_line_items": [{"line_item_id": 40010, "quantity": 1,
                                   "subtotal": "20.00", "total_tax": "0.00"}],
            "transactions": [{"id": 9, "kind": "refund", "status": "success",
                              "amount": "20.00", "gateway": "manual"}]}  # fmt: skip
    webhook(client, runtime, "refunds/create", echo, 2)
    refunds = client.get(f"/v1/orders/{order_id}/refunds").json()["refunds"]
    assert [r["total"] for r in refunds] == ["20.00"]
