"""What aoms did reaches Shopify over real HTTP (the local fake Admin API): shipments as
fulfillments with tracking at the location they left from, holds as fulfillment-order holds
and tags; on SQLite and PostgreSQL.

The network (tests.builders): A 50 km from the customer, B 80 km. TEE is stocked only at A,
CAP only at B, so an order of both ships in two parcels. Shopify had put the whole order on
one fulfillment order at its location 1 (aoms's A); aoms's B is Shopify's location 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.db.shopify import SqlShopifyStore
from aoms.adapters.db.shopify_pushes import SqlShopifyPushes
from aoms.adapters.shopify.webhooks import sign
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from aoms.services import handoff as svc
from aoms.services.shopify_pushes import MAX_ATTEMPTS
from tests.builders import T0, network, shopify_payload
from tests.conftest import SECRET
from tests.fakes.shopify_admin import FakeShopifyAdmin

SHOP = "shop.myshopify.com"
LOC_A, LOC_B = "gid://shopify/Location/1", "gid://shopify/Location/2"


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    shopify = FakeShopifyAdmin(shop=SHOP, restore_rate=1000.0, bucket=2000.0)
    shopify.locations.update({LOC_A: "A", LOC_B: "B"})
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
    network(runtime.engine, {("TEE", "a"): 5, ("CAP", "b"): 5})
    SqlShopifyStore(runtime.store).map_locations(SHOP, {"a": LOC_A, "b": LOC_B})
    for loc in ("a", "b"):  # each a 3PL's warehouse
        SqlHandoffStore(runtime.store).set_connection(
            loc, kind="rest", secret="s" * 24, base_url="http://x", now=T0
        )
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def webhook(client: TestClient, runtime: Runtime, topic: str, body: dict[str, Any], n: int) -> None:
    raw = json.dumps(body).encode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": SHOP,
               "X-Shopify-Webhook-Id": f"w-{n}", "X-Shopify-Hmac-Sha256": sign(raw, SECRET),
               "content-type": "application/json"}  # fmt: skip
    assert client.post("/webhooks/shopify", content=raw, headers=headers).status_code == 200
    runtime.process_inbox()


def place(client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin, number: int,
          financial_status: str = "paid") -> int:  # fmt: skip
    """Order `number`: 2 TEE (line item number*10) and 1 CAP (number*10 + 1), on one Shopify
    fulfillment order at location 1."""
    body = shopify_payload(number, lines=[("TEE", 2, "20.00"), ("CAP", 1, "15.00")],
                           financial_status=financial_status)  # fmt: skip
    fake.put_order(body)
    fake.add_fulfillment_order(number, {number * 10: 2, number * 10 + 1: 1}, LOC_A)
    webhook(client, runtime, "orders/create", body, number)
    found = client.get("/v1/orders", params={"q": str(number)}).json()["items"]
    return int(next(o["id"] for o in found if o["external_id"] == str(number)))


def fos(runtime: Runtime, order_id: int) -> dict[str, int]:
    """aoms's fulfilment orders of the order: location -> id."""
    with SqlHandoffStore(runtime.store).handoff_transaction() as htx:
        return {f.location_id: f.id for f in htx.order_fos(order_id)}


def ship(runtime: Runtime, fo_id: int, ref: str, items: dict[str, int], **kw: Any) -> None:
    """The FO goes to its 3PL, which accepts it and ships `items`."""
    with SqlHandoffStore(runtime.store).handoff_transaction() as htx:
        svc.hand_off(htx, fo_id, T0)
        svc.accept(htx, fo_id, T0)
        svc.ship(htx, fo_id, svc.Shipment(ref, items, T0, **kw), T0)


def flush(runtime: Runtime) -> dict[str, int]:
    """What the workers do: relay the events (queueing the pushes), then send them."""
    while runtime.relay_events():
        pass
    return runtime.send_shopify_pushes()


def pushes(runtime: Runtime) -> list[dict[str, Any]]:
    return sorted(SqlShopifyPushes(runtime.store).listing(SHOP), key=lambda p: p["id"])


def shopify_fos(fake: FakeShopifyAdmin, number: int) -> list[tuple[str | None, dict[str, int]]]:
    """Shopify's fulfillment orders of the order: (location, line item id -> units left)."""
    return [
        (fo.location, {li.rsplit("/", 1)[-1]: left for li, left in fo.lines.values()})
        for fo in fake.fulfillment_orders.values()
        if fo.order_id == number
    ]


def test_each_parcel_is_fulfilled_on_shopify_from_where_it_left(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    order_id = place(client, runtime, fake, 5001)
    where = fos(runtime, order_id)
    assert set(where) == {"a", "b"}
    # B's parcel (the cap) leaves with a UPS tracking number.
    ship(runtime, where["b"], "s-1", {"CAP": 1}, tracking_number="1Z999", carrier="ups",
         tracking_url="https://ups.example/1Z999")  # fmt: skip
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    # Shopify's one fulfillment order at location 1 had the cap: its one unit was moved to
    # location 2 and fulfilled there with the tracking; the tees stay open at location 1.
    [made] = fake.fulfillments
    assert made["location"] == LOC_B
    assert [(ln["lineItem"]["id"], ln["quantity"]) for ln in made["lines"]] == [
        ("gid://shopify/LineItem/50011", 1)
    ]
    assert made["tracking"] == [
        {"company": "UPS", "number": "1Z999", "url": "https://ups.example/1Z999"}
    ]
    assert made["notifyCustomer"] is True
    assert sorted(shopify_fos(fake, 5001), key=str) == sorted(
        [(LOC_A, {"50010": 2, "50011": 0}), (LOC_B, {"50011": 0})], key=str
    )
    # Shopify's fulfillments/create for it comes back: aoms's own, so A's parcel, not yet
    # shipped, stays open with its 2 tees reserved.
    echo = {"id": int(made["id"].rsplit("/", 1)[-1]), "order_id": 5001, "status": "success",
            "tracking_number": "1Z999", "created_at": T0.isoformat(),
            "line_items": [{"id": 50011, "quantity": 1}]}  # fmt: skip
    webhook(client, runtime, "fulfillments/create", echo, 90)
    assert svc_status(runtime, where["a"]) == "open"
    assert reserved(runtime, "TEE", "a") == 2
    # A's parcel ships without tracking: fulfilled where Shopify has it, nothing moved.
    ship(runtime, where["a"], "s-2", {"TEE": 2})
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    assert len(fake.fulfillments) == 2
    second = fake.fulfillments[1]
    assert second["location"] == LOC_A and second["tracking"] == []
    assert [(ln["lineItem"]["id"], ln["quantity"]) for ln in second["lines"]] == [
        ("gid://shopify/LineItem/50010", 2)
    ]
    assert [p["status"] for p in pushes(runtime)] == ["done", "done"]
    assert pushes(runtime)[0]["result"]["moved"] != []
    # Relaying the same events again (a relay that died before marking them) sends nothing.
    with runtime.store.read() as conn:
        shipped = conn.execute(
            select(t.outbox.c.id, t.outbox.c.name, t.outbox.c.aggregate, t.outbox.c.data).where(
                t.outbox.c.name == "fulfilment_order.shipped"
            )
        ).all()
    from aoms.domain.events import Event

    runtime.publish([(r.id, Event(r.name, r.aggregate, dict(r.data))) for r in shipped])
    assert runtime.send_shopify_pushes() == {"sent": 0, "retry": 0, "failed": 0}
    assert len(fake.fulfillments) == 2 and len(pushes(runtime)) == 2


def svc_status(runtime: Runtime, fo_id: int) -> str:
    with runtime.store.read() as conn:
        return str(
            conn.execute(
                select(t.fulfilment_orders.c.status).where(t.fulfilment_orders.c.id == fo_id)
            ).scalar_one()
        )


def reserved(runtime: Runtime, sku: str, location: str) -> int:
    s = t.stock_levels.c
    with runtime.store.read() as conn:
        return int(
            conn.execute(
                select(s.reserved).where(s.sku == sku, s.location_id == location)
            ).scalar_one()
        )


def test_a_hold_holds_shopify_fulfillment_orders_and_tags_the_order_until_released(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    order_id = place(client, runtime, fake, 5002)
    answer = client.post(f"/v1/orders/{order_id}/holds",
                         json={"kind": "manual_review", "reason": "call the customer",
                               "actor": "ops"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    [fo] = [f for f in fake.fulfillment_orders.values() if f.order_id == 5002]
    assert fo.status() == "ON_HOLD"
    assert [(h["handle"], h["reason"], h["reasonNotes"]) for h in fo.holds] == [
        ("aoms-manual-review", "OTHER", "call the customer")
    ]
    assert "aoms-hold-manual-review" in fake.orders[5002]["tags"]
    hold_id = answer.json()["id"]
    released = client.post(f"/v1/holds/{hold_id}/release", json={"actor": "ops", "note": "ok"})
    assert released.status_code == 200, released.text
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    assert fo.status() == "OPEN" and fo.holds == []
    assert "aoms-hold-manual-review" not in fake.orders[5002]["tags"]


def test_a_push_shopify_refuses_waits_and_holds_back_the_order_s_later_pushes(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    order_id = place(client, runtime, fake, 5003)
    # Someone held the order in Shopify's admin: Shopify will not fulfil it.
    [fo] = [f for f in fake.fulfillment_orders.values() if f.order_id == 5003]
    fo.holds.append({"id": "gid://shopify/FulfillmentHold/1", "handle": "", "reason": "OTHER",
                     "reasonNotes": None, "heldByRequestingApp": False})  # fmt: skip
    where = fos(runtime, order_id)
    ship(runtime, where["b"], "s-1", {"CAP": 1}, tracking_number="T-1", carrier="usps")
    ship(runtime, where["a"], "s-2", {"TEE": 2}, tracking_number="T-2", carrier="usps")
    assert flush(runtime) == {"sent": 0, "retry": 1, "failed": 0}
    first, second = pushes(runtime)
    assert first["status"] == "pending" and first["attempts"] == 1
    assert "on hold on Shopify" in first["last_error"]
    assert second["attempts"] == 0  # waits behind the first: one order's pushes keep order
    assert first["next_attempt_at"] == T0 + timedelta(seconds=30)
    assert fake.fulfillments == []
    # The hold is released in Shopify; once the wait is over both go, in order.
    fo.holds.clear()
    runtime.clock = lambda: T0 + timedelta(seconds=31)
    assert runtime.send_shopify_pushes() == {"sent": 2, "retry": 0, "failed": 0}
    assert [f["tracking"][0]["number"] for f in fake.fulfillments] == ["T-1", "T-2"]


def test_a_push_that_keeps_failing_is_marked_failed_with_an_event_and_can_be_retried(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    # aoms's B is mapped to a Shopify location Shopify does not have: every move is refused.
    SqlShopifyStore(runtime.store).map_locations(SHOP, {"b": "gid://shopify/Location/99"})
    order_id = place(client, runtime, fake, 5004)
    ship(runtime, fos(runtime, order_id)["b"], "s-1", {"CAP": 1}, tracking_number="T-9")
    while runtime.relay_events():
        pass
    store = SqlShopifyPushes(runtime.store)
    at = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        runtime.clock = lambda at=at: at
        sent = runtime.send_shopify_pushes()
        assert sent == ({"sent": 0, "retry": 1, "failed": 0} if attempt < MAX_ATTEMPTS
                        else {"sent": 0, "retry": 0, "failed": 1})  # fmt: skip
        at += timedelta(hours=2)
    [failed] = store.listing(SHOP, "failed")
    assert failed["attempts"] == MAX_ATTEMPTS
    with runtime.store.read() as conn:
        names = [r.name for r in conn.execute(select(t.outbox.c.name))]
    assert names.count("shopify.push_failed") == 1
    assert "Location not found" in failed["last_error"]
    # The location is made in Shopify; a person retries the push.
    fake.locations["gid://shopify/Location/99"] = "B"
    answer = client.post(f"/v1/shops/{SHOP}/shopify/pushes/{failed['id']}/retry")
    assert answer.status_code == 200, answer.text
    assert runtime.send_shopify_pushes() == {"sent": 1, "retry": 0, "failed": 0}
    listed = client.get(f"/v1/shops/{SHOP}/shopify/pushes").json()["items"]
    assert [(p["kind"], p["status"]) for p in listed] == [("fulfilment", "done")]


def test_two_senders_never_take_the_same_push(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    order_id = place(client, runtime, fake, 5005)
    ship(runtime, fos(runtime, order_id)["b"], "s-1", {"CAP": 1}, tracking_number="T-5")
    while runtime.relay_events():
        pass
    store = SqlShopifyPushes(runtime.store)
    first = store.claim([SHOP], T0, 10)
    assert [p.kind for p in first] == ["fulfilment"]
    assert store.claim([SHOP], T0, 10) == []  # leased to the first sender
    # A sender that died: its lease runs out and another takes the push.
    assert [p.id for p in store.claim([SHOP], T0 + timedelta(minutes=6), 10)] == [first[0].id]


def test_a_return_aoms_approves_is_opened_on_shopify_against_the_fulfilled_units(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    order_id = place(client, runtime, fake, 5006)
    where = fos(runtime, order_id)
    ship(runtime, where["a"], "s-1", {"TEE": 2}, tracking_number="T-61", carrier="ups")
    ship(runtime, where["b"], "s-2", {"CAP": 1}, tracking_number="T-62", carrier="ups")
    assert flush(runtime) == {"sent": 2, "retry": 0, "failed": 0}
    tee_line = next(ln["id"] for f in fake.fulfillments for ln in f["lines"]
                    if ln["lineItem"]["id"] == "gid://shopify/LineItem/50060")  # fmt: skip
    for n, made in enumerate(fake.fulfillments):  # Shopify's echoes: the order is fulfilled
        echo = {
            "id": int(made["id"].rsplit("/", 1)[-1]),
            "order_id": 5006,
            "status": "success",
            "tracking_number": made["tracking"][0]["number"],
            "created_at": T0.isoformat(),
        }
        webhook(client, runtime, "fulfillments/create", echo, 60 + n)
    # One tee comes back, too small: approved by the default policy.
    answer = client.post(
        "/v1/returns",
        json={
            "order_id": order_id,
            "items": [{"line_no": 1, "quantity": 1, "reason": "too_small"}],
        },
    )
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert made["status"] != "rejected", made
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    [opened] = fake.returns
    assert opened["lines"] == [{"fulfillmentLineItemId": tee_line, "quantity": 1,
                                "returnReason": "SIZE_TOO_SMALL"}]  # fmt: skip
    # aoms's return now carries Shopify's return id: Shopify's returns/* webhooks find it.
    with runtime.store.read() as conn:
        external = conn.execute(
            select(t.returns.c.external_id).where(t.returns.c.id == made["id"])
        ).scalar_one()
    assert external == opened["id"].rsplit("/", 1)[-1]
    # A second tee: Shopify has 1 left returnable on that line.
    again = client.post(
        "/v1/returns",
        json={
            "order_id": order_id,
            "items": [{"line_no": 1, "quantity": 1, "reason": "scratched"}],
        },
    )
    assert again.status_code == 201, again.text
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    assert fake.returns[1]["lines"] == [{"fulfillmentLineItemId": tee_line, "quantity": 1,
                                         "returnReason": "OTHER",
                                         "returnReasonNote": "scratched"}]  # fmt: skip


def test_shopify_s_echo_of_aoms_s_fulfillment_is_not_taken_for_the_rest_of_the_line(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    """One line of 2 tees, 1 from A and 1 from B: B's parcel ships, Shopify echoes its
    fulfillment of 1 tee of that line — A's tee, still open, must stay reserved."""
    with runtime.store.transaction() as tx:  # a second tee at B (B had none)
        tx.change_stock("TEE", "b", on_hand=1, reason="count", reference="t", now=T0)
        tx.change_stock("TEE", "a", on_hand=-4, reason="count", reference="t", now=T0)
    body = shopify_payload(5007, lines=[("TEE", 2, "20.00")], financial_status="paid")
    fake.put_order(body)
    fake.add_fulfillment_order(5007, {50070: 2}, LOC_A)
    webhook(client, runtime, "orders/create", body, 5007)
    order_id = next(o["id"] for o in client.get("/v1/orders", params={"q": "5007"}).json()["items"])
    where = fos(runtime, order_id)
    assert set(where) == {"a", "b"} and reserved(runtime, "TEE", "a") == 1
    ship(runtime, where["b"], "s-1", {"TEE": 1}, tracking_number="T-71")
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    [made] = fake.fulfillments
    echo = {"id": int(made["id"].rsplit("/", 1)[-1]), "order_id": 5007, "status": "success",
            "tracking_number": "T-71", "created_at": T0.isoformat(),
            "line_items": [{"id": 50070, "quantity": 1}]}  # fmt: skip
    webhook(client, runtime, "fulfillments/create", echo, 91)
    assert svc_status(runtime, where["a"]) == "open"
    assert reserved(runtime, "TEE", "a") == 1


def test_a_fulfillment_made_in_shopify_s_admin_ships_only_the_lines_it_names(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    order_id = place(client, runtime, fake, 5008)
    where = fos(runtime, order_id)
    # The merchant fulfils the cap in Shopify's admin (not through aoms).
    done = {"id": 777, "order_id": 5008, "status": "success", "tracking_number": "X-1",
            "created_at": T0.isoformat(), "line_items": [{"id": 50081, "quantity": 1}]}  # fmt: skip
    webhook(client, runtime, "fulfillments/create", done, 92)
    assert svc_status(runtime, where["b"]) == "shipped"
    assert reserved(runtime, "CAP", "b") == 0
    # The tees have not left: A's fulfilment order is open, its 2 tees still reserved.
    assert svc_status(runtime, where["a"]) == "open"
    assert reserved(runtime, "TEE", "a") == 2
    assert flush(runtime)["sent"] == 0  # Shopify told aoms: nothing to tell it back


def test_the_same_shopify_fulfillment_told_again_takes_its_units_once(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    """One line of 2 tees over A and B: a fulfillment of 1 tee made in Shopify's admin takes
    one FO's tee; its update (delivered) must not take the other's."""
    with runtime.store.transaction() as tx:
        tx.change_stock("TEE", "b", on_hand=1, reason="count", reference="t", now=T0)
        tx.change_stock("TEE", "a", on_hand=-4, reason="count", reference="t", now=T0)
    body = shopify_payload(5009, lines=[("TEE", 2, "20.00")], financial_status="paid")
    fake.put_order(body)
    webhook(client, runtime, "orders/create", body, 5009)
    order_id = next(o["id"] for o in client.get("/v1/orders", params={"q": "5009"}).json()["items"])
    made = {"id": 888, "order_id": 5009, "status": "success", "created_at": T0.isoformat(),
            "line_items": [{"id": 50090, "quantity": 1}]}  # fmt: skip
    webhook(client, runtime, "fulfillments/create", made, 93)
    where = fos(runtime, order_id)
    assert sorted(svc_status(runtime, f) for f in where.values()) == ["open", "shipped"]
    webhook(client, runtime, "fulfillments/update", {**made, "shipment_status": "delivered",
                                                     "updated_at": T0.isoformat()}, 94)  # fmt: skip
    assert sorted(svc_status(runtime, f) for f in where.values()) == ["open", "shipped"]
