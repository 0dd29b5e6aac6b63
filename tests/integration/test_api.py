"""The HTTP API: Shopify webhooks, orders, inventory and errors, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aoms.adapters.db import schema as t
from aoms.adapters.db import setup as db_setup
from aoms.adapters.shopify.webhooks import sign
from aoms.bootstrap import Runtime, Workers
from aoms.domain.money import Money
from aoms.entrypoints.api.app import create_app
from tests.builders import later, network, shopify_payload
from tests.conftest import SECRET

SHOP = "shop.myshopify.com"
SHOPIFY_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "shopify"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def post_webhook(
    client: TestClient,
    payload: Any,
    *,
    topic: str = "orders/create",
    webhook_id: str = "w-1",
    event_id: str | None = None,
    secret: str = SECRET,
    body: bytes | None = None,
) -> Any:
    raw = body if body is not None else json.dumps(payload).encode()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Hmac-Sha256": sign(raw, secret),
        "X-Shopify-Webhook-Id": webhook_id,
        "Content-Type": "application/json",
    }
    if event_id:
        headers["X-Shopify-Event-Id"] = event_id
    return client.post("/webhooks/shopify", content=raw, headers=headers)


def count(rt: Runtime, table: t.Table) -> int:
    with rt.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_wrong_or_missing_signature_is_refused_and_nothing_is_stored(
    client: TestClient, runtime: Runtime
) -> None:
    payload = shopify_payload(820982911946154508, lines=[("X", 1, "10.00")])
    wrong = post_webhook(client, payload, secret="not-the-secret-at-all")
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["code"] == "invalid_signature"
    unsigned = client.post(
        "/webhooks/shopify",
        content=json.dumps(payload),
        headers={
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": "w-9",
        },
    )
    assert unsigned.status_code == 401
    assert count(runtime, t.webhook_inbox) == 0
    assert count(runtime, t.orders) == 0


def test_a_delivery_repeated_three_times_and_once_more_under_a_new_id_has_one_effect(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    payload = shopify_payload(820982911946154508, lines=[("X", 2, "10.00")])
    answers = [post_webhook(client, payload, webhook_id="w-1").json()["status"] for _ in range(3)]
    assert answers == ["accepted", "duplicate", "duplicate"]
    assert post_webhook(client, payload, webhook_id="w-2").json()["status"] == "accepted"
    result = runtime.process_inbox()
    assert (result.processed, result.ignored, result.failed) == (1, 1, 0)
    assert count(runtime, t.orders) == 1
    assert count(runtime, t.reservations) == 1
    stock = client.get("/v1/inventory", params={"sku": "X"}).json()["items"][0]
    assert (stock["reserved"], stock["available"]) == (2, 3)
    order = client.get("/v1/orders").json()["items"][0]
    assert order["external_id"] == "820982911946154508"  # above 2^53, exact


def test_the_same_event_id_under_another_webhook_id_is_a_duplicate(
    client: TestClient, runtime: Runtime
) -> None:
    payload = shopify_payload(42, lines=[("X", 1, "10.00")])
    assert post_webhook(client, payload, webhook_id="w-1", event_id="e-1").json()["status"] == (
        "accepted"
    )
    assert post_webhook(client, payload, webhook_id="w-2", event_id="e-1").json()["status"] == (
        "duplicate"
    )
    assert count(runtime, t.webhook_inbox) == 1


def test_an_update_that_arrives_before_its_create_still_ends_paid(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    created = shopify_payload(7, lines=[("X", 1, "10.00")], financial_status="pending")
    paid = shopify_payload(
        7, lines=[("X", 1, "10.00")], financial_status="paid", updated_at=later(3)
    )
    post_webhook(client, paid, topic="orders/updated", webhook_id="w-upd")
    post_webhook(client, created, topic="orders/create", webhook_id="w-new")
    runtime.process_inbox()
    items = client.get("/v1/orders").json()["items"]
    assert [(o["external_id"], o["financial_status"]) for o in items] == [("7", "paid")]
    assert client.get("/v1/inventory", params={"sku": "X"}).json()["items"][0]["reserved"] == 1


def test_orders_cancelled_releases_the_stock(client: TestClient, runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5})
    post_webhook(client, shopify_payload(8, lines=[("X", 2, "10.00")]), webhook_id="w-1")
    runtime.process_inbox()
    cancelled = shopify_payload(
        8, lines=[("X", 2, "10.00")], updated_at=later(9), cancelled_at=later(9)
    )
    post_webhook(client, cancelled, topic="orders/cancelled", webhook_id="w-2")
    runtime.process_inbox()
    order = client.get("/v1/orders").json()["items"][0]
    assert order["status"] == "cancelled"
    assert client.get("/v1/inventory", params={"sku": "X"}).json()["items"][0]["reserved"] == 0


def test_an_unreadable_body_is_kept_as_failed_with_its_code(
    client: TestClient, runtime: Runtime
) -> None:
    assert post_webhook(client, None, body=b'{"id": "nope"}').status_code == 200
    runtime.process_inbox()
    failed = client.get("/v1/webhooks/deliveries", params={"status": "failed"}).json()["items"]
    assert [(d["error_code"], d["webhook_id"]) for d in failed] == [("invalid_payload", "w-1")]
    assert count(runtime, t.orders) == 0


def _shopify_order_payloads() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(SHOPIFY_DATA.rglob("*.json")):
        if "schemas/" in str(path) and "/schemas/schemas/" in str(path):
            continue
        doc = json.loads(path.read_text())
        doc = doc.get("response", doc) if isinstance(doc, dict) else doc
        candidates = doc.get("orders", [doc.get("order", doc)]) if isinstance(doc, dict) else []
        for o in candidates:
            if (
                isinstance(o, dict)
                and isinstance(o.get("line_items"), list)
                and o.get("id")
                and isinstance(o.get("currency"), str)
                and len(o["currency"]) == 3
            ):
                found.append((str(path.relative_to(SHOPIFY_DATA)), o))
    return found


def test_every_real_shopify_order_payload_ingests_and_its_amounts_are_checked(
    client: TestClient, runtime: Runtime
) -> None:
    payloads = _shopify_order_payloads()
    if not payloads:
        pytest.skip("../shared/data/shopify is not beside the checkout")
    for n, (_, original) in enumerate(payloads):
        # Distinct orders, so every payload is applied (not deduplicated by id).
        distinct = dict(original, id=int(original["id"]) + n)
        assert post_webhook(client, distinct, webhook_id=f"w-{n}").status_code == 200
    result = runtime.process_inbox()
    assert (result.processed, result.failed) == (len(payloads), 0)
    items = client.get("/v1/orders", params={"limit": 100}).json()["items"]
    assert len(items) == len(payloads)
    # The docs' example payloads add up; the legacy REST fixture lists three 199.00 lines but
    # states totals for two (total 409.94 = 398.00 + 11.94 tax): flagged, not dropped.
    by_source = dict(zip([p for p, _ in payloads], reversed(items), strict=True))
    checked = 0
    for source, order in by_source.items():
        detail = client.get(f"/v1/orders/{order['id']}").json()
        if source.startswith("webhooks_gadget"):
            assert detail["amounts"]["adds_up"], source
            assert detail["amounts"]["total"] == "404.95"
            checked += 1
        if source.endswith("shopify_python_api/order.json"):
            assert not detail["amounts"]["adds_up"]
            assert detail["amounts"]["line_items"] == "597.00"
            checked += 1
    assert checked == 8  # 7 example payloads of the docs + the legacy fixture


def test_the_neutral_order_api_routes_and_is_idempotent(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    body = {
        "shop": "b2b.example",
        "channel": "b2b",
        "external_id": "PO-1",
        "currency": "USD",
        "placed_at": "2026-11-02T12:00:00Z",
        "shipping_address": {"country_code": "US", "latitude": 0.0, "longitude": 10.0},
        "lines": [{"sku": "X", "quantity": 2, "unit_price": "10.00", "grams": 500}],
    }
    first = client.post("/v1/orders", json=body)
    assert first.status_code == 201
    assert first.json()["order"]["status"] == "routed"
    assert first.json()["order"]["routing"][0]["cost"] == "5.50"  # 50 km, 1000 g: 4.00 + 1.50
    again = client.post("/v1/orders", json=body)
    assert (again.status_code, again.json()["outcome"]) == (200, "stale")
    assert count(runtime, t.reservations) == 1


@pytest.mark.parametrize(
    "change, field",
    [
        ({"currency": "usd"}, "currency"),
        ({"lines": [{"sku": "X", "quantity": 0, "unit_price": "1.00"}]}, "lines.0.quantity"),
        ({"lines": [{"sku": "X", "quantity": 1, "unit_price": 1.5}]}, "lines.0.unit_price"),
        ({"placed_at": "2026-11-02T12:00:00"}, "placed_at"),
    ],
)
def test_bad_orders_get_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    body = {
        "shop": "s",
        "external_id": "1",
        "currency": "USD",
        "placed_at": "2026-11-02T12:00:00Z",
        "shipping_address": {},
        "lines": [{"sku": "X", "quantity": 1, "unit_price": "1.00"}],
    } | change
    answer = client.post("/v1/orders", json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert (answer.json()["code"], answer.json()["field"]) == ("invalid_input", field)


def test_inventory_adjustments_are_idempotent_by_key(client: TestClient, runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5})
    adj = {
        "sku": "X",
        "location_id": "a",
        "delta": 3,
        "reason": "receipt",
        "idempotency_key": "asn-77",
    }
    first = client.post("/v1/inventory/adjustments", json=adj).json()
    second = client.post("/v1/inventory/adjustments", json=adj).json()
    assert (first["applied"], first["level"]["on_hand"]) == (True, 8)
    assert (second["applied"], second["level"]["on_hand"]) == (False, 8)
    count_to = client.post(
        "/v1/inventory/adjustments",
        json={"sku": "X", "location_id": "a", "set_on_hand": 2, "reason": "cycle_count"},
    ).json()
    assert count_to["level"]["on_hand"] == 2
    too_low = client.post(
        "/v1/inventory/adjustments",
        json={"sku": "X", "location_id": "a", "delta": -3, "reason": "damage"},
    )
    assert (too_low.status_code, too_low.json()["field"]) == (422, "delta")
    unknown = client.post(
        "/v1/inventory/adjustments",
        json={"sku": "X", "location_id": "zz", "delta": 1, "reason": "receipt"},
    )
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_location")


def test_orders_page_by_cursor_and_unknown_ids_are_problems(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 50})
    for n in range(5):
        post_webhook(
            client, shopify_payload(100 + n, lines=[("X", 1, "10.00")]), webhook_id=f"w-{n}"
        )
    runtime.process_inbox()
    seen: list[str] = []
    cursor = None
    while True:
        page = client.get(
            "/v1/orders", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [o["external_id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["104", "103", "102", "101", "100"]
    missing = client.get("/v1/orders/999")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert client.get("/v1/orders", params={"cursor": "x"}).json()["code"] == "invalid_input"


def test_concurrent_inbox_workers_apply_each_delivery_once(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 1000})
    for n in range(60):
        created = shopify_payload(500 + n % 20, lines=[("X", 1, "10.00")])
        newer = shopify_payload(500 + n % 20, lines=[("X", 2, "10.00")], updated_at=later(n))
        post_webhook(client, created if n < 20 else newer, webhook_id=f"w-{n}")
    workers = Workers(runtime)
    runtime.settings.inbox_threads = 4
    workers.start()
    try:
        for _ in range(400):
            if not client.get("/v1/summary").json()["webhooks"].get("pending"):
                break
            time.sleep(0.05)
    finally:
        workers.stop()
    summary = client.get("/v1/summary").json()
    assert summary["webhooks"].get("pending", 0) == 0
    assert summary["webhooks"].get("failed", 0) == 0
    assert summary["orders"] == 20
    # Every order ends at its newest version (2 units): 40 reserved, none twice.
    assert client.get("/v1/inventory", params={"sku": "X"}).json()["items"][0]["reserved"] == 40
    with runtime.store.read() as conn:
        active = conn.execute(
            select(func.sum(t.reservations.c.quantity)).where(t.reservations.c.status == "active")
        ).scalar_one()
    assert active == 40


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.update(shipping_address=[1, 2]),
        lambda p: p.update(shipping_lines={"price": "1.00"}),
        lambda p: p["line_items"][0].update(grams=1e30),
        lambda p: p["line_items"][0].update(quantity=2**63),
        lambda p: p["line_items"][0].update(price="100000000000000000"),
        lambda p: p["line_items"][0].update(tax_lines="x"),
        lambda p: p.update(updated_at="9999-12-31T23:00:00-05:00"),
        lambda p: p["line_items"][0].update(sku="S" * 300),
    ],
)
def test_an_odd_delivery_fails_alone_and_does_not_block_the_next(
    client: TestClient, runtime: Runtime, mutate: Any
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    odd = shopify_payload(1, lines=[("X", 1, "10.00")])
    mutate(odd)
    post_webhook(client, odd, webhook_id="w-odd")
    post_webhook(client, shopify_payload(2, lines=[("X", 1, "10.00")]), webhook_id="w-good")
    result = runtime.process_inbox()
    assert (result.processed, result.failed) == (1, 1)
    failed = client.get("/v1/webhooks/deliveries", params={"status": "failed"}).json()["items"]
    assert [d["webhook_id"] for d in failed] == ["w-odd"]
    assert failed[0]["error_code"] == "invalid_payload"
    assert [o["external_id"] for o in client.get("/v1/orders").json()["items"]] == ["2"]


def test_a_paid_update_keeps_what_each_line_holds(client: TestClient, runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 1})
    post_webhook(client, shopify_payload(9, lines=[("X", 3, "10.00")]), webhook_id="w-1")
    paid = shopify_payload(
        9, lines=[("X", 3, "10.00")], financial_status="paid", updated_at=later(5)
    )
    post_webhook(client, paid, topic="orders/paid", webhook_id="w-2")
    runtime.process_inbox()
    order_id = client.get("/v1/orders").json()["items"][0]["id"]
    detail = client.get(f"/v1/orders/{order_id}").json()
    assert detail["financial_status"] == "paid"
    assert [(ln["reserved"], ln["backordered"]) for ln in detail["lines"]] == [(1, 2)]


def test_units_removed_by_an_edit_are_released(client: TestClient, runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5})
    post_webhook(client, shopify_payload(10, lines=[("X", 3, "10.00")]), webhook_id="w-1")
    edited = shopify_payload(10, lines=[("X", 3, "10.00")], updated_at=later(5))
    edited["line_items"][0]["current_quantity"] = 1  # Shopify 2024-01+: after removals
    post_webhook(client, edited, topic="orders/updated", webhook_id="w-2")
    runtime.process_inbox()
    assert client.get("/v1/inventory", params={"sku": "X"}).json()["items"][0]["reserved"] == 1


def test_the_shop_domain_is_one_spelling(client: TestClient, runtime: Runtime) -> None:
    payload = shopify_payload(11, lines=[("X", 1, "10.00")])
    raw = json.dumps(payload).encode()
    answers = []
    for spelling in ("shop.myshopify.com", "SHOP.myshopify.com", "Shop.MyShopify.com."):
        answers.append(
            client.post(
                "/webhooks/shopify",
                content=raw,
                headers={
                    "X-Shopify-Topic": "orders/create",
                    "X-Shopify-Shop-Domain": spelling,
                    "X-Shopify-Hmac-Sha256": sign(raw, SECRET),
                    "X-Shopify-Webhook-Id": "w-1",
                },
            ).json()["status"]
        )
    assert answers == ["accepted", "duplicate", "duplicate"]


def test_stock_cannot_be_counted_below_what_is_reserved(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 3})
    post_webhook(client, shopify_payload(12, lines=[("X", 2, "10.00")]), webhook_id="w-1")
    runtime.process_inbox()
    refused = client.post(
        "/v1/inventory/adjustments",
        json={"sku": "X", "location_id": "a", "set_on_hand": 1, "reason": "cycle_count"},
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "insufficient_stock")
    assert client.get("/v1/summary").json()["oversold_units"] == 0
    ok = client.post(
        "/v1/inventory/adjustments",
        json={"sku": "X", "location_id": "a", "set_on_hand": 2, "reason": "cycle_count"},
    )
    assert ok.json()["level"]["available"] == 0


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("get", "/v1/orders?cursor=²", None),
        ("get", "/v1/orders/99999999999999999999999", None),
        ("post", "/v1/orders/99999999999999999999999/cancel", None),
        (
            "put",
            "/v1/locations/" + "L" * 70,
            {"name": "x", "lat": 0, "lng": 0, "country_code": "US", "currency": "USD"},
        ),
        ("put", "/v1/rate-cards/usd", {"distance_km": [1], "weight_g": [1], "prices": [["1"]]}),
        (
            "post",
            "/v1/inventory/adjustments",
            {"sku": "X", "location_id": "a", "delta": 10**12, "reason": "r"},
        ),
    ],
)
def test_out_of_range_requests_are_4xx_problems(
    client: TestClient, method: str, url: str, body: Any
) -> None:
    answer = getattr(client, method)(url, **({"json": body} if body is not None else {}))
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_bad_order_values_are_refused(client: TestClient) -> None:
    base = {
        "shop": "s",
        "external_id": "1",
        "currency": "USD",
        "shipping_address": {},
        "placed_at": "2026-11-02T12:00:00Z",
        "lines": [{"sku": "X", "quantity": 1, "unit_price": "1.00"}],
    }
    for change in (
        {"placed_at": "9999-12-31T23:00:00-05:00"},
        {"name": "n" * 300},
        {"lines": [{"sku": "X", "quantity": 1, "unit_price": "-1.00"}]},
        {"lines": [{"sku": "X", "quantity": 1, "unit_price": "1.00", "grams": 10**20}]},
    ):
        answer = client.post("/v1/orders", json=base | change)
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid_input"), change


def test_stock_that_arrives_goes_to_the_oldest_backorders_first(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 1})
    for n in range(3):
        post_webhook(
            client, shopify_payload(20 + n, lines=[("X", 2, "10.00")]), webhook_id=f"w-{n}"
        )
    runtime.process_inbox()
    statuses = {o["external_id"]: o["status"] for o in client.get("/v1/orders").json()["items"]}
    assert statuses == {"20": "backordered", "21": "backordered", "22": "backordered"}
    receipt = client.post(
        "/v1/inventory/adjustments",
        json={"sku": "X", "location_id": "b", "delta": 3, "reason": "receipt"},
    ).json()
    # 4 units now: #20 keeps its 1 and takes 1 more, #21 takes 2; none is left for #22, which
    # is not even tried.
    assert receipt["rerouted"] == {"routed": 2}
    statuses = {o["external_id"]: o["status"] for o in client.get("/v1/orders").json()["items"]}
    assert statuses == {"20": "routed", "21": "routed", "22": "backordered"}
    assert client.get("/v1/summary").json()["oversold_units"] == 0


def test_an_unroutable_order_is_routed_once_a_rate_card_exists(
    client: TestClient, runtime: Runtime
) -> None:
    with runtime.store.writer() as conn:
        db_setup.upsert_location(
            conn,
            id="a",
            name="A",
            lat=0.0,
            lng=10.3,
            country_code="US",
            handling=Money.of("1.00", "USD"),
            now=later(0),
        )
    client.post(
        "/v1/inventory/adjustments",
        json={"sku": "X", "location_id": "a", "delta": 2, "reason": "receipt"},
    )
    post_webhook(client, shopify_payload(30, lines=[("X", 1, "10.00")]), webhook_id="w-1")
    runtime.process_inbox()
    assert client.get("/v1/orders").json()["items"][0]["status"] == "unroutable"
    card = client.put(
        "/v1/rate-cards/USD", json={"distance_km": [1000], "weight_g": [5000], "prices": [["5.00"]]}
    ).json()
    assert card["rerouted"] == {"routed": 1}
    order_id = client.get("/v1/orders").json()["items"][0]["id"]
    assert client.get(f"/v1/orders/{order_id}").json()["routing"][-1]["cost"] == "6.00"
    again = client.post(f"/v1/orders/{order_id}/route").json()
    assert again["status"] == "routed"
    assert client.get("/v1/inventory", params={"sku": "X"}).json()["items"][0]["reserved"] == 1


def test_an_idempotency_key_cannot_be_reused_for_another_item(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 1, ("Y", "a"): 1})
    first = {"sku": "X", "location_id": "a", "delta": 1, "reason": "r", "idempotency_key": "k"}
    assert client.post("/v1/inventory/adjustments", json=first).status_code == 200
    reused = client.post("/v1/inventory/adjustments", json=first | {"sku": "Y"})
    assert (reused.status_code, reused.json()["code"]) == (409, "conflict")
    assert client.get("/v1/orders", params={"status": "bogus"}).status_code == 422


def test_lone_surrogates_and_huge_totals_are_refused_not_stored(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    raw = (b'{"shop": "s", "external_id": "1", "currency": "USD", "placed_at": '
           b'"2026-11-02T12:00:00Z", "shipping_address": {"city": "Chic\\udc00ago"}, '
           b'"lines": [{"sku": "X", "quantity": 1, "unit_price": "1.00"}]}')  # fmt: skip
    answer = client.post("/v1/orders", content=raw, headers={"content-type": "application/json"})
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_input")
    lines = [{"sku": f"S{i}", "quantity": 100000, "unit_price": "9999999999.99"} for i in range(3)]
    body = {"shop": "s", "external_id": "2", "currency": "USD", "shipping_address": {},
            "placed_at": "2026-11-02T12:00:00Z", "lines": lines}  # fmt: skip
    answer = client.post("/v1/orders", json=body)
    assert (answer.status_code, answer.json()["field"]) == (422, "lines")
    hook = shopify_payload(40, lines=[("X", 1, "10.00")])
    hook["shipping_address"]["city"] = "Chic\udc00ago"
    post_webhook(client, None, body=json.dumps(hook).encode(), webhook_id="w-s")
    runtime.process_inbox()
    order_id = client.get("/v1/orders").json()["items"][0]["id"]
    detail = client.get(f"/v1/orders/{order_id}")
    assert detail.status_code == 200
    assert detail.json()["shipping_address"]["city"] == "Chic?ago"
    assert count(runtime, t.orders) == 1


def test_an_order_posted_is_answered_as_it_is_then_read(
    client: TestClient, runtime: Runtime
) -> None:
    """The POST's answer writes times and amounts as GET /v1/orders/{id} does (ISO 8601 with
    Z, money as strings), so a client parses one shape."""
    from tests.builders import post_order

    network(runtime.engine, {("X", "a"): 5})
    posted = post_order(client, "shop.myshopify.com", "SAME-1", ("X", 2))
    assert posted.status_code == 201, posted.text
    order = posted.json()["order"]
    assert order == client.get(f"/v1/orders/{order['id']}").json()
    assert order["placed_at"].endswith("Z") and isinstance(order["amounts"]["total"], str)
