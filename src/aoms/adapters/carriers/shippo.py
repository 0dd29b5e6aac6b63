"""Shippo over its REST API: shipments (with rates), transactions (labels), refunds (void),
tracks, address validation, and its `track_updated` webhooks.

Authentication is `Authorization: ShippoToken <token>`, pinned to API version 2018-02-08.
Parcels are sent in centimetres and grams (Shippo takes metric units). A webhook is
authenticated by Shippo's HMAC header `Shippo-Auth-Signature: t=<unix time>,v1=<hex
HMAC-SHA256 of "<t>.<raw body>">` (within five minutes), or by the self-generated token the
webhook URL carries (`?token=...`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from aoms.adapters.carriers.http import call, download, parse_time
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

PROVIDER = "shippo"
API_VERSION = "2018-02-08"
TOLERANCE_SECONDS = 300

# tracking_status.status as Shippo names it; UNKNOWN says nothing.
STATUS = {
    "PRE_TRANSIT": TrackingStatus.LABEL_CREATED,
    "TRANSIT": TrackingStatus.IN_TRANSIT,
    "DELIVERED": TrackingStatus.DELIVERED,
    "RETURNED": TrackingStatus.RETURNED,
    "FAILURE": TrackingStatus.EXCEPTION,
}
LABEL_FILE_TYPES = {"PDF": "PDF_4x6", "ZPL": "ZPLII", "PNG": "PNG"}
REFUND_REFUSED = {"ERROR"}


def map_status(status: str, substatus: str = "") -> TrackingStatus | None:
    if status == "TRANSIT" and substatus == "out_for_delivery":
        return TrackingStatus.OUT_FOR_DELIVERY
    return STATUS.get(status)


def _address(a: ShipAddress) -> dict[str, Any]:
    out = {
        "name": a.name or a.company or "Recipient", "company": a.company, "street1": a.street1,
        "street2": a.street2, "city": a.city, "state": a.state, "zip": a.zip,
        "country": a.country, "phone": a.phone, "email": a.email,
    }  # fmt: skip
    clean: dict[str, Any] = {k: v for k, v in out.items() if v}
    if a.residential is not None:
        clean["is_residential"] = a.residential
    return clean


def _customs(inv: CommercialInvoice) -> dict[str, Any]:
    return {
        "certify": True,
        "certify_signer": "Shipping department",
        "contents_type": inv.contents_type.upper(),
        "non_delivery_option": "RETURN",
        "eel_pfc": "NOEEI_30_37_a",
        "incoterm": inv.duties.value,
        "items": [
            {
                "description": line.description,
                "quantity": line.quantity,
                "net_weight": str(line.grams),
                "mass_unit": "g",
                "value_amount": str(line.value.amount),
                "value_currency": line.value.currency,
                "origin_country": line.origin_country,
                "tariff_number": (line.hs_code or "").replace(".", ""),
                "sku_code": line.sku,
            }
            for line in inv.lines
        ],
    }


def _cm(mm: int) -> str:
    return str(math.ceil(mm / 10 * 10 - 1e-9) / 10)


class ShippoCarrier:
    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.goshippo.com",
        timeout: float = 10.0,
        name: str = PROVIDER,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={
                "Authorization": f"ShippoToken {token}",
                "Shippo-API-Version": API_VERSION,
                "User-Agent": "aoms",
            },
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def rates(self, request: RateRequest) -> list[Quote]:
        p = request.parcel
        shipment: dict[str, Any] = {
            "address_from": _address(request.origin),
            "address_to": _address(request.destination),
            "parcels": [
                {
                    "length": _cm(p.dims.length_mm),
                    "width": _cm(p.dims.width_mm),
                    "height": _cm(p.dims.height_mm),
                    "distance_unit": "cm",
                    "weight": str(p.grams),
                    "mass_unit": "g",
                }
            ],
            "async": False,
        }
        if request.customs is not None:
            shipment["customs_declaration"] = _customs(request.customs)
        body = call(self.client, PROVIDER, "POST", "shipments/", json=shipment)
        quotes = []
        for rate in body.get("rates") or []:
            if rate.get("currency") != request.currency or rate.get("estimated_days") is None:
                continue
            level = rate.get("servicelevel") or {}
            quotes.append(
                Quote(
                    carrier=str(rate["provider"]).lower(),
                    service=str(level.get("token") or level.get("name")),
                    amount=Money.of(str(rate["amount"]), rate["currency"]),
                    days=int(rate["estimated_days"]),
                    ref={"shipment_id": str(body["object_id"]), "rate_id": str(rate["object_id"])},
                    detail={"duration_terms": str(rate.get("duration_terms") or "")},
                )
            )
        return quotes

    def buy(self, quote: Quote, request: RateRequest, *, label_format: str) -> Label:
        body = call(
            self.client, PROVIDER, "POST", "transactions/",
            json={"rate": quote.ref["rate_id"], "async": False,
                  "label_file_type": LABEL_FILE_TYPES.get(label_format, "PDF_4x6")},
        )  # fmt: skip
        if body.get("status") != "SUCCESS" or not body.get("tracking_number"):
            texts = "; ".join(str(m.get("text")) for m in body.get("messages") or [])
            raise CarrierError(
                f"Shippo bought no label: {texts or body.get('status')}", provider=PROVIDER
            )
        url = body.get("label_url")
        fmt = "ZPL" if label_format == "ZPL" else "PNG" if label_format == "PNG" else "PDF"
        return Label(
            carrier=quote.carrier,
            service=quote.service,
            tracking_number=str(body["tracking_number"]),
            label_id=str(body["object_id"]),
            file_format=fmt,
            content=download(self.client, PROVIDER, url),
            url=url,
            amount=(body.get("rate") or {}).get("amount")
            if isinstance(body.get("rate"), dict)
            else None,
        )

    def void(self, label: Label) -> VoidResult:
        body = call(
            self.client, PROVIDER, "POST", "refunds/",
            json={"transaction": label.label_id, "async": False},
        )  # fmt: skip
        status = str(body.get("status") or "")
        return VoidResult(status not in REFUND_REFUSED and bool(status), status)

    def track(self, tracking_number: str, *, service: str = "") -> list[TrackingUpdate]:
        carrier = service.split("_", maxsplit=1)[0] if service else "usps"
        body = call(self.client, PROVIDER, "GET", f"tracks/{carrier}/{tracking_number}")
        return track_updates(body)

    def verify_address(self, address: ShipAddress) -> AddressCheck | None:
        body = call(
            self.client,
            PROVIDER,
            "POST",
            "addresses/",
            json={**_address(address), "validate": True},
        )
        results = body.get("validation_results") or {}
        messages = tuple(str(m.get("text") or m.get("code")) for m in results.get("messages") or [])
        valid = bool(results.get("is_valid"))
        return AddressCheck(valid, messages, ShipAddress.from_dict(body) if valid else None)


def _update(track: Mapping[str, Any], status: Mapping[str, Any]) -> TrackingUpdate | None:
    sub = status.get("substatus") or {}
    mapped = map_status(str(status.get("status") or ""), str(sub.get("code") or ""))
    at: datetime | None = parse_time(status.get("status_date"))
    if mapped is None or at is None:
        return None
    place = status.get("location") or {}
    where = ", ".join(str(place[k]) for k in ("city", "state", "country") if place.get(k))
    return TrackingUpdate(
        str(track.get("tracking_number") or ""), mapped, str(status["status"]), at,
        str(status.get("status_details") or ""), where, str(track.get("carrier") or "").lower(),
    )  # fmt: skip


def track_updates(track: Mapping[str, Any]) -> list[TrackingUpdate]:
    """The history and current status of a Shippo Track object, mapped, each once."""
    found: dict[tuple[str, datetime], TrackingUpdate] = {}
    for status in [*(track.get("tracking_history") or []), track.get("tracking_status") or {}]:
        u = _update(track, status)
        if u is not None:
            found.setdefault((u.provider_status, u.occurred_at), u)
    return list(found.values())


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    *,
    secret: str | None,
    token: str | None,
    now: float,
) -> None:
    """Accept a delivery that passes every check configured (HMAC, URL token); refuse one
    when neither is configured."""
    if not secret and not token:
        raise InvalidSignature("no Shippo webhook secret or token is configured")
    if token and not hmac.compare_digest(query.get("token", ""), token):
        raise InvalidSignature("the Shippo webhook token does not match")
    if secret:
        parts = dict(
            p.strip().split("=", 1) for p in headers.get("shippo-auth-signature", "").split(",")
            if "=" in p
        )  # fmt: skip
        t, v1 = parts.get("t", ""), parts.get("v1", "")
        if not t.isdigit() or abs(now - int(t)) > TOLERANCE_SECONDS:
            raise InvalidSignature("the Shippo webhook signature is missing or too old")
        expected = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(v1.lower(), expected):
            raise InvalidSignature("the Shippo webhook signature does not verify")


def parse_webhook(body: bytes) -> list[TrackingUpdate]:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise InvalidPayload("the Shippo webhook is not JSON") from exc
    if not isinstance(payload, dict) or "event" not in payload:
        raise InvalidPayload("not a Shippo webhook (no event)")
    if payload["event"] != "track_updated":
        return []
    data = payload.get("data")
    if not isinstance(data, dict):
        raise InvalidPayload("the Shippo track_updated webhook has no data")
    return track_updates(data)
