"""The REST/JSON 3PL contract, aoms's side of it: build and sign the requests, send them
over HTTP, read the answers (docs/3pl-contract.json); and read the 3PL's callbacks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from aoms.adapters.tpl.signing import sign
from aoms.domain.handoff import RejectReason
from aoms.services.handoff_ports import (
    Answer,
    DeliveryFailed,
    HandoffRequest,
    Message,
    Shipment,
    TplConnection,
)

RETRYABLE = {408, 425, 429}


def request_body(request: HandoffRequest) -> dict[str, Any]:
    return {
        "fulfilment_order_id": request.fo_id,
        "order_id": request.order_id,
        "order_name": request.order_name,
        "shop": request.shop,
        "location_id": request.location_id,
        "ship_to": request.ship_to,
        "lines": request.lines,
        "requested_at": request.requested_at.isoformat(),
    }


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _RequestAnswer(BaseModel):
    status: str = Field(pattern="^(received|accepted|rejected)$")
    reason: RejectReason | None = None
    note: str | None = Field(None, max_length=2000)
    reference: str | None = Field(None, max_length=255)


class _CancelAnswer(BaseModel):
    status: str = Field(pattern="^(cancelled|cancel_refused|cancel_pending)$")
    note: str | None = Field(None, max_length=2000)


class ShippedLine(_Model):
    sku: str = Field(min_length=1, max_length=255)
    quantity: int = Field(ge=1, le=1_000_000)


class Tracking(_Model):
    number: str | None = Field(None, max_length=255)
    carrier: str | None = Field(None, max_length=64)
    url: str | None = Field(None, max_length=1024)


class ShipmentIn(_Model):
    shipment_id: str = Field(min_length=1, max_length=255)
    location_id: str | None = Field(None, max_length=64)
    lines: list[ShippedLine] = Field(min_length=1)
    tracking: Tracking | None = None
    shipped_at: AwareDatetime


class CallbackIn(_Model):
    """A 3PL's callback (the contract's `Callback`)."""

    event_id: str = Field(min_length=1, max_length=255)
    type: str = Field(pattern="^(accepted|rejected|shipped|cancelled|cancel_refused)$")
    fulfilment_order_id: int = Field(ge=1, le=2**63 - 1)
    occurred_at: AwareDatetime
    reference: str | None = Field(None, max_length=255)
    reason: RejectReason | None = None
    note: str | None = Field(None, max_length=2000)
    lines: list[ShippedLine] | None = None
    shipment: ShipmentIn | None = None

    @model_validator(mode="after")
    def _needs(self) -> CallbackIn:
        if self.type == "rejected" and self.reason is None:
            raise ValueError("a rejected callback needs its reason")
        if self.type == "shipped" and self.shipment is None:
            raise ValueError("a shipped callback needs its shipment")
        return self

    def to_message(self) -> Message:
        shipment = None
        if self.shipment is not None:
            s = self.shipment
            items: dict[str, int] = {}
            for ln in s.lines:
                items[ln.sku] = items.get(ln.sku, 0) + ln.quantity
            t = s.tracking or Tracking()
            shipment = Shipment(
                s.shipment_id, items, s.shipped_at, s.location_id, t.number, t.carrier, t.url
            )
        units: dict[str, int] | None = None
        if self.lines:
            units = {}
            for ln in self.lines:
                units[ln.sku] = units.get(ln.sku, 0) + ln.quantity
        return Message(
            message_id=self.event_id,
            type=self.type,
            fo_id=self.fulfilment_order_id,
            reason=self.reason,
            note=self.note,
            external_ref=self.reference,
            shipment=shipment,
            units=units,
        )


class RestChannel:
    """Sends signed requests to a connection's base URL. A timeout, a network error, a 5xx
    or a 408/425/429 is transient (retried); any other 4xx is permanent (the FO is undone)."""

    def __init__(self, clock: Callable[[], datetime], client: httpx.Client | None = None) -> None:
        self.clock = clock
        self.client = client or httpx.Client(timeout=httpx.Timeout(10.0))

    def _post(self, conn: TplConnection, path: str, body: dict[str, Any]) -> Any:
        if not conn.base_url:
            raise DeliveryFailed(f"location {conn.location_id} has no base URL", permanent=True)
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **sign(conn.secret, raw, self.clock())}
        try:
            answer = self.client.post(
                conn.base_url.rstrip("/") + path, content=raw, headers=headers
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}", permanent=False) from exc
        if answer.status_code >= 500 or answer.status_code in RETRYABLE:
            raise DeliveryFailed(f"HTTP {answer.status_code}", permanent=False)
        if answer.status_code >= 400:
            raise DeliveryFailed(f"HTTP {answer.status_code}: {answer.text[:300]}", permanent=True)
        try:
            return answer.json()
        except ValueError as exc:
            raise DeliveryFailed("the answer is not JSON", permanent=False) from exc

    def send_request(self, conn: TplConnection, request: HandoffRequest) -> Answer:
        data = self._post(conn, "/fulfilment-requests", request_body(request))
        try:
            got = _RequestAnswer.model_validate(data)
        except ValidationError as exc:
            raise DeliveryFailed(
                f"unreadable answer: {exc.errors()[0]['msg']}", permanent=False
            ) from exc
        if got.status == "rejected" and got.reason is None:
            raise DeliveryFailed("a rejection without a reason", permanent=False)
        return Answer(got.status, got.reason, got.note, got.reference)

    def send_cancel(self, conn: TplConnection, fo_id: int, now: datetime) -> Answer:
        body = {"fulfilment_order_id": fo_id, "requested_at": now.isoformat()}
        data = self._post(conn, f"/fulfilment-requests/{fo_id}/cancellation", body)
        try:
            got = _CancelAnswer.model_validate(data)
        except ValidationError as exc:
            raise DeliveryFailed(
                f"unreadable answer: {exc.errors()[0]['msg']}", permanent=False
            ) from exc
        return Answer(got.status, note=got.note)
