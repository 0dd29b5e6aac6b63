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
