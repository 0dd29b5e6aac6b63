"""What aoms tells Shopify (services.shopify_pushes) and an aoms edit kept across Shopify's
updates (orders.channel_key), where they once broke: a parcel shipped under aoms's own hold, a
retry after half a push, two shipments under one tracking number, an address geocoded or
corrected after an edit; over real HTTP against the fake Admin API, on SQLite and PostgreSQL.

The network is that of tests.integration.test_shopify_pushes: TEE stocked only at A (Shopify's
location 1), CAP only at B (location 2); an order of both ships in two parcels.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from aoms.adapters.db import schema as t
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.db.shopify_pushes import SqlShopifyPushes
from aoms.adapters.shopify.fulfilment_orders import ShopifyPushAdmin
from aoms.bootstrap import Runtime
from aoms.domain.errors import ShopifyUnavailable
from aoms.entrypoints.api.app import create_app
from aoms.services import handoff as svc
from aoms.services.shopify_pushes import Take, drain
from tests.builders import T0, later, network, shopify_payload
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.integration.test_lifecycle import deliver, order_id
from tests.integration.test_lifecycle import reserved as reserved_at
from tests.integration.test_shopify_pushes import (  # the fixtures, used by name below
    LOC_A,
    LOC_B,
    SHOP,
    client,
    fake,
    flush,
    fos,
    place,
    pushes,
    ship,
    shopify_fos,
    webhook,
)

__all__ = ["client", "fake"]


def remaining(fake: FakeShopifyAdmin, number: int) -> int:
    """Units Shopify still has to fulfil on the order."""
    return sum(sum(left.values()) for _, left in shopify_fos(fake, number))


def test_a_shipment_made_while_aoms_holds_the_order_reaches_shopify_after_the_release(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    oid = place(client, runtime, fake, 6001)
    where = fos(runtime, oid)
    with SqlHandoffStore(runtime.store).handoff_transaction() as htx:
        svc.hand_off(htx, where["a"], T0)
        svc.accept(htx, where["a"], T0)
    # The 3PL at A has the order; ops then hold it (a risk check came late), and aoms holds
    # Shopify's fulfillment order too.
    hold = {"kind": "manual_review", "reason": "check", "actor": "ops"}
    held = client.post(f"/v1/orders/{oid}/holds", json=hold)
    assert held.status_code == 201, held.text
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    # The 3PL had already packed the tees: they leave. Ops release the hold.
    with SqlHandoffStore(runtime.store).handoff_transaction() as htx:
        svc.ship(htx, where["a"], svc.Shipment("s-1", {"TEE": 2}, T0, tracking_number="T-61"),
                 T0)  # fmt: skip
    released = client.post(f"/v1/holds/{held.json()['id']}/release",
                           json={"actor": "ops", "note": "ok"})  # fmt: skip
    assert released.status_code == 200, released.text
    at = T0
    for _ in range(12):  # the workers, for a day
        runtime.clock = lambda at=at: at
        flush(runtime)
        at += timedelta(hours=2)
    assert [p["status"] for p in pushes(runtime)] == ["done", "done", "done"]
    assert [f["tracking"][0]["number"] for f in fake.fulfillments] == ["T-61"]


class SecondFulfilLost(ShopifyPushAdmin):
    """Shopify's admin whose second fulfillmentCreate of the test is lost on the way."""

    calls = 0

    def fulfil(self, groups: Sequence[Take], tracking: Mapping[str, str | None],
               notify: bool) -> str:  # fmt: skip
        SecondFulfilLost.calls += 1
        if SecondFulfilLost.calls == 2:
            raise ShopifyUnavailable("connection reset")
        return super().fulfil(groups, tracking, notify)


def test_a_retry_fulfils_what_the_failed_half_of_a_push_left_open(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    body = shopify_payload(6003, lines=[("TEE", 2, "20.00"), ("CAP", 1, "15.00")],
                           financial_status="paid")  # fmt: skip
    fake.put_order(body)
    # Shopify split the tees over its two locations.
    fake.add_fulfillment_order(6003, {60030: 1, 60031: 1}, LOC_A)
    fake.add_fulfillment_order(6003, {60030: 1}, LOC_B)
    webhook(client, runtime, "orders/create", body, 6003)
    oid = order_id(runtime, 6003)
    with runtime.store.writer() as conn:  # aoms's A was never mapped to a Shopify location
        conn.execute(delete(t.shopify_locations).where(t.shopify_locations.c.location_id == "a"))
    ship(runtime, fos(runtime, oid)["a"], "s-1", {"TEE": 2}, tracking_number="T-63")
    while runtime.relay_events():
        pass
    SecondFulfilLost.calls = 0
    store = SqlShopifyPushes(runtime.store)
    admin = lambda shop: SecondFulfilLost(runtime.shopify_client(shop))  # noqa: E731
    assert drain(store, admin, [SHOP], now=T0) == {"sent": 0, "retry": 1, "failed": 0}
    assert drain(store, admin, [SHOP], now=T0 + timedelta(minutes=1)) == {
        "sent": 1, "retry": 0, "failed": 0,
    }  # fmt: skip
    # Both tees left: Shopify has only the cap open.
    assert sorted(n for f in fake.fulfillments for n in [ln["quantity"] for ln in f["lines"]]) == [
        1,
        1,
    ]
    assert remaining(fake, 6003) == 1


def test_a_second_shipment_under_the_same_tracking_number_is_fulfilled_on_shopify(
    client: TestClient, runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    oid = place(client, runtime, fake, 6004)
    a = fos(runtime, oid)["a"]
    with SqlHandoffStore(runtime.store).handoff_transaction() as htx:
        svc.hand_off(htx, a, T0)
        svc.accept(htx, a, T0)
        svc.ship(htx, a, svc.Shipment("s-1", {"TEE": 1}, T0, tracking_number="PRO-7"), T0)
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    with SqlHandoffStore(runtime.store).handoff_transaction() as htx:
        svc.ship(htx, a, svc.Shipment("s-2", {"TEE": 1}, T0, tracking_number="PRO-7"), T0)
    assert flush(runtime) == {"sent": 1, "retry": 0, "failed": 0}
    shopify = {li: left for _, lines in shopify_fos(fake, 6004) for li, left in lines.items()}
    assert shopify["60040"] == 0  # both tees fulfilled on Shopify


@pytest.fixture
def plain_client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: later(30)
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def test_an_aoms_edit_survives_shopify_geocoding_the_same_address(
    plain_client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    payload = shopify_payload(7101, lines=[("X", 3, "10.00")], financial_status="paid")
    payload["shipping_address"] = {"country_code": "US", "zip": "10001", "city": "New York",
                                   "address1": "1 Main St"}  # fmt: skip
    deliver(plain_client, runtime, payload, "orders/create", "w-1")
    oid = order_id(runtime, 7101)
    assert reserved_at(runtime, "X", "a") == 3
    edited = plain_client.post(
        f"/v1/orders/{oid}/edit", json={"actor": "ann", "lines": [{"line_no": 1, "quantity": 1}]}
    )
    assert edited.status_code == 200, edited.text
    assert reserved_at(runtime, "X", "a") == 1
    # Shopify's next orders/updated: the same address, now with its coordinates.
    located = {**payload, "updated_at": later(40).isoformat(),
               "shipping_address": {**payload["shipping_address"], "latitude": 40.75,
                                    "longitude": -73.99}}  # fmt: skip
    deliver(plain_client, runtime, located, "orders/updated", "w-2")
    assert reserved_at(runtime, "X", "a") == 1


def test_an_aoms_edit_survives_a_shopify_address_change(
    plain_client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 10})
    payload = shopify_payload(7102, lines=[("X", 3, "10.00")], financial_status="paid")
    deliver(plain_client, runtime, payload, "orders/create", "w-1")
    oid = order_id(runtime, 7102)
    edited = plain_client.post(
        f"/v1/orders/{oid}/edit", json={"actor": "ann", "lines": [{"line_no": 1, "quantity": 1}]}
    )
    assert edited.status_code == 200, edited.text
    moved = {**payload, "updated_at": later(40).isoformat(),
             "shipping_address": {**payload["shipping_address"], "latitude": 0.1}}  # fmt: skip
    deliver(plain_client, runtime, moved, "orders/updated", "w-2")
    assert reserved_at(runtime, "X", "a") == 1
