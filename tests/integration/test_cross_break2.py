"""Carrier services in routing, the label-failure hold and the line-aware `ship_outside`, at
the edges where they once broke (edits, unstated days, prices finer than the currency, an order
cancelled meanwhile, partial and repeated Shopify fulfillments, the location a fulfillment
names); on SQLite and PostgreSQL.

Carrier services: the network and rate card of tests/integration/test_carrier_services.py
(A at 50 km, C at 700 km; ground 2 / 5 days, express 1 / 2 days; A's handling 6.00, C's
1.50). Shopify fulfillments: the network of tests/integration/test_shopify_pushes.py (TEE
only at A, CAP only at B).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, network, shopify_payload
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.integration.test_carrier_services import CARD, SHOP, chosen, place
from tests.integration.test_shipping_api import world
from tests.integration.test_shopify_pushes import client as push_client
from tests.integration.test_shopify_pushes import (
    fake,
    fos,
    reserved,
    svc_status,
    webhook,
)

__all__ = ["fake", "push_client", "world"]  # the fixtures, used by name below


def _services_client(runtime: Runtime, card: dict[str, Any], policy: bool) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5, ("Y", "a"): 5, ("Y", "c"): 5})
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        put = c.put("/v1/rate-cards/USD", json=card)
        assert put.status_code == 200, put.text
        if policy:
            doc = {"policy": "optimal", "locations": {"a": {"handling": "6.00"}},
                   "delivery_days": {"Standard": 3, "express": 1}}  # fmt: skip
            drafted = c.post(f"/v1/shops/{SHOP}/routing-policies",
                             json={"document": doc, "note": "x"})  # fmt: skip
            assert drafted.status_code == 201, drafted.text
            assert c.post(f"/v1/shops/{SHOP}/routing-policies/1/activate").status_code == 200
        yield c


@pytest.fixture
def services(runtime: Runtime) -> Iterator[TestClient]:
    yield from _services_client(runtime, CARD, policy=True)


def _add_line(client: TestClient, order_id: int, sku: str) -> None:
    body = {"actor": "ann", "add": [{"sku": sku, "quantity": 1, "unit_price": "10.00",
                                     "grams": 500}]}  # fmt: skip
    edited = client.post(f"/v1/orders/{order_id}/edit", json=body)
    assert edited.status_code == 200, edited.text


# -- carrier services ----------------------------------------------------------------------


def test_an_added_line_of_an_express_order_names_its_carrier_service(
    services: TestClient, runtime: Runtime
) -> None:
    """EXPRESS (1 day): by hand, as the order's own line, A by express 9.00 + 6.00 = 15.00
    beats C's express 15.00 + 1.50; the added Y goes the same way."""
    order = place(services, "edit-1", "EXPRESS")
    assert chosen(runtime, order["id"]) == [("a", "express", "9.00")]
    _add_line(services, order["id"], "Y")
    assert chosen(runtime, order["id"]) == [("a", "express", "9.00")]


CHEAP_EXPRESS = {
    "distance_km": [100, 1000],
    "weight_g": [1000, 10000],
    "prices": [["20.00", "20.00"], ["20.00", "20.00"]],
    "service": "ground",
    "transit_days": [2, 5],
    "services": [
        {"name": "express", "transit_days": [1, 2],
         "prices": [["5.00", "5.00"], ["5.00", "5.00"]]},
    ],
}  # fmt: skip


def test_an_added_line_without_a_policy_is_priced_by_the_cheapest_service(
    runtime: Runtime,
) -> None:
    """No policy (no day limit): express at 5.00 in every band is the cheapest service, so
    every shipment costs 5.00 to ship — the order's own line, and the line added to it."""
    gen = _services_client(runtime, CHEAP_EXPRESS, policy=False)
    client = next(gen)
    try:
        order = place(client, "edit-2", None)
        [(_, service, shipping)] = chosen(runtime, order["id"])
        assert (service, shipping) == ("express", "5.00")
        _add_line(client, order["id"], "Y")
        [(_, service, shipping)] = chosen(runtime, order["id"])
        assert (service, shipping) == ("express", "5.00")
    finally:
        gen.close()


def test_a_service_price_finer_than_the_currency_is_refused_when_the_card_is_put(
    runtime: Runtime,
) -> None:
    runtime.clock = lambda: T0
    network(runtime.engine, {("X", "a"): 5})
    bad = {**CARD, "services": [{"name": "express", "transit_days": [1, 2],
                                 "prices": [["3.005", "12.00"], ["15.00", "20.00"]]}]}  # fmt: skip
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        # The same price on the card's own prices is refused (422); on a service it must be too.
        own = {**CARD, "prices": [["3.005", "6.00"], ["8.00", "12.00"]]}
        assert c.put("/v1/rate-cards/USD", json=own).status_code == 422
        assert c.put("/v1/rate-cards/USD", json=bad).status_code == 422


UNSTATED = {**CARD, "transit_days": []}  # ground's days not stated; express 1 / 2 days


def test_a_service_of_unknown_speed_is_not_taken_to_meet_an_express_order_s_day(
    runtime: Runtime,
) -> None:
    """EXPRESS must arrive within 1 day; express from A takes 1 day; nothing says ground
    does. A by express 9.00 + 6.00 = 15.00 is the cheapest that is known to arrive in time."""
    gen = _services_client(runtime, UNSTATED, policy=True)
    client = next(gen)
    try:
        order = place(client, "unstated-1", "EXPRESS")
        assert chosen(runtime, order["id"]) == [("a", "express", "9.00")]
    finally:
        gen.close()


# -- Shopify fulfillments ship only the lines they name --------------------------------------


def _place_5009(client: TestClient, runtime: Runtime, shopify: FakeShopifyAdmin) -> int:
    """2 TEE (line item 50090, at A) and 1 CAP (50091, at B)."""
    body = shopify_payload(5009, lines=[("TEE", 2, "20.00"), ("CAP", 1, "15.00")],
                           financial_status="paid")  # fmt: skip
    shopify.put_order(body)
    shopify.add_fulfillment_order(5009, {50090: 2, 50091: 1}, "gid://shopify/Location/1")
    webhook(client, runtime, "orders/create", body, 5009)
    found = client.get("/v1/orders", params={"q": "5009"}).json()["items"]
    return int(next(o["id"] for o in found if o["external_id"] == "5009"))


def test_a_second_shopify_fulfillment_ships_the_rest_of_a_partly_shipped_fulfilment_order(
    push_client: TestClient,
    runtime: Runtime,
    fake: FakeShopifyAdmin,
) -> None:
    """The merchant fulfils the 2 tees in Shopify's admin one at a time (two fulfillments).
    The first leaves one tee reserved at A; the second ships it: none reserved, A shipped."""
    order_id = _place_5009(push_client, runtime, fake)
    where = fos(runtime, order_id)
    first = {"id": 779, "order_id": 5009, "status": "success", "tracking_number": "X-9",
             "created_at": T0.isoformat(),
             "line_items": [{"id": 50090, "quantity": 1}]}  # fmt: skip
    webhook(push_client, runtime, "fulfillments/create", first, 93)
    assert reserved(runtime, "TEE", "a") == 1
    assert svc_status(runtime, where["a"]) == "partly_shipped"
    # The same fulfillment again (it was delivered) ships nothing more...
    again = {**first, "shipment_status": "delivered", "updated_at": T0.isoformat()}
    webhook(push_client, runtime, "fulfillments/update", again, 94)
    assert reserved(runtime, "TEE", "a") == 1
    # ...but a second fulfillment, of the other tee, ships it.
    second = {**first, "id": 780, "tracking_number": "X-10"}
    webhook(push_client, runtime, "fulfillments/create", second, 95)
    assert reserved(runtime, "TEE", "a") == 0
    assert svc_status(runtime, where["a"]) == "shipped"


def _place_split(client: TestClient, runtime: Runtime, shopify: FakeShopifyAdmin, n: int) -> int:
    """Order `n`: one line (item n*10) of 2 tees, 1 at A and 1 at B (two fulfilment orders)."""
    with runtime.store.transaction() as tx:  # one tee at each of A and B
        tx.change_stock("TEE", "b", on_hand=1, reason="count", reference="t", now=T0)
        tx.change_stock("TEE", "a", on_hand=-4, reason="count", reference="t", now=T0)
    body = shopify_payload(n, lines=[("TEE", 2, "20.00")], financial_status="paid")
    shopify.put_order(body)
    shopify.add_fulfillment_order(n, {n * 10: 2}, "gid://shopify/Location/1")
    webhook(client, runtime, "orders/create", body, n)
    found = client.get("/v1/orders", params={"q": str(n)}).json()["items"]
    order_id = int(next(o["id"] for o in found if o["external_id"] == str(n)))
    assert set(fos(runtime, order_id)) == {"a", "b"}
    return order_id


def test_the_same_fulfillment_sent_again_ships_no_second_unit_of_a_split_line(
    push_client: TestClient,
    runtime: Runtime,
    fake: FakeShopifyAdmin,
) -> None:
    """1 of the 2 tees is fulfilled in Shopify's admin; the same fulfillment comes again
    (delivered). One tee left: one of the two stays reserved."""
    _place_split(push_client, runtime, fake, 5010)
    done = {"id": 781, "order_id": 5010, "status": "success", "tracking_number": "X-11",
            "created_at": T0.isoformat(), "line_items": [{"id": 50100, "quantity": 1}]}  # fmt: skip
    webhook(push_client, runtime, "fulfillments/create", done, 96)
    assert reserved(runtime, "TEE", "a") + reserved(runtime, "TEE", "b") == 1
    again = {**done, "shipment_status": "delivered", "updated_at": T0.isoformat()}
    webhook(push_client, runtime, "fulfillments/update", again, 97)
    assert reserved(runtime, "TEE", "a") + reserved(runtime, "TEE", "b") == 1


def test_a_shopify_fulfillment_takes_the_units_from_the_location_it_names(
    push_client: TestClient,
    runtime: Runtime,
    fake: FakeShopifyAdmin,
) -> None:
    _place_split(push_client, runtime, fake, 5011)
    done = {"id": 782, "order_id": 5011, "status": "success", "tracking_number": "X-12",
            "location_id": 2, "created_at": T0.isoformat(),
            "line_items": [{"id": 50110, "quantity": 1}]}  # fmt: skip
    webhook(push_client, runtime, "fulfillments/create", done, 98)
    assert (reserved(runtime, "TEE", "a"), reserved(runtime, "TEE", "b")) == (1, 0)


# -- no label for a fulfilment order a 3PL has ------------------------------------------------


def _at_3pl(w: Any, ref: str) -> tuple[int, int]:
    """One mug ordered and handed to Hoboken's 3PL, which accepted it; the chain wired."""
    from aoms.adapters.db.handoff import SqlHandoffStore
    from aoms.bootstrap import label_failure_hold
    from aoms.services import handoff
    from tests.integration.test_cross_shipping import _place
    from tests.integration.test_shipping_api import MONDAY

    w.runtime.shipping.on_label_failure = label_failure_hold(w.runtime)
    order_id, fo = _place(w, ref, "mug")
    hstore = SqlHandoffStore(w.runtime.store)
    hstore.set_connection("hob", kind="rest", secret="s" * 24, base_url="http://x", now=MONDAY)
    with hstore.handoff_transaction() as htx:
        handoff.hand_off(htx, fo, MONDAY)
        handoff.accept(htx, fo, MONDAY)
    return order_id, fo


def test_an_order_cancelled_while_its_label_fails_gets_no_hold(world: Any) -> None:
    """The buyer cancels while aoms is at the carrier buying the label; the carrier then
    fails. The order is cancelled: no open hold waits on a person for it."""
    import dataclasses

    from aoms.domain.errors import CarrierError
    from aoms.services.shipping import plan_shipment
    from tests.integration.test_shipping_api import MONDAY, _ok

    order_id, fo = _at_3pl(world, "C-1")
    client = world.client

    class CancelThenFail:
        def __init__(self, inner: Any) -> None:
            self.inner, self.name = inner, inner.name

        def __getattr__(self, attr: str) -> Any:
            return getattr(self.inner, attr)

        def buy(self, quote: Any, request: Any, *, label_format: str) -> Any:
            assert client.post(f"/v1/orders/{order_id}/cancel").status_code == 200
            raise CarrierError("the carrier timed out")

    sh = world.runtime.shipping
    world.runtime.shipping = dataclasses.replace(
        sh, carriers={k: CancelThenFail(c) for k, c in sh.carriers.items()}
    )
    with pytest.raises(CarrierError):
        plan_shipment(world.runtime.shipping, fo, now=MONDAY)
    state = _ok(client.get(f"/v1/orders/{order_id}/lifecycle"))
    assert state["state"] == "cancelled"
    assert [h for h in state["holds"] if h["status"] == "open"] == []
