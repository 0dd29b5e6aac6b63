"""EasyPost over its REST API (v2): Shipment create (with rates), buy, refund (void), Tracker,
Address verification, and its webhook Events.

Authentication is HTTP Basic with the API key as the user name and no password. Parcels are
sent in inches and ounces, as EasyPost asks. Webhook events are signed with the webhook's
secret: `X-Hmac-Signature: hmac-sha256-hex=<hex HMAC-SHA256 of the raw body>`, the secret
NFKD-normalised first (as EasyPost's own client libraries do).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from collections.abc import Mapping
from typing import Any

import httpx

from aoms.adapters.carriers.http import call, download, inches, ounces, parse_time
from aoms.domain.errors import CarrierError, InvalidPayload, InvalidSignature
from aoms.domain.money import Money
from aoms.domain.shipping import CommercialInvoice, Quote, TrackingStatus
from aoms.services.carriers import (
    AddressCheck,
    Label,
    RateRequest,
    ShipAddress,
    TrackingUpdate,
    VoidResult,
)

PROVIDER = "easypost"

# Tracker.status and TrackingDetail.status, as EasyPost names them. `unknown` says nothing.
STATUS = {
    "pre_transit": TrackingStatus.LABEL_CREATED,
    "in_transit": TrackingStatus.IN_TRANSIT,
    "out_for_delivery": TrackingStatus.OUT_FOR_DELIVERY,
    "available_for_pickup": TrackingStatus.OUT_FOR_DELIVERY,
    "delivered": TrackingStatus.DELIVERED,
    "return_to_sender": TrackingStatus.RETURNED,
    "failure": TrackingStatus.EXCEPTION,
    "cancelled": TrackingStatus.EXCEPTION,
    "error": TrackingStatus.EXCEPTION,
}
LABEL_FORMATS = {"PDF": "PDF", "ZPL": "ZPL", "PNG": "PNG"}
REFUND_ACCEPTED = {"submitted", "refunded"}


def map_status(status: str) -> TrackingStatus | None:
    return STATUS.get(status)


def _address(a: ShipAddress) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": a.name, "company": a.company, "street1": a.street1, "street2": a.street2,
        "city": a.city, "state": a.state, "zip": a.zip, "country": a.country, "phone": a.phone,
        "email": a.email,
    }  # fmt: skip
    if a.residential is not None:
        out["residential"] = a.residential
    return {k: v for k, v in out.items() if v not in ("", None)}


def _customs(inv: CommercialInvoice) -> dict[str, Any]:
    return {
        "contents_type": inv.contents_type,
        "customs_certify": True,
        "customs_signer": "Shipping department",
        "non_delivery_option": "return",
        "restriction_type": "none",
        "eel_pfc": "NOEEI 30.37(a)",
        "customs_items": [
            {
                "description": line.description,
                "quantity": line.quantity,
                "value": str(line.value.amount),
                "currency": line.value.currency,
                "weight": ounces(line.grams),
                "hs_tariff_number": (line.hs_code or "").replace(".", ""),
                "origin_country": line.origin_country,
                "code": line.sku,
            }
            for line in inv.lines
        ],
    }


class EasyPostCarrier:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.easypost.com/v2",
        timeout: float = 10.0,
        name: str = PROVIDER,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            auth=(api_key, ""),
            timeout=timeout,
            headers={"User-Agent": "aoms"},
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def rates(self, request: RateRequest) -> list[Quote]:
        p = request.parcel
        shipment: dict[str, Any] = {
            "to_address": _address(request.destination),
            "from_address": _address(request.origin),
            "parcel": {
                "length": inches(p.dims.length_mm),
                "width": inches(p.dims.width_mm),
                "height": inches(p.dims.height_mm),
                "weight": ounces(p.grams),
            },
            "options": {
                "label_format": LABEL_FORMATS.get(
                    request.options.get("label_format", "PDF"), "PDF"
                ),
                "currency": request.currency,
            },
        }
        if request.customs is not None:
            shipment["customs_info"] = _customs(request.customs)
            shipment["options"]["delivery_duty_paid"] = request.customs.duties.value == "DDP"
        body = call(self.client, PROVIDER, "POST", "shipments", json={"shipment": shipment})
        quotes = []
        for rate in body.get("rates") or []:
            if rate.get("currency") != request.currency:
                continue
            days = rate.get("delivery_days") or rate.get("est_delivery_days")
            if days is None:
                continue
            quotes.append(
                Quote(
                    carrier=str(rate["carrier"]).lower(),
                    service=str(rate["service"]),
                    amount=Money.of(str(rate["rate"]), rate["currency"]),
                    days=int(days),
                    ref={"shipment_id": str(body["id"]), "rate_id": str(rate["id"])},
                    detail={"delivery_date_guaranteed": bool(rate.get("delivery_date_guaranteed"))},
                )
            )
        return quotes

    def buy(self, quote: Quote, request: RateRequest, *, label_format: str) -> Label:
        shipment_id = quote.ref["shipment_id"]
        body = call(
            self.client, PROVIDER, "POST", f"shipments/{shipment_id}/buy",
            json={"rate": {"id": quote.ref["rate_id"]}},
        )  # fmt: skip
        tracking = body.get("tracking_code")
        postage = body.get("postage_label") or {}
        if not tracking:
            raise CarrierError("EasyPost bought no label", provider=PROVIDER, shipment=shipment_id)
        url = (
            postage.get("label_pdf_url") or postage.get("label_zpl_url") or postage.get("label_url")
        )
        kind = str(postage.get("label_file_type") or "").lower()
        fmt = "ZPL" if "zpl" in kind else "PNG" if "png" in kind else "PDF"
        selected = body.get("selected_rate") or {}
        return Label(
            carrier=quote.carrier,
            service=quote.service,
            tracking_number=str(tracking),
            label_id=str(shipment_id),
            file_format=fmt,
            content=download(self.client, PROVIDER, url),
            url=url,
            amount=selected.get("rate"),
        )

    def void(self, label: Label) -> VoidResult:
        body = call(self.client, PROVIDER, "POST", f"shipments/{label.label_id}/refund")
        status = str(body.get("refund_status") or "")
        return VoidResult(status in REFUND_ACCEPTED, status)

    def track(self, tracking_number: str, *, service: str = "") -> list[TrackingUpdate]:
        body = call(
            self.client, PROVIDER, "POST", "trackers",
            json={"tracker": {"tracking_code": tracking_number}},
        )  # fmt: skip
        return tracker_updates(body)

    def verify_address(self, address: ShipAddress) -> AddressCheck | None:
        body = call(
            self.client, PROVIDER, "POST", "addresses",
            json={"address": _address(address), "verify": True},
        )  # fmt: skip
        delivery = (body.get("verifications") or {}).get("delivery") or {}
        messages = tuple(
            str(e.get("message") or e.get("code")) for e in delivery.get("errors") or []
        )
        suggested = ShipAddress.from_dict(body) if delivery.get("success") else None
        return AddressCheck(bool(delivery.get("success")), messages, suggested)


def tracker_updates(tracker: Mapping[str, Any]) -> list[TrackingUpdate]:
    """Every tracking detail of a Tracker object, mapped; the tracker's own status too when
    its details are empty."""
    code = str(tracker.get("tracking_code") or "")
    carrier = str(tracker.get("carrier") or "").lower()
    updates = []
    for detail in tracker.get("tracking_details") or []:
        status = map_status(str(detail.get("status") or ""))
        at = parse_time(detail.get("datetime"))
        if status is None or at is None:
            continue
        place = detail.get("tracking_location") or {}
        where = ", ".join(str(place[k]) for k in ("city", "state", "country") if place.get(k))
        updates.append(
            TrackingUpdate(code, status, str(detail["status"]), at,
                           str(detail.get("message") or ""), where, carrier)
        )  # fmt: skip
    if not updates:
        status = map_status(str(tracker.get("status") or ""))
        at = parse_time(tracker.get("updated_at"))
        if status is not None and at is not None:
            updates.append(
                TrackingUpdate(code, status, str(tracker["status"]), at, "", "", carrier)
            )
    return updates


def verify_webhook(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    given = headers.get("x-hmac-signature", "")
    key = unicodedata.normalize("NFKD", secret).encode()
    expected = "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    if not given or not hmac.compare_digest(given.lower(), expected):
        raise InvalidSignature("the EasyPost webhook signature does not verify")


def parse_webhook(body: bytes) -> list[TrackingUpdate]:
    """Tracking updates from an EasyPost Event (`tracker.created`, `tracker.updated`); other
    events carry none."""
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise InvalidPayload("the EasyPost event is not JSON") from exc
    if not isinstance(event, dict) or event.get("object") != "Event":
        raise InvalidPayload("not an EasyPost Event object")
    if not str(event.get("description", "")).startswith("tracker."):
        return []
    result = event.get("result")
    if not isinstance(result, dict):
        raise InvalidPayload("the EasyPost tracker event has no result")
    return tracker_updates(result)
