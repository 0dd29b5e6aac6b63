"""Shipping over HTTP: boxes, ship-from addresses, the store's rule, shipments (rate shop and
labels), void, label files, carrier webhooks, tracking polls and carrier invoice audits."""

from __future__ import annotations

import io
import time
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from aoms.adapters.carriers import easypost, shippo
from aoms.adapters.db.promises import SqlPromiseStore
from aoms.adapters.db.shipping import SqlShippingRepo
from aoms.bootstrap import Runtime
from aoms.domain.cartonise import Box
from aoms.domain.errors import InvalidInput, InvalidSignature, NotFound, UnknownLocation
from aoms.domain.money import Money
from aoms.domain.shipping import Dimensions, Duties, Rule, ShippingRule
from aoms.entrypoints.api.schemas import Amount, _Strict
from aoms.services import shipping as svc
from aoms.services.carriers import ShipAddress, TrackingUpdate
from aoms.services.promises import promise_order

router = APIRouter(tags=["shipping"])
Mm = Annotated[int, Field(ge=1, le=10_000)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Rt = Annotated[Runtime, Depends(_runtime)]


def _shipping(r: Runtime) -> svc.Shipping:
    if r.shipping is None:
        raise NotFound("shipping is not configured")
    return r.shipping


class BoxIn(_Strict):
    code: str = Field(min_length=1, max_length=64)
    length_mm: Mm
    width_mm: Mm
    height_mm: Mm
    max_grams: int = Field(ge=1, le=1_000_000)
    tare_grams: int = Field(0, ge=0, le=1_000_000)
    fill_pct: int = Field(100, ge=1, le=100)


class BoxesIn(_Strict):
    boxes: list[BoxIn] = Field(max_length=500)


class ShipFromIn(_Strict):
    name: str = Field(max_length=255)
    company: str = Field("", max_length=255)
    street1: str = Field(min_length=1, max_length=255)
    street2: str = Field("", max_length=255)
    city: str = Field(min_length=1, max_length=255)
    state: str = Field("", max_length=64)
    zip: str = Field(min_length=1, max_length=32)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    phone: str = Field("", max_length=64)
    email: str = Field("", max_length=255)


class RuleIn(_Strict):
    rule: Rule = Rule.CHEAPEST_ON_TIME
    min_on_time: float = Field(0.85, ge=0, le=1)
    cost_cap: Amount | None = None
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    duties: Duties = Duties.DDU
    label_format: Literal["PDF", "ZPL", "PNG"] = "PDF"


class ShipmentIn(_Strict):
    deliver_by: date | None = Field(
        None,
        description="the promise date (delivered by); without it (and without promised), the "
        "date routing promised: the order's placed day + its shipping method's delivery_days",
    )
    promised: bool = Field(
        False,
        description="without deliver_by: use the order's learned delivery promise "
        "(GET /v1/orders/{id}/promise) as the date to meet",
    )
    buy: bool = Field(True, description="buy the labels now (false: plan and quote only)")


@router.put("/v1/shipping/boxes")
def put_boxes(body: BoxesIn, r: Rt) -> dict[str, Any]:
    """Replace the merchant's box list (inner sizes in mm, weight limit and tare in grams)."""
    codes = [b.code for b in body.boxes]
    if len(set(codes)) != len(codes):
        raise InvalidInput("box codes must be distinct", field="boxes")
    boxes = [Box(b.code, Dimensions(b.length_mm, b.width_mm, b.height_mm), b.max_grams,
                 b.tare_grams, fill_pct=b.fill_pct) for b in body.boxes]  # fmt: skip
    with r.store.transaction() as tx:
        SqlShippingRepo(tx.conn, tx).replace_boxes(boxes)
    return {"boxes": [b.model_dump() for b in body.boxes]}


@router.put("/v1/locations/{location_id}/ship-from")
def put_ship_from(
    location_id: Annotated[str, Path(min_length=1, max_length=64)], body: ShipFromIn, r: Rt
) -> dict[str, Any]:
    """The street address a location's parcels leave from (carriers need it on the label)."""
    with r.store.transaction() as tx:
        repo = SqlShippingRepo(tx.conn, tx)
        if not repo.known_location(location_id):
            raise UnknownLocation(f"no location {location_id}", field="location_id")
        repo.set_origin(location_id, body.model_dump())
    return {"location_id": location_id, **body.model_dump()}


@router.put("/v1/shops/{domain}/shipping-rule")
def put_shipping_rule(
    domain: Annotated[str, Path(min_length=1, max_length=255)], body: RuleIn, r: Rt
) -> dict[str, Any]:
    """How the store chooses a carrier service: `cheapest_on_time` (the cheapest service whose
    learned on-time rate is at least `min_on_time` and that arrives by the promise) or
    `fastest_under_cap` (the fastest at or under `cost_cap`)."""
    cap = None
    if body.cost_cap is not None:
        if body.currency is None:
            raise InvalidInput("a cost cap needs its currency", field="currency")
        cap = Money.of(body.cost_cap, body.currency)
    elif body.rule is Rule.FASTEST_UNDER_CAP:
        raise InvalidInput("fastest_under_cap needs a cost_cap", field="cost_cap")
    rule = svc.StoreRule(
        ShippingRule(body.rule, min_on_time=body.min_on_time, cost_cap=cap),
        body.duties,
        body.label_format,
    )
    with r.store.transaction() as tx:
        SqlShippingRepo(tx.conn, tx).set_store_rule(domain.strip().lower(), rule, r.clock())
    return {"shop": domain.strip().lower(), **body.model_dump(mode="json")}


@router.post("/v1/fulfilment-orders/{fo_id}/shipments", status_code=201)
def create_shipment(fo_id: int, body: ShipmentIn, r: Rt) -> dict[str, Any]:
    """Pack the fulfilment order into parcels, rate shop each across every carrier, choose by
    the store's rule and buy the labels. The answer has each parcel's chosen quote and every
    rejected one with its reason."""
    shipping = _shipping(r)
    deliver_by = body.deliver_by
    if deliver_by is None and body.promised:
        with r.store.read() as conn:
            fo = SqlShippingRepo(conn).fulfilment_order(fo_id)
        if fo is None:
            raise NotFound(f"no fulfilment order {fo_id}")
        deliver_by = promise_order(SqlPromiseStore(r.store), fo.order_id).promise.arrives_by
    shipment_id = svc.plan_shipment(
        shipping, fo_id, now=r.clock(), deliver_by=deliver_by, buy=body.buy
    )
    with shipping.store.reading() as repo:
        return repo.shipment(shipment_id) or {}


@router.get("/v1/shipments/{shipment_id}")
def get_shipment(shipment_id: int, r: Rt) -> dict[str, Any]:
    with _shipping(r).store.reading() as repo:
        found = repo.shipment(shipment_id)
    if found is None:
        raise NotFound(f"no shipment {shipment_id}")
    return found


@router.get("/v1/shipments/{shipment_id}/parcels/{seq}/label")
def get_label(shipment_id: int, seq: int, r: Rt) -> Response:
    """The label file as bought (PDF, ZPL or PNG)."""
    with r.store.read() as conn:
        found = SqlShippingRepo(conn).label(shipment_id, seq)
    if found is None:
        raise NotFound(f"no label for parcel {seq} of shipment {shipment_id}")
    content, fmt = found
    media = {"PDF": "application/pdf", "PNG": "image/png"}.get(fmt, "application/zpl")
    return Response(content, media_type=media)


@router.post("/v1/shipments/{shipment_id}/void")
def void(shipment_id: int, r: Rt) -> dict[str, Any]:
    """Void every label of the shipment at its carrier (a refund request where the carrier
    works that way); the shipment is then `voided`."""
    return svc.void_shipment(_shipping(r), shipment_id, now=r.clock())


class AddressIn(_Strict):
    name: str = Field("", max_length=255)
    street1: str = Field("", max_length=255)
    street2: str = Field("", max_length=255)
    city: str = Field("", max_length=255)
    state: str = Field("", max_length=64)
    zip: str = Field("", max_length=32)
    country: str = Field("US", pattern=r"^[A-Z]{2}$")


@router.post("/v1/shipping/addresses/verify")
def verify_address(body: AddressIn, r: Rt, carrier: str | None = None) -> dict[str, Any]:
    """Check an address with a carrier that offers it (EasyPost, Shippo); the first
    configured one that does, unless `carrier` names one."""
    shipping = _shipping(r)
    names = [carrier] if carrier else list(shipping.carriers)
    address = ShipAddress(**body.model_dump())
    for name in names:
        result = shipping.carrier(name).verify_address(address)
        if result is not None:
            suggested = None if result.suggested is None else asdict(result.suggested)
            return {"carrier": name, "valid": result.valid, "messages": list(result.messages),
                    "suggested": suggested}  # fmt: skip
    raise NotFound("no configured carrier verifies addresses")


@router.post("/v1/shipping/tracking/poll")
def poll(r: Rt, limit: int = 200) -> dict[str, int]:
    """Ask the carriers for the tracking of parcels not yet delivered."""
    result = svc.poll_tracking(_shipping(r), now=r.clock(), limit=min(max(limit, 1), 1000))
    return _tracking_dict(result)


@router.post("/v1/carrier-invoices/audit")
async def audit(request: Request, r: Rt) -> dict[str, Any]:
    """A carrier invoice as CSV (tracking_number, amount, currency): every line billed above
    the quote it was bought at, with the total overcharge."""
    text = (await request.body()).decode("utf-8-sig", errors="replace")
    report = await run_in_threadpool(svc.audit_carrier_invoice, _shipping(r), io.StringIO(text))
    return svc.report_dict(report)


def _tracking_dict(result: svc.TrackingResult) -> dict[str, int]:
    return {"received": result.received, "new": result.new, "changed": result.changed,
            "unknown_parcels": result.unknown}  # fmt: skip


async def _take(r: Runtime, updates: list[TrackingUpdate], source: str) -> dict[str, int]:
    result = await run_in_threadpool(
        svc.record_tracking, _shipping(r), updates, source=source, now=r.clock()
    )
    return _tracking_dict(result)


@router.post("/webhooks/easypost", tags=["webhooks"])
async def easypost_webhook(request: Request, r: Rt) -> dict[str, int]:
    """EasyPost Events (tracker.created / tracker.updated), signed with X-Hmac-Signature."""
    body = await request.body()
    secret = _shipping(r).webhook_secrets.get("easypost")
    if not secret:
        raise InvalidSignature("no EasyPost webhook secret is configured")
    easypost.verify_webhook(body, request.headers, secret)
    return await _take(r, easypost.parse_webhook(body), "easypost")


@router.post("/webhooks/shippo", tags=["webhooks"])
async def shippo_webhook(request: Request, r: Rt) -> dict[str, int]:
    """Shippo `track_updated` webhooks, checked by Shippo-Auth-Signature and/or ?token=."""
    body = await request.body()
    secrets = _shipping(r).webhook_secrets
    shippo.verify_webhook(
        body, request.headers, request.query_params, secret=secrets.get("shippo"),
        token=secrets.get("shippo_token"), now=time.time(),
    )  # fmt: skip
    return await _take(r, shippo.parse_webhook(body), "shippo")
