"""What the return and refund use cases read and write: records, and the ports as Protocols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from aoms.domain.money import Money
from aoms.domain.orders import Order, OrderStatus
from aoms.domain.refunds import (
    Payment,
    PaymentRefund,
    Refunded,
    RefundQuote,
)
from aoms.domain.returns import (
    Disposition,
    RefundDestination,
    ReturnPolicy,
    ReturnStatus,
)
from aoms.services.ports import Tx

if TYPE_CHECKING:
    from aoms.services.holds import LifecycleRepo

RETURN_REQUESTED = "return.requested"
RETURN_DECIDED = "return.decided"
RETURN_LABEL_ISSUED = "return.label_issued"
RETURN_IN_TRANSIT = "return.in_transit"
RETURN_RECEIVED = "return.received"
RETURN_INSPECTED = "return.inspected"
RETURN_CLOSED = "return.closed"
RETURN_CANCELLED = "return.cancelled"
RETURN_REFUND_BLOCKED = "return.refund_blocked"  # its units were refunded elsewhere first
REFUND_ISSUED = "refund.issued"
REFUND_RECORDED = "refund.recorded"  # a refund made elsewhere (Shopify's admin), taken in
EXCHANGE_CREATED = "exchange.created"
EXCHANGE_CHARGE_DUE = "exchange.charge_due"
EXCHANGE_RETURN_OVERDUE = "exchange.return_overdue"


# -- what the use cases read and write ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderFacts:
    id: int
    shop: str
    channel: str
    external_id: str
    status: OrderStatus
    country: str | None
    tags: tuple[str, ...]
    order: Order  # with shipping, shipping tax and order discount


@dataclass(frozen=True, slots=True)
class NewPayment:
    method: str
    captured: Money
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReturnItem:
    id: int
    line_no: int
    sku: str
    quantity: int
    reason: str
    has_photos: bool


@dataclass(frozen=True, slots=True)
class ReturnRecord:
    id: int
    order_id: int
    shop: str
    status: ReturnStatus
    policy: ReturnPolicy
    customer_tags: tuple[str, ...]
    refund_to: RefundDestination
    refund_shipping: bool
    fees_waived: bool
    refund_id: int | None
    location_id: str | None
    tracking_number: str | None
    exchange: Mapping[str, Any] | None
    exchange_order_id: int | None
    exchange_deadline: datetime | None
    exchange_status: str | None
    items: tuple[ReturnItem, ...]


@dataclass(frozen=True, slots=True)
class Label:
    carrier: str
    tracking_number: str
    document: str  # the printable label (ZPL)


class ReturnCarrier(Protocol):
    """Buys (or makes) a return label for a return parcel."""

    def return_label(self, return_id: int, order: OrderFacts, location_id: str | None) -> Label: ...


class ReturnsTx(Protocol):
    """One transaction over returns, refunds and payments (and the core tables, as `core`)."""

    @property
    def core(self) -> Tx: ...
    def lifecycle(self) -> LifecycleRepo: ...  # this transaction with the lifecycle tables

    def lock_order(self, order_id: int) -> OrderFacts | None: ...
    def payments(self, order_id: int) -> list[Payment]: ...
    def payment_by_external(self, order_id: int, external_id: str) -> int | None: ...
    def channel_gateways(self, order_id: int) -> list[str]: ...
    def add_payments(
        self, order_id: int, payments: Sequence[NewPayment], source: str, now: datetime
    ) -> None: ...
    def refunded(self, order_id: int) -> Refunded: ...
    def units_in_open_returns(self, order_id: int, *, unrefunded_only: bool) -> dict[int, int]: ...
    def shipped_units(self, order_id: int) -> dict[int, int]:
        """Units of each line that have left (a warehouse's shipments, or the channel's
        fulfilment): only those can come back or be refunded."""
        ...

    def delivery(self, order_id: int) -> tuple[datetime | None, datetime | None] | None: ...
    def set_delivery(
        self,
        order_id: int,
        fulfilled_at: datetime | None,
        delivered_at: datetime | None,
        source: str,
        now: datetime,
    ) -> None: ...
    def return_policy(self, shop: str) -> ReturnPolicy: ...
    def set_return_policy(self, shop: str, policy: ReturnPolicy, now: datetime) -> None: ...
    def insert_return(
        self, values: Mapping[str, Any], items: Sequence[Mapping[str, Any]]
    ) -> int: ...
    def get_return(self, return_id: int) -> ReturnRecord | None: ...
    def update_return(self, return_id: int, values: Mapping[str, Any]) -> None: ...
    def dispositioned(self, return_id: int) -> dict[int, int]: ...
    def add_disposition(
        self,
        return_id: int,
        item_id: int,
        quantity: int,
        disposition: Disposition,
        location_id: str,
        now: datetime,
    ) -> int: ...
    def insert_refund(
        self,
        order_id: int,
        *,
        return_id: int | None,
        quote: RefundQuote,
        parts: Sequence[PaymentRefund],
        destination: RefundDestination,
        bonus: Money,
        exchange: Money,
        source: str,
        idempotency_key: str | None,
        external_id: str | None,
        restock: Mapping[int, str],
        now: datetime,
    ) -> int: ...
    def refund_by_key(self, idempotency_key: str) -> int | None: ...
    def refund_by_external(self, order_id: int, external_id: str) -> int | None: ...
    def set_refund_external_id(self, refund_id: int, external_id: str) -> bool: ...
    def overdue_exchanges(self, now: datetime) -> list[int]: ...
    def find_order(self, shop: str, channel: str, external_id: str) -> int | None: ...
    def find_return(self, shop: str, external_id: str) -> int | None: ...
