"""The hand-off's ports and values: what a fulfilment order, a 3PL connection, a request, a
shipment and a 3PL's message are, and the transaction and channels the use cases in
`services.handoff` run on (the adapters implement them: adapters/db/handoff.py,
adapters/tpl/)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aoms.domain.handoff import FoLine, FoStatus, RejectReason
from aoms.services.ports import Tx


@dataclass(frozen=True, slots=True)
class Fo:
    id: int
    order_id: int
    location_id: str
    status: FoStatus
    items: dict[str, int]
    shipping_minor: int = 0
    handling_minor: int = 0
    distance_km: float = 0.0
    weight_g: int = 0


@dataclass(frozen=True, slots=True)
class TplConnection:
    location_id: str
    kind: str  # rest | file
    secret: str
    base_url: str | None = None
    directory: str | None = None


@dataclass(frozen=True, slots=True)
class Handoff:
    fo_id: int
    attempts: int
    delivered: bool
    cancel_from: FoStatus | None
    cancel_attempts: int
    cancel_delivered: bool


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    """What a 3PL is sent: everything it needs to pick, pack and ship one FO."""

    fo_id: int
    order_id: int
    order_name: str
    shop: str
    location_id: str
    ship_to: dict[str, Any]
    lines: list[dict[str, Any]]  # line_no, sku, quantity, title
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class Shipment:
    ref: str  # the 3PL's id of this shipment: the same ref twice is one shipment
    items: dict[str, int]
    shipped_at: datetime
    location_id: str | None = None  # where it left from, when not the FO's location
    tracking_number: str | None = None
    carrier: str | None = None
    tracking_url: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    fo_id: int
    status: FoStatus
    changed: bool
    detail: str
    new_fo_ids: list[int] = field(default_factory=list)
    order_status: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fulfilment_order_id": self.fo_id,
            "status": self.status.value,
            "changed": self.changed,
            "detail": self.detail,
            "new_fulfilment_order_ids": self.new_fo_ids,
            "order_status": self.order_status,
        }


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str


class HandoffTx(Protocol):
    """One transaction over the order tables (`tx`) and the hand-off tables."""

    @property
    def tx(self) -> Tx: ...
    def fulfilment_order(self, fo_id: int, *, lock: bool = False) -> Fo | None: ...
    def order_fos(self, order_id: int) -> list[Fo]: ...
    def fo_lines(self, fo_id: int) -> list[FoLine]: ...
    def unclaimed(self, order_id: int, location_id: str) -> list[tuple[int, str, int]]: ...
    def add_fo_lines(self, fo_id: int, lines: Sequence[FoLine]) -> None: ...
    def bump_fo_line(
        self, fo_id: int, line_no: int, *, shipped: int = 0, closed: int = 0
    ) -> None: ...
    def set_fo_status(self, fo_id: int, status: FoStatus) -> None: ...
    def set_fo_items(self, fo_id: int, items: Mapping[str, int]) -> None: ...
    def insert_fo(self, fo: Fo, now: datetime) -> int: ...
    def take_reservations(
        self,
        order_id: int,
        line_no: int,
        location_id: str,
        units: int,
        status: str,
        now: datetime,
    ) -> int: ...
    def handoff(self, fo_id: int) -> Handoff | None: ...
    def save_handoff(self, fo_id: int, location_id: str, now: datetime, **values: Any) -> None: ...
    def connection(self, location_id: str) -> TplConnection | None: ...
    def shipment_known(self, fo_id: int, ref: str) -> bool: ...
    def tracking_known(self, fo_id: int, tracking_number: str) -> bool: ...
    def add_shipment(
        self, fo_id: int, shipment: Shipment, location_id: str, now: datetime
    ) -> None: ...
    def mark_fulfilled(self, order_id: int, at: datetime, now: datetime) -> None: ...
    def message_outcome(self, location_id: str, message_id: str) -> dict[str, Any] | None: ...
    def save_message(
        self,
        location_id: str,
        message_id: str,
        kind: str,
        outcome: dict[str, Any],
        now: datetime,
    ) -> None: ...
    def refresh_order_counters(self, order_id: int) -> None: ...
    def stopped_by_hold(self, order_id: int, fo_id: int) -> bool: ...
    def request_for(self, fo: Fo, lines: Sequence[FoLine], now: datetime) -> HandoffRequest: ...


class HandoffStore(Protocol):
    def handoff_transaction(self) -> AbstractContextManager[HandoffTx]: ...
    def fos_to_claim(self, limit: int) -> list[int]: ...
    def fos_to_deliver(self, now: datetime, limit: int) -> list[int]: ...
    def cancels_to_deliver(self, now: datetime, limit: int) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """A 3PL's answer to a request or a cancel request."""

    status: str  # received | accepted | rejected | cancelled | cancel_refused | cancel_pending
    reason: RejectReason | None = None
    note: str | None = None
    external_ref: str | None = None


class DeliveryFailed(Exception):
    """A request did not reach the 3PL. `permanent` when it refused it as invalid."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class FulfilmentChannel(Protocol):
    """How requests reach one kind of 3PL connection (REST, file drop)."""

    def send_request(self, conn: TplConnection, request: HandoffRequest) -> Answer: ...
    def send_cancel(self, conn: TplConnection, fo_id: int, now: datetime) -> Answer: ...


@dataclass(frozen=True, slots=True)
class Message:
    """One callback (or file row group) from a 3PL, already authenticated."""

    message_id: str
    type: str  # accepted | rejected | shipped | cancelled | cancel_refused
    fo_id: int
    reason: RejectReason | None = None
    note: str | None = None
    external_ref: str | None = None
    shipment: Shipment | None = None
    units: dict[str, int] | None = None
