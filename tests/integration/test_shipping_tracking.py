"""A parcel under a label aoms bought ships its fulfilment order when its carrier's tracking says
it left, on SQLite and PostgreSQL, with the carriers' local fakes over real HTTP (the shipping
tests' world: Hoboken holds 50 vases and 50 mugs, nothing reserved)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.services import handoff
from tests.integration.test_shipping_api import EP_SECRET, LA, MONDAY, World, _ok, world

__all__ = ["world"]  # the fixture, used by name below


def _place(world: World, ref: str, vases: int) -> tuple[int, int]:
    body = {
        "shop": "acme.myshopify.com", "channel": "web", "external_id": ref, "currency": "USD",
        "placed_at": "2026-12-07T09:00:00Z", "shipping_address": LA,
        "lines": [{"sku": "vase", "quantity": vases, "unit_price": "30.00", "grams": 900}],
    }  # fmt: skip
    order_id = int(_ok(world.client.post("/v1/orders", json=body), 201)["order"]["id"])
    [fo] = _ok(world.client.get(f"/v1/orders/{order_id}"))["fulfilment_orders"]
    return order_id, int(fo["id"])


def _scan(world: World, tn: str, status: str, at: str, event_id: str) -> dict[str, Any]:
    """EasyPost's tracker.updated for one parcel, signed."""
    event = {"object": "Event", "id": event_id, "mode": "test", "description": "tracker.updated",
             "result": {"object": "Tracker", "id": f"trk_{event_id}", "tracking_code": tn,
                        "carrier": "USPS", "status": status, "tracking_details": [
                            {"object": "TrackingDetail", "status": status, "message": status,
                             "datetime": at, "tracking_location": {}}]}}  # fmt: skip
    body = json.dumps(event).encode()
    sig = "hmac-sha256-hex=" + hmac.new(EP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer: dict[str, Any] = _ok(
        world.client.post("/webhooks/easypost", content=body, headers={"x-hmac-signature": sig})
    )
    return answer


def _vases(world: World) -> tuple[int, int]:
    found = _ok(world.client.get("/v1/inventory", params={"sku": "vase", "location_id": "hob"}))
    [item] = found["items"]
    return int(item["on_hand"]), int(item["reserved"])


def _fo(world: World, order_id: int) -> dict[str, Any]:
    [fo] = _ok(world.client.get(f"/v1/orders/{order_id}"))["fulfilment_orders"]
    return dict(fo)


def _events(world: World, name: str) -> list[dict[str, Any]]:
    o = t.outbox.c
    with world.runtime.store.read() as conn:
        rows = conn.execute(select(o.data).where(o.name == name).order_by(o.id)).scalars()
        return [dict(d) for d in rows]


def test_each_parcel_ships_its_own_units_once_when_its_carrier_first_scans_it(
    world: World,
) -> None:
    order_id, fo = _place(world, "P-1", 12)
    assert _vases(world) == (50, 12)
    shipment = _ok(world.client.post(f"/v1/fulfilment-orders/{fo}/shipments", json={}), 201)
    # 12 vases of 900 g: 10 fill box M to 9,200 g (its 10 kg limit), 2 go in box S.
    big, small = shipment["parcels"]
    assert (big["items"], small["items"]) == ({"vase": 10}, {"vase": 2})

    _scan(world, small["tracking_number"], "in_transit", "2026-12-07T18:00:00Z", "e1")
    # The 2 in S left: 50 - 2 on hand, 12 - 2 reserved; the FO waits for the other parcel.
    assert _vases(world) == (48, 10)
    assert _fo(world, order_id)["status"] == "partly_shipped"
    # The same scan again, then a later one of the same parcel: nothing more ships.
    _scan(world, small["tracking_number"], "in_transit", "2026-12-07T18:00:00Z", "e1")
    _scan(world, small["tracking_number"], "out_for_delivery", "2026-12-09T07:00:00Z", "e2")
    assert _vases(world) == (48, 10)

    # The big parcel is first seen delivered (its transit scans were missed): it left too.
    _scan(world, big["tracking_number"], "delivered", "2026-12-09T15:00:00Z", "e3")
    assert _vases(world) == (38, 0)
    assert _fo(world, order_id)["status"] == "shipped"
    shipped = _events(world, "fulfilment_order.shipped")
    assert [(e["shipment"], e["items"], e["tracking_number"], e["status"]) for e in shipped] == [
        (f"label:{small['tracking_number']}", {"vase": 2}, small["tracking_number"],
         "partly_shipped"),
        (f"label:{big['tracking_number']}", {"vase": 10}, big["tracking_number"], "shipped"),
    ]  # fmt: skip
    assert [e["carrier"] for e in shipped] == [small["carrier"], big["carrier"]]
    ol = t.order_lines.c
    with world.runtime.store.read() as conn:
        shipped_qty = conn.execute(select(ol.shipped_qty).where(ol.order_id == order_id))
        assert shipped_qty.scalar_one() == 12  # all of them count as shipped on the line


def test_a_warehouse_s_report_of_the_same_parcel_is_not_a_second_shipment(world: World) -> None:
    hstore = SqlHandoffStore(world.runtime.store)
    hstore.set_connection("hob", kind="rest", secret="s" * 24, base_url="http://x", now=MONDAY)
    order_id, fo = _place(world, "P-2", 2)
    with hstore.handoff_transaction() as htx:
        handoff.hand_off(htx, fo, MONDAY)
    with hstore.handoff_transaction() as htx:
        handoff.accept(htx, fo, MONDAY)
    # The 3PL ships under aoms's label: the carrier's scan says so first ...
    shipment = _ok(world.client.post(f"/v1/fulfilment-orders/{fo}/shipments", json={}), 201)
    [parcel] = shipment["parcels"]
    tn = parcel["tracking_number"]
    _scan(world, tn, "in_transit", "2026-12-07T18:00:00Z", "e4")
    assert _vases(world) == (48, 0)
    # ... and the 3PL's own callback about the same parcel (its own reference) changes nothing.
    message = handoff.Message(
        "m-1", "shipped", fo,
        shipment=handoff.Shipment("3pl-77", {"vase": 2}, MONDAY, tracking_number=tn),
    )  # fmt: skip
    with hstore.handoff_transaction() as htx:
        outcome = handoff.apply_message(htx, "hob", message, MONDAY)
    assert (outcome["status"], outcome["changed"]) == ("shipped", False)
    assert _vases(world) == (48, 0)
    assert len(_events(world, "fulfilment_order.shipped")) == 1
    assert _fo(world, order_id)["status"] == "shipped"


def test_the_carrier_s_scan_after_the_warehouse_reported_the_parcel_ships_nothing_more(
    world: World,
) -> None:
    hstore = SqlHandoffStore(world.runtime.store)
    hstore.set_connection("hob", kind="rest", secret="s" * 24, base_url="http://x", now=MONDAY)
    _, fo = _place(world, "P-3", 2)
    with hstore.handoff_transaction() as htx:
        handoff.hand_off(htx, fo, MONDAY)
    shipment = _ok(world.client.post(f"/v1/fulfilment-orders/{fo}/shipments", json={}), 201)
    tn = shipment["parcels"][0]["tracking_number"]
    with hstore.handoff_transaction() as htx:
        handoff.ship(htx, fo, handoff.Shipment("3pl-78", {"vase": 1}, MONDAY,
                                               tracking_number=tn), MONDAY)  # fmt: skip
    assert _vases(world) == (49, 1)  # the 3PL said 1 went in that parcel
    _scan(world, tn, "in_transit", "2026-12-07T18:00:00Z", "e5")
    assert _vases(world) == (49, 1)
    assert len(_events(world, "fulfilment_order.shipped")) == 1
    assert _events(world, "parcel.not_shipped") == []


def test_a_parcel_that_leaves_for_a_cancelled_order_is_tracked_and_flagged(world: World) -> None:
    order_id, fo = _place(world, "P-4", 1)
    shipment = _ok(world.client.post(f"/v1/fulfilment-orders/{fo}/shipments", json={}), 201)
    tn = shipment["parcels"][0]["tracking_number"]
    _ok(world.client.post(f"/v1/orders/{order_id}/cancel"))
    assert _vases(world) == (50, 0)  # released; the label is voided after commit, not yet here
    answer = _scan(world, tn, "in_transit", "2026-12-07T18:00:00Z", "e6")
    assert answer["changed"] == 1  # the tracking is kept as the fact it is
    assert _vases(world) == (50, 0)  # nothing reserved to consume: a person settles it
    [flag] = _events(world, "parcel.not_shipped")
    assert (flag["fulfilment_order_id"], flag["tracking_number"], flag["code"]) == (
        fo,
        tn,
        "conflict",
    )


def _delivery(world: World, order_id: int) -> tuple[str | None, str | None] | None:
    """The order's (fulfilled_at, delivered_at) for returns, as ISO strings."""
    d = t.order_deliveries.c
    with world.runtime.store.read() as conn:
        row = conn.execute(
            select(d.fulfilled_at, d.delivered_at).where(d.order_id == order_id)
        ).first()
    if row is None:
        return None
    return (
        None if row.fulfilled_at is None else row.fulfilled_at.isoformat(),
        None if row.delivered_at is None else row.delivered_at.isoformat(),
    )


def test_a_delivered_parcel_makes_the_units_that_left_returnable(world: World) -> None:
    order_id, fo = _place(world, "P-5", 12)
    shipment = _ok(world.client.post(f"/v1/fulfilment-orders/{fo}/shipments", json={}), 201)
    big, small = shipment["parcels"]  # 10 vases and 2 vases
    _scan(world, small["tracking_number"], "in_transit", "2026-12-07T18:00:00Z", "e7")
    left = "2026-12-07T18:00:00+00:00"
    assert _delivery(world, order_id) == (left, None)  # it left: fulfilled, not delivered
    _scan(world, small["tracking_number"], "delivered", "2026-12-09T15:00:00Z", "e8")
    assert _delivery(world, order_id) == (left, "2026-12-09T15:00:00+00:00")
    assert _vases(world) == (48, 10)  # delivering the small parcel shipped nothing more

    def ask(units: int) -> Any:
        items = [{"line_no": 1, "quantity": units, "reason": "damaged"}]
        return world.client.post("/v1/returns", json={"order_id": order_id, "items": items})

    # Only the 2 that left can come back; the big parcel's 10 are still at Hoboken.
    refused = ask(3)
    assert refused.status_code == 409 and refused.json()["code"] == "return_quantity_exceeded"
    assert ask(2).status_code == 201

    # The big parcel arrives Friday: the return window now runs from the latest delivery.
    _scan(world, big["tracking_number"], "delivered", "2026-12-11T12:00:00Z", "e9")
    # (first seen delivered, it left then too: the latest shipment is that scan's time)
    assert _delivery(world, order_id) == ("2026-12-11T12:00:00+00:00",) * 2
    assert _vases(world) == (38, 0)
    assert _fo(world, order_id)["status"] == "shipped"
