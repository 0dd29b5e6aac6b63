"""The Shopify Admin GraphQL client against the local fake Shopify, over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aoms.adapters.shopify.admin import ShopifyAdminClient, Tracking
from aoms.adapters.shopify.graphql_orders import parse_graphql_order
from aoms.adapters.shopify.webhooks import parse_order
from aoms.domain.errors import ShopifyError, ShopifyUserErrors
from aoms.services.shopify_holds import hold_on_shopify, release_on_shopify
from aoms.services.shopify_sync import Change
from tests.builders import later, shopify_payload
from tests.fakes.shopify_admin import FakeShopifyAdmin, gid

SHOP = "shop.myshopify.com"
TOKEN = "shpat_test_token"
SHOPIFY_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "shopify"


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    shopify = FakeShopifyAdmin(restore_rate=100_000.0, bucket=2000.0)
    shopify.start()
    yield shopify
    shopify.stop()


def client_for(fake: FakeShopifyAdmin, **kwargs: Any) -> ShopifyAdminClient:
    return ShopifyAdminClient(SHOP, TOKEN, base_url=fake.base_url, **kwargs)


def item(n: int) -> str:
    return gid("InventoryItem", n)


def loc(n: int) -> str:
    return gid("Location", n)


def test_ten_thousand_quantities_are_paced_to_the_restore_rate_without_a_throttle() -> None:
    """2,000 SKUs × 5 locations = 10,000 quantities = 40 calls of 250 at 10 points: 400
    points against a 100-point bucket restored at 500 points/s. The theoretical minimum is
    (400 − 100) / 500 = 0.6 s; the client may wait no more than 1.15× that in total, and no
    call may be throttled."""
    fake = FakeShopifyAdmin(restore_rate=500.0, bucket=100.0)
    pairs = [(item(s), loc(n)) for s in range(1, 2001) for n in range(1, 6)]
    for pair in pairs:
        fake.stock(*pair, 7)
    with fake.running() as url:
        client = ShopifyAdminClient(SHOP, TOKEN, base_url=url)
        changes = [Change(i, location, 3, 7) for i, location in pairs]
        started = time.monotonic()
        for start in range(0, len(changes), 250):
            assert client.set_available(changes[start : start + 250]).applied
        elapsed = time.monotonic() - started
    minimum = (40 * 10 - 100) / 500.0
    assert fake.stats.throttled == client.stats.throttled == 0
    assert fake.stats.mutations["inventorySetQuantities"] == 40
    assert fake.stats.points_spent == 400
    assert all(v == 3 for v in fake.levels.values())
    assert elapsed >= minimum * 0.98  # the fake's bucket is real: nobody beats the rate
    assert client.stats.waited_seconds <= minimum * 1.15


def test_a_throttle_from_another_caller_is_waited_out_and_the_call_sent_again() -> None:
    fake = FakeShopifyAdmin(restore_rate=200.0, bucket=100.0)
    fake.stock(item(1), loc(1), 5)
    with fake.running() as url:
        client = ShopifyAdminClient(SHOP, TOKEN, base_url=url)
        assert client.read_available([(item(1), loc(1))]) == {(item(1), loc(1)): 5}
        fake.drain(100)  # another app on the same key empties the bucket behind our back
        started = time.monotonic()
        result = client.set_available([Change(item(1), loc(1), 9, 5)])
        waited = time.monotonic() - started
    assert result.applied and fake.levels[(item(1), loc(1))] == 9
    assert client.stats.throttled == fake.stats.throttled == 1
    # THROTTLED said 0 (or a point or two) available of the 10 requested at 200/s: ~0.05 s.
    assert 0.03 <= client.stats.backoff_seconds <= 0.06
    assert waited >= 0.03


def test_http_429_is_waited_out_for_its_retry_after(fake: FakeShopifyAdmin) -> None:
    fake.stock(item(1), loc(1), 5)
    fake.answer_429 = 1
    slept: list[float] = []
    client = client_for(fake, sleep=slept.append)
    assert client.read_available([(item(1), loc(1))]) == {(item(1), loc(1)): 5}
    assert slept == [1.0]
    assert client.stats.throttled == 1


def test_a_wrong_token_and_an_over_budget_query_are_errors(fake: FakeShopifyAdmin) -> None:
    with pytest.raises(ShopifyError, match="refused the access token"):
        ShopifyAdminClient(SHOP, "shpat_wrong", base_url=fake.base_url).read_available(
            [(item(1), loc(1))]
        )
    query = "query { orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }"
    with pytest.raises(ShopifyError) as caught:
        client_for(fake).execute(query, cost=10)
    assert caught.value.details["shopify_code"] == "MAX_COST_EXCEEDED"


def test_compare_and_set_applies_all_or_nothing(fake: FakeShopifyAdmin) -> None:
    for n in (1, 2):
        fake.stock(item(n), loc(1), 10)
    client = client_for(fake)
    result = client.set_available([Change(item(1), loc(1), 4, 10), Change(item(2), loc(1), 4, 11)])
    assert not result.applied and result.stale == (1,)
    assert result.errors[0]["field"] == ["input", "quantities", "1", "changeFromQuantity"]
    assert fake.levels == {(item(1), loc(1)): 10, (item(2), loc(1)): 10}  # nothing applied
    assert client.set_available(
        [Change(item(1), loc(1), 4, 10), Change(item(2), loc(1), 4, 10)]
    ).applied
    assert fake.levels == {(item(1), loc(1)): 4, (item(2), loc(1)): 4}
    unknown = client.set_available([Change(item(3), loc(1), 1, 0)])
    assert [e["code"] for e in unknown.errors] == ["INVALID_INVENTORY_ITEM"]


def _real_order_payloads() -> list[dict[str, Any]]:
    found = []
    for path in sorted(SHOPIFY_DATA.rglob("*.json")):
        if "/schemas/schemas/" in str(path):
            continue  # JSON schemas with placeholder values, not payloads
        doc = json.loads(path.read_text())
        doc = doc.get("response", doc) if isinstance(doc, dict) else doc
        if not isinstance(doc, dict):
            continue
        for o in doc.get("orders", [doc.get("order", doc)]):
            if (
                isinstance(o, dict)
                and isinstance(o.get("line_items"), list)
                and o.get("id")
                and isinstance(o.get("currency"), str)
                and len(o["currency"]) == 3
            ):
                found.append(o)
    return found


def test_an_order_read_over_graphql_is_the_order_its_webhook_makes(
    fake: FakeShopifyAdmin,
) -> None:
    """Shopify's own example payloads, stored in the fake and read back through the orders
    query: each becomes exactly the domain Order that its REST webhook body becomes — except
    the weight of a line with no variant (a custom item), which GraphQL's LineItem does not
    carry: it stays 0 and routing takes the catalogue's weight instead."""
    payloads = _real_order_payloads()
    if not payloads:
        pytest.skip("../shared/data/shopify is not beside the checkout")
    by_id = {}
    for n, original in enumerate(payloads):
        payload = dict(original, id=int(original["id"]) + n)
        fake.put_order(payload)
        by_id[str(payload["id"])] = payload
    client = client_for(fake)
    nodes = list(client.orders_updated_since(datetime(2000, 1, 1, tzinfo=UTC), page_size=3))
    assert len(nodes) == len(payloads)
    weighed = 0
    for node in nodes:
        via_graphql = parse_graphql_order(SHOP, node)
        rest = by_id[via_graphql.external_id]
        via_webhook = parse_order(SHOP, rest)
        no_variant = {
            i + 1 for i, li in enumerate(rest["line_items"]) if li.get("variant_id") is None
        }
        expected = tuple(
            replace(line, grams=0) if line.line_no in no_variant else line
            for line in via_webhook.lines
        )
        assert via_graphql == replace(via_webhook, lines=expected)
        weighed += sum(1 for line in via_graphql.lines if line.grams and line.variant_id)
    assert weighed > 0  # weights that do come through a variant were compared too


def test_orders_page_by_update_time_and_long_orders_come_whole(fake: FakeShopifyAdmin) -> None:
    for n in range(1, 8):
        fake.put_order(shopify_payload(n, lines=[("X", 1, "5.00")], updated_at=later(10 * n)))
    long_order = shopify_payload(
        99, lines=[(f"S{i}", 1, "1.00") for i in range(120)], updated_at=later(200)
    )
    fake.put_order(long_order)
    client = client_for(fake)
    nodes = list(client.orders_updated_since(later(30), page_size=2))
    assert [n["legacyResourceId"] for n in nodes] == ["3", "4", "5", "6", "7", "99"]
    assert len(nodes[-1]["lineItems"]["nodes"]) == 120
    assert parse_graphql_order(SHOP, nodes[-1]) == parse_order(SHOP, long_order)
    assert list(client.orders_updated_since(later(201))) == []


def test_fulfilment_with_tracking_tags_and_holds(fake: FakeShopifyAdmin) -> None:
    fake.put_order(shopify_payload(5, lines=[("X", 2, "10.00"), ("Y", 1, "3.00")]))
    fo = fake.add_fulfillment_order(5, {50: 2, 51: 1})
    client = client_for(fake)

    hold = client.fulfillment_order_hold(fo, reason="AWAITING_PAYMENT", handle="aoms-payment")
    assert hold["reason"] == "AWAITING_PAYMENT"
    assert fake.fulfillment_orders[fo].status() == "ON_HOLD"
    with pytest.raises(ShopifyUserErrors) as same_handle:
        client.fulfillment_order_hold(fo, reason="OTHER", handle="aoms-payment")
    assert same_handle.value.details["user_errors"][0]["code"] == (
        "DUPLICATE_FULFILLMENT_HOLD_HANDLES"
    )
    with pytest.raises(ShopifyUserErrors, match="on hold"):
        client.fulfillment_create(fo)
    released = client.fulfillment_order_release_hold(fo)
    assert released == {"id": fo, "status": "OPEN"}

    done = client.fulfillment_create(
        fo,
        tracking=Tracking("1Z999AA10123456784", "UPS", "https://ups.example/1Z999AA10123456784"),
        notify_customer=True,
    )
    assert done["status"] == "SUCCESS"
    assert done["trackingInfo"] == [
        {
            "company": "UPS",
            "number": "1Z999AA10123456784",
            "url": "https://ups.example/1Z999AA10123456784",
        }
    ]
    assert fake.fulfillment_orders[fo].status() == "CLOSED"
    assert sorted(li["quantity"] for li in done["fulfillmentLineItems"]["nodes"]) == [1, 2]

    client.tags_add(gid("Order", 5), ["aoms:routed", "vip"])
    client.tags_add(gid("Order", 5), ["vip"])
    assert fake.orders[5]["tags"] == "aoms:routed, vip"
    with pytest.raises(ShopifyUserErrors, match="not found"):
        client.tags_add(gid("Order", 404), ["x"])


def test_refunds_and_returns_check_what_can_be_refunded_or_returned(
    fake: FakeShopifyAdmin,
) -> None:
    fake.put_order(shopify_payload(6, lines=[("X", 2, "10.00")]))
    fo = fake.add_fulfillment_order(6, {60: 2})
    client = client_for(fake)
    shipped = client.fulfillment_create(fo)
    line = shipped["fulfillmentLineItems"]["nodes"][0]["id"]

    opened = client.return_create(
        gid("Order", 6),
        [{"fulfillmentLineItemId": line, "quantity": 1, "returnReason": "SIZE_TOO_SMALL"}],
    )
    assert opened["status"] == "OPEN"
    with pytest.raises(ShopifyUserErrors) as too_many:
        client.return_create(gid("Order", 6), [{"fulfillmentLineItemId": line, "quantity": 2}])
    assert too_many.value.details["user_errors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"

    refund = client.refund_create(
        gid("Order", 6),
        lines=[
            {
                "lineItemId": gid("LineItem", 60),
                "quantity": 1,
                "restockType": "RETURN",
                "locationId": loc(1),
            }
        ],
        transactions=[{"amount": "10.00", "gateway": "bogus", "kind": "REFUND"}],
        note="size too small",
    )
    assert refund["totalRefundedSet"]["shopMoney"] == {"amount": "10.00", "currencyCode": "USD"}
    with pytest.raises(ShopifyUserErrors, match="more items than were purchased"):
        client.refund_create(
            gid("Order", 6), lines=[{"lineItemId": gid("LineItem", 60), "quantity": 2}]
        )


def test_threads_sharing_one_client_stay_within_the_bucket_together() -> None:
    """Four threads, 15 calls each reading three levels (3 points a level: 9 a call), against
    a 50-point bucket at 1,000 points/s that starts (nearly) empty: the threads take turns,
    none is throttled, and the whole takes at least 540 ÷ 1,000 s less what was there."""
    fake = FakeShopifyAdmin(restore_rate=1000.0, bucket=50.0)
    fake.stock(item(1), loc(1), 0)
    with fake.running() as url:
        client = ShopifyAdminClient(SHOP, TOKEN, base_url=url)
        fake.drain(50)
        time.sleep(0.012)  # room for the first call, which knows nothing of the bucket yet
        at_start = fake.available_points()
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            list(
                pool.map(
                    lambda _: [client.read_available([(item(1), loc(1))] * 3) for _ in range(15)],
                    range(4),
                )
            )
        elapsed = time.monotonic() - started
    assert fake.stats.requests == 60 and fake.stats.throttled == client.stats.throttled == 0
    assert fake.stats.points_spent == 60 * 9
    assert elapsed >= (540 - at_start) / 1000.0 - 0.002


def test_aoms_holds_on_shopify_are_one_per_reason_and_idempotent(fake: FakeShopifyAdmin) -> None:
    fake.put_order(shopify_payload(9, lines=[("X", 1, "10.00")]))
    fo = fake.add_fulfillment_order(9, {90: 1})
    client = client_for(fake)
    payment = hold_on_shopify(client, fo, "awaiting_payment")
    assert hold_on_shopify(client, fo, "awaiting_payment") == payment  # held once
    fraud = hold_on_shopify(client, fo, "high_fraud_risk", notes="score 91")
    holds = {h["handle"]: h for h in fake.fulfillment_orders[fo].holds}
    assert set(holds) == {"aoms-awaiting-payment", "aoms-high-fraud-risk"}
    assert holds["aoms-high-fraud-risk"]["reason"] == "HIGH_RISK_OF_FRAUD"
    assert holds["aoms-high-fraud-risk"]["reasonNotes"] == "score 91"
    assert release_on_shopify(client, fo, "awaiting_payment")
    assert [h["id"] for h in fake.fulfillment_orders[fo].holds] == [fraud]
    assert fake.fulfillment_orders[fo].status() == "ON_HOLD"
    assert not release_on_shopify(client, fo, "awaiting_payment")
    assert release_on_shopify(client, fo, "high_fraud_risk")
    assert fake.fulfillment_orders[fo].status() == "OPEN"
    with pytest.raises(ShopifyError, match="no fulfillment order"):
        hold_on_shopify(client, gid("FulfillmentOrder", 1), "manual_review")
    with pytest.raises(ValueError):
        hold_on_shopify(client, fo, "bad_mood")
