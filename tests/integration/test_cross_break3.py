"""Shopify pushes where they meet the lifecycle changes: a carrier's first scan of a label
aoms bought, a hold placed after hand-off and the 3PL's confirmation; on SQLite and
PostgreSQL; and a hold push retried by hand after its hold was released (it holds nothing).

Shopify pushes: the network of tests/integration/test_shopify_pushes.py (TEE only at A, CAP
only at B, Shopify's one fulfillment order at its location 1 = aoms's A). Labels: the world of
tests/integration/test_shipping_api.py (Hoboken, mugs and vases), with a fake Shopify store
for its shop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.db.shopify import SqlShopifyStore
from aoms.adapters.db.shopify_pushes import SqlShopifyPushes
from aoms.adapters.shopify.webhooks import sign
from aoms.bootstrap import Runtime
from aoms.services import handoff as svc
from aoms.services.shopify_pushes import MAX_ATTEMPTS
from tests.builders import T0, shopify_payload
from tests.conftest import SECRET
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.integration.test_shipping_api import LA, MONDAY, SHIPPO_TOKEN, World, _ok, world
from tests.integration.test_shopify_pushes import (
    LOC_A,
    LOC_B,
    client,
    fake,
    flush,
    fos,
    place,
    shopify_fos,
)

__all__ = ["client", "fake", "world"]  # the fixtures, used by name below

ACME = "acme.myshopify.com"
HOB = "gid://shopify/Location/7"


def _hold(client: TestClient, order_id: int) -> int:
    body = {"kind": "manual_review", "reason": "check", "actor": "ops"}
    answer = client.post(f"/v1/orders/{order_id}/holds", json=body)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _release(client: TestClient, hold_id: int) -> None:
    answer = client.post(f"/v1/holds/{hold_id}/release", json={"actor": "ops", "note": "ok"})
    assert answer.status_code == 200, answer.text


def _at_3pl(runtime: Runtime, fo_id: int) -> None:
    with SqlHandoffStore(runtime.store).handoff_transaction() as htx:
        svc.hand_off(htx, fo_id, T0)
        svc.accept(htx, fo_id, T0)


def _confirm(runtime: Runtime, fo_id: int) -> list[int]:
    with SqlHandoffStore(runtime.store).handoff_transaction() as htx:
        return list(svc.confirm_cancel(htx, fo_id, T0).new_fo_ids)


def _ship(runtime: Runtime, fo_id: int, ref: str, items: dict[str, int], **kw: Any) -> None:
    with SqlHandoffStore(runtime.store).handoff_transaction() as htx:
        svc.ship(htx, fo_id, svc.Shipment(ref, items, T0, **kw), T0)


def test_a_hold_after_hand_off_released_before_the_3pl_confirms_fulfils_on_shopify(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    order_id = place(client, runtime, fake, 5101)
    where = fos(runtime, order_id)
    _at_3pl(runtime, where["a"])
    hold_id = _hold(client, order_id)
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    [fo] = [f for f in fake.fulfillment_orders.values() if f.order_id == 5101]
    assert fo.status() == "ON_HOLD"
    _release(client, hold_id)
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    assert fo.status() == "OPEN"
    new = _confirm(runtime, where["a"])
    now = fos(runtime, order_id)
    assert now["a"] in new
    _at_3pl(runtime, now["a"])
    _ship(runtime, now["a"], "s-1", {"TEE": 2}, tracking_number="T-101", carrier="ups")
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    [made] = fake.fulfillments
    assert made["location"] == LOC_A
    assert [(ln["lineItem"]["id"], ln["quantity"]) for ln in made["lines"]] == [
        ("gid://shopify/LineItem/51010", 2)
    ]


def test_a_hold_after_hand_off_routed_to_another_location_fulfils_there_on_shopify(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    """A's 3PL is stopped by a hold; before it confirms, A's tees are counted gone and B got
    some: the tees are routed to B, and Shopify's fulfillment is made at location 2."""
    order_id = place(client, runtime, fake, 5102)
    where = fos(runtime, order_id)
    _at_3pl(runtime, where["a"])
    hold_id = _hold(client, order_id)
    with runtime.store.transaction() as tx:
        tx.change_stock("TEE", "b", on_hand=5, reason="count", reference="t", now=T0)
        tx.change_stock("TEE", "a", on_hand=-5, reason="count", reference="t", now=T0)
    new = _confirm(runtime, where["a"])
    _release(client, hold_id)
    assert flush(runtime) == {"sent": 2, "retry": 0, "failed": 0}
    now = {f: i for f, i in fos(runtime, order_id).items() if i in new}
    assert set(now) == {"b"}
    _at_3pl(runtime, now["b"])
    _ship(runtime, now["b"], "s-1", {"TEE": 2, "CAP": 1}, tracking_number="T-102")
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    [made] = fake.fulfillments
    assert made["location"] == LOC_B
    assert sorted((ln["lineItem"]["id"], ln["quantity"]) for ln in made["lines"]) == [
        ("gid://shopify/LineItem/51020", 2),
        ("gid://shopify/LineItem/51021", 1),
    ]
    assert [f for f in shopify_fos(fake, 5102) if any(f[1].values())] == []


# -- a label aoms bought, of a Shopify order ----------------------------------------------------


@pytest.fixture
def acme(world: World) -> Iterator[tuple[World, FakeShopifyAdmin]]:
    shopify = FakeShopifyAdmin(shop=ACME, restore_rate=1000.0, bucket=2000.0)
    shopify.locations[HOB] = "Hoboken"
    shopify.start()
    rt = world.runtime
    rt.settings = rt.settings.model_copy(
        update={"shopify_admin_tokens": {ACME: SecretStr(shopify.token)},
                "shopify_admin_url": shopify.base_url}
    )  # fmt: skip
    SqlShopifyStore(rt.store).map_locations(ACME, {"hob": HOB})
    yield world, shopify
    shopify.stop()


def _acme_hook(w: World, topic: str, body: dict[str, Any], n: int) -> None:
    raw = json.dumps(body).encode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": ACME,
               "X-Shopify-Webhook-Id": f"acme-{n}", "X-Shopify-Hmac-Sha256": sign(raw, SECRET),
               "content-type": "application/json"}  # fmt: skip
    assert w.client.post("/webhooks/shopify", content=raw, headers=headers).status_code == 200
    w.runtime.process_inbox()


def _acme_order(w: World, shopify: FakeShopifyAdmin, number: int) -> tuple[int, int]:
    """Shopify order `number`: 2 mugs (line item number*10) to Los Angeles; (id, its FO)."""
    body = shopify_payload(number, lines=[("mug", 2, "12.00")], financial_status="paid")
    body["shipping_address"] = {k: v for k, v in LA.items() if k != "name"}
    shopify.put_order(body)
    shopify.add_fulfillment_order(number, {number * 10: 2}, HOB)
    _acme_hook(w, "orders/create", body, number)
    found = _ok(w.client.get("/v1/orders", params={"q": str(number)}))["items"]
    order_id = int(next(o["id"] for o in found if o["external_id"] == str(number)))
    [fo] = _ok(w.client.get(f"/v1/orders/{order_id}"))["fulfilment_orders"]
    return order_id, int(fo["id"])


def _scanned(w: World, tn: str, status: str, at: str) -> None:
    hook = f"/webhooks/shippo?token={SHIPPO_TOKEN}"
    body = {"event": "track_updated", "test": True, "data": {
        "carrier": "usps", "tracking_number": tn, "eta": None,
        "tracking_status": {"status": status, "status_details": status.title(),
                            "status_date": at, "location": {"city": "Jersey City"}},
        "tracking_history": []}}  # fmt: skip
    _ok(w.client.post(hook, json=body))


def test_a_label_scanned_parcel_of_a_shopify_order_is_fulfilled_once_with_its_tracking(
    acme: tuple[World, FakeShopifyAdmin],
) -> None:
    w, shopify = acme
    rt = w.runtime
    order_id, fo = _acme_order(w, shopify, 7001)
    SqlHandoffStore(rt.store).set_connection(
        "hob", kind="rest", secret="s" * 24, base_url="http://x", now=MONDAY
    )
    with SqlHandoffStore(rt.store).handoff_transaction() as htx:
        svc.hand_off(htx, fo, MONDAY)
        svc.accept(htx, fo, MONDAY)
    shipment = _ok(w.client.post(f"/v1/fulfilment-orders/{fo}/shipments", json={}), 201)
    [parcel] = shipment["parcels"]
    tn = parcel["tracking_number"]
    _scanned(w, tn, "TRANSIT", "2026-12-08T03:00:00Z")
    assert _ok(w.client.get(f"/v1/fulfilment-orders/{fo}"))["status"] == "shipped"
    sent = flush(rt)
    assert sent == {"sent": 1, "retry": 0, "failed": 0}
    [made] = shopify.fulfillments
    assert made["location"] == HOB
    assert made["tracking"][0]["number"] == tn
    assert made["tracking"][0]["company"] == parcel["carrier"].upper()
    assert [(ln["lineItem"]["id"], ln["quantity"]) for ln in made["lines"]] == [
        ("gid://shopify/LineItem/70010", 2)
    ]
    # The 3PL reports the same parcel (its own reference, the label's tracking): nothing new.
    with SqlHandoffStore(rt.store).handoff_transaction() as htx:
        svc.ship(htx, fo, svc.Shipment("3pl-1", {"mug": 2}, MONDAY, tracking_number=tn,
                                       carrier="usps"), MONDAY)  # fmt: skip
    assert flush(rt).get("sent", 0) == 0
    # Shopify's echo of aoms's fulfillment ships nothing more; delivery neither.
    echo = {"id": int(made["id"].rsplit("/", 1)[-1]), "order_id": 7001, "status": "success",
            "tracking_number": tn, "created_at": MONDAY.isoformat(),
            "line_items": [{"id": 70010, "quantity": 2}]}  # fmt: skip
    _acme_hook(w, "fulfillments/create", echo, 1)
    _scanned(w, tn, "DELIVERED", "2026-12-09T17:00:00Z")
    assert flush(rt).get("sent", 0) == 0
    assert len(shopify.fulfillments) == 1
    state = _ok(w.client.get(f"/v1/orders/{order_id}/lifecycle"))
    assert state["state"] == "shipped"


def test_a_failed_hold_push_retried_after_the_release_does_not_hold_the_order_on_shopify(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    place(client, runtime, fake, 5103)
    order_id = int(client.get("/v1/orders", params={"q": "5103"}).json()["items"][0]["id"])
    hold_id = _hold(client, order_id)
    kept = fake.orders.pop(5103)  # Shopify cannot find the order for a while: the push fails
    while runtime.relay_events():
        pass
    at = T0
    for _ in range(MAX_ATTEMPTS):
        runtime.clock = lambda at=at: at
        runtime.send_shopify_pushes()
        at += timedelta(hours=2)
    [failed] = SqlShopifyPushes(runtime.store).listing("shop.myshopify.com", "failed")
    assert failed["kind"] == "hold"
    fake.orders[5103] = kept
    _release(client, hold_id)  # aoms's hold is released; the release reaches Shopify
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    # A person goes through the failed pushes and retries this one.
    answer = client.post(f"/v1/shops/shop.myshopify.com/shopify/pushes/{failed['id']}/retry")
    assert answer.status_code == 200, answer.text
    runtime.send_shopify_pushes()
    [fo] = [f for f in fake.fulfillment_orders.values() if f.order_id == 5103]
    assert fo.status() == "OPEN"
    assert "aoms-hold-manual-review" not in str(fake.orders[5103].get("tags") or "")
