"""Labels (shipping) meeting holds (lifecycle) and split fulfilment orders (hand-off), over
the API on SQLite and PostgreSQL, with the carriers' local fakes over real HTTP (the shipping
tests' world). A test marked strict xfail is a known fault: it turns into a failure once the
fault is fixed.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.services import handoff
from tests.integration.test_shipping_api import EP_SECRET, LA, MONDAY, World, _ok, world

__all__ = ["world"]  # the fixture, used by name below


def _place(world: World, ref: str, sku: str) -> tuple[int, int]:
    """One unit of `sku` to Los Angeles, shipped from Hoboken; (order id, its one FO's id)."""
    body = {
        "shop": "acme.myshopify.com", "channel": "web", "external_id": ref, "currency": "USD",
        "placed_at": "2026-12-07T09:00:00Z", "shipping_address": LA,
        "lines": [{"sku": sku, "quantity": 1, "unit_price": "12.00", "grams": 300}],
    }  # fmt: skip
    order_id = int(_ok(world.client.post("/v1/orders", json=body), 201)["order"]["id"])
    [fo] = _ok(world.client.get(f"/v1/orders/{order_id}"))["fulfilment_orders"]
    return order_id, int(fo["id"])


def test_no_label_is_bought_for_an_order_on_hold(world: World) -> None:
    client = world.client
    order_id, fo = _place(world, "H-1", "mug")
    held = client.post(
        f"/v1/orders/{order_id}/holds", json={"reason": "address looks wrong", "actor": "ann"}
    )
    assert held.status_code == 201, held.text
    state = _ok(client.get(f"/v1/orders/{order_id}/lifecycle"))
    assert state["state"] == "on_hold"
    answer = client.post(f"/v1/fulfilment-orders/{fo}/shipments", json={})
    assert answer.status_code == 409, answer.text
    assert world.shippo.transactions == {}
    assert not any(s.get("selected_rate") for s in world.easypost.shipments.values())


def test_the_labels_of_a_split_fulfilment_order_carry_each_unit_once(world: World) -> None:
    client = world.client
    body = {
        "shop": "acme.myshopify.com", "channel": "web", "external_id": "S-1", "currency": "USD",
        "placed_at": "2026-12-07T09:00:00Z", "shipping_address": LA,
        "lines": [{"sku": "mug", "quantity": 2, "unit_price": "12.00", "grams": 300}],
    }  # fmt: skip
    order_id = int(_ok(client.post("/v1/orders", json=body), 201)["order"]["id"])
    [fo] = _ok(client.get(f"/v1/orders/{order_id}"))["fulfilment_orders"]
    hstore = SqlHandoffStore(world.runtime.store)
    with hstore.handoff_transaction() as htx:
        split = handoff.split(htx, int(fo["id"]), {"mug": 1}, MONDAY)
    [part] = split.new_fo_ids
    labelled: dict[str, int] = {}
    for fo_id in (int(fo["id"]), part):
        shipment = _ok(client.post(f"/v1/fulfilment-orders/{fo_id}/shipments", json={}), 201)
        for parcel in shipment["parcels"]:
            for sku, n in parcel["items"].items():
                labelled[sku] = labelled.get(sku, 0) + int(n)
    assert labelled == {"mug": 2}  # the order has 2 mugs: one in each FO


def test_a_parcel_the_carrier_delivered_makes_its_units_returnable(world: World) -> None:
    client = world.client
    order_id, fo = _place(world, "D-1", "vase")
    shipment = _ok(client.post(f"/v1/fulfilment-orders/{fo}/shipments", json={}), 201)
    tn = shipment["parcels"][0]["tracking_number"]  # EasyPost's webhook finds it by number
    event = {"object": "Event", "id": "evt_9", "mode": "test", "description": "tracker.updated",
             "result": {"object": "Tracker", "id": "trk_9", "tracking_code": tn, "carrier": "USPS",
                        "status": "delivered", "tracking_details": [
                            {"object": "TrackingDetail", "status": "delivered",
                             "message": "Delivered", "datetime": "2026-12-09T15:00:00Z",
                             "tracking_location": {"city": "LOS ANGELES"}}]}}  # fmt: skip
    body = json.dumps(event).encode()
    sig = "hmac-sha256-hex=" + hmac.new(EP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    _ok(client.post("/webhooks/easypost", content=body, headers={"x-hmac-signature": sig}))
    assert _ok(client.get(f"/v1/shipments/{shipment['id']}"))["parcels"][0]["status"] == (
        "delivered"
    )
    world.runtime.relay_events()  # every subscriber hears parcel.delivered
    answer = client.post(
        "/v1/returns",
        json={"order_id": order_id, "items": [{"line_no": 1, "quantity": 1, "reason": "damaged"}]},
    )
    assert answer.status_code == 201, answer.text


def test_a_parcel_in_transit_ships_its_fulfilment_order(world: World) -> None:
    client = world.client
    order_id, fo = _place(world, "T-1", "vase")
    before = _ok(client.get("/v1/inventory", params={"sku": "vase", "location_id": "hob"}))
    assert [(i["on_hand"], i["reserved"]) for i in before["items"]] == [(50, 1)]
    shipment = _ok(client.post(f"/v1/fulfilment-orders/{fo}/shipments", json={}), 201)
    tn = shipment["parcels"][0]["tracking_number"]
    event = {"object": "Event", "id": "evt_8", "mode": "test", "description": "tracker.updated",
             "result": {"object": "Tracker", "id": "trk_8", "tracking_code": tn, "carrier": "USPS",
                        "status": "in_transit", "tracking_details": [
                            {"object": "TrackingDetail", "status": "in_transit",
                             "message": "Accepted at USPS Origin Facility",
                             "datetime": "2026-12-07T18:00:00Z",
                             "tracking_location": {"city": "JERSEY CITY"}}]}}  # fmt: skip
    body = json.dumps(event).encode()
    sig = "hmac-sha256-hex=" + hmac.new(EP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    _ok(client.post("/webhooks/easypost", content=body, headers={"x-hmac-signature": sig}))
    assert _ok(client.get(f"/v1/shipments/{shipment['id']}"))["parcels"][0]["status"] == (
        "in_transit"
    )
    world.runtime.relay_events()
    [got] = _ok(client.get(f"/v1/orders/{order_id}"))["fulfilment_orders"]
    assert got["status"] == "shipped"
    after = _ok(client.get("/v1/inventory", params={"sku": "vase", "location_id": "hob"}))
    assert [(i["on_hand"], i["reserved"]) for i in after["items"]] == [(49, 0)]


def test_no_label_for_a_fulfilment_order_a_3pl_has_stops_the_3pl_and_holds_the_order(
    world: World,
) -> None:
    """The chain's undo: a 3PL has the order, aoms cannot buy its label (no carrier quotes
    it), so the 3PL is asked to stop and a person gets the order; once the 3PL confirms, the
    unit is reserved again, and handed off again only when the hold is released."""
    from aoms.bootstrap import build_shipping, label_failure_hold
    from aoms.config import Settings

    rt, client = world.runtime, world.client
    only_easypost = Settings(database_url=rt.settings.database_url,
                             easypost_api_key=world.easypost.api_key,
                             easypost_base_url=world.easypost.base_url + "/v2")  # fmt: skip
    rt.shipping = build_shipping(only_easypost, rt.store)
    rt.shipping.on_label_failure = label_failure_hold(rt)
    world.easypost.services = []  # EasyPost quotes nothing for it
    order_id, fo = _place(world, "L-1", "mug")
    hstore = SqlHandoffStore(rt.store)
    hstore.set_connection("hob", kind="rest", secret="s" * 24, base_url="http://x", now=MONDAY)
    with hstore.handoff_transaction() as htx:
        handoff.hand_off(htx, fo, MONDAY)
        handoff.accept(htx, fo, MONDAY)
    refused = client.post(f"/v1/fulfilment-orders/{fo}/shipments", json={})
    assert refused.status_code == 409 and refused.json()["code"] == "no_rates", refused.text
    assert "easypost answered with no rate for it" in refused.json()["detail"]
    state = _ok(client.get(f"/v1/orders/{order_id}/lifecycle"))
    [hold] = [h for h in state["holds"] if h["status"] == "open"]
    assert hold["kind"] == "manual_review"
    assert f"no label could be bought for fulfilment order {fo}" in hold["reason"]
    assert _ok(client.get(f"/v1/fulfilment-orders/{fo}"))["status"] == "cancel_requested"
    # Nothing is released before the 3PL answers: the mug stays reserved (50 on hand, 1 held).
    assert _stock(world, "mug") == (50, 1)
    with hstore.handoff_transaction() as htx:
        confirmed = handoff.confirm_cancel(htx, fo, MONDAY)
    assert confirmed.new_fo_ids  # routed and reserved again at once
    assert _stock(world, "mug") == (50, 1)
    assert _ok(client.get(f"/v1/orders/{order_id}/lifecycle"))["state"] == "on_hold"
    released = client.post(f"/v1/holds/{hold['id']}/release", json={"actor": "ann", "note": "ok"})
    assert released.status_code == 200, released.text
    assert _ok(client.get(f"/v1/orders/{order_id}/lifecycle"))["state"] == "ready_for_fulfilment"


def _stock(world: World, sku: str) -> tuple[int, int]:
    from sqlalchemy import select

    from aoms.adapters.db import schema as t

    s = t.stock_levels.c
    with world.runtime.store.read() as conn:
        row = conn.execute(
            select(s.on_hand, s.reserved).where(s.sku == sku, s.location_id == "hob")
        ).one()
    return int(row.on_hand), int(row.reserved)
