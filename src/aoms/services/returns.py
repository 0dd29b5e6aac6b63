"""Return, refund and exchange use cases.

Every use case runs in one transaction that first locks the order's row, so two requests for
the same units (two workers, a retry, a webhook and an API call) are decided one after the
other on fresh numbers: no unit is returned or restocked twice and nothing is refunded twice.
Stock movements go through `inventory.adjust_stock`, the one stock write path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from aoms.domain.errors import (
    AlreadyDispositioned,
    AlreadyRefunded,
    InvalidInput,
    NotFound,
    NotReturnable,
    PaymentsAlreadyRecorded,
    ReturnQuantityExceeded,
    UnknownReturn,
)
from aoms.domain.events import Event
from aoms.domain.money import Money
from aoms.domain.orders import Order, OrderLine, OrderStatus
from aoms.domain.refunds import (
    Fee,
    Payment,
    PaymentRefund,
    Refunded,
    RefundLine,
    RefundQuote,
    exchange_difference,
    fees_for,
    order_money,
    quote_refund,
    split_refund,
    store_credit_bonus,
)
from aoms.domain.returns import (
    Disposition,
    ItemFacts,
    Outcome,
    RefundDestination,
    ReturnPolicy,
    ReturnStatus,
    decide,
    fees_waived,
    refund_due,
    transition,
)
from aoms.services import inventory, orders
from aoms.services.ports import Geocoder, Tx

RETURN_REQUESTED = "return.requested"
RETURN_DECIDED = "return.decided"
RETURN_LABEL_ISSUED = "return.label_issued"
RETURN_IN_TRANSIT = "return.in_transit"
RETURN_RECEIVED = "return.received"
RETURN_INSPECTED = "return.inspected"
RETURN_CLOSED = "return.closed"
RETURN_CANCELLED = "return.cancelled"
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

    def lock_order(self, order_id: int) -> OrderFacts | None: ...
    def payments(self, order_id: int) -> list[Payment]: ...
    def payment_by_external(self, order_id: int, external_id: str) -> int | None: ...
    def channel_gateways(self, order_id: int) -> list[str]: ...
    def add_payments(
        self, order_id: int, payments: Sequence[NewPayment], source: str, now: datetime
    ) -> None: ...
    def refunded(self, order_id: int) -> Refunded: ...
    def units_in_open_returns(self, order_id: int, *, unrefunded_only: bool) -> dict[int, int]: ...
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


# -- payments and delivery -----------------------------------------------------------------


def _locked(rtx: ReturnsTx, order_id: int) -> OrderFacts:
    facts = rtx.lock_order(order_id)
    if facts is None:
        raise NotFound(f"no order {order_id}", field="order_id")
    return facts


def record_payments(
    rtx: ReturnsTx, order_id: int, payments: Sequence[NewPayment], *, source: str, now: datetime
) -> None:
    """Record what the order's payments captured (replacing nothing: an order's payments are
    recorded once; a refund already made stays tied to the payment it went to)."""
    facts = _locked(rtx, order_id)
    if rtx.payments(order_id):
        raise PaymentsAlreadyRecorded(
            f"order {order_id} has its payments recorded already", field="payments"
        )
    for p in payments:
        if p.captured.currency != facts.order.currency:
            raise InvalidInput(
                f"payment in {p.captured.currency}, order in {facts.order.currency}",
                field="payments",
            )
    rtx.add_payments(order_id, payments, source, now)


def record_channel_transaction(
    rtx: ReturnsTx, order_id: int, payment: NewPayment, *, now: datetime
) -> bool:
    """A capture (or sale) the channel reported, kept once per transaction id."""
    facts = _locked(rtx, order_id)
    if payment.external_id is not None and rtx.payment_by_external(order_id, payment.external_id):
        return False
    if payment.captured.currency != facts.order.currency:
        raise InvalidInput(
            f"transaction in {payment.captured.currency}, order in {facts.order.currency}",
            field="currency",
        )
    rtx.add_payments(order_id, [payment], "channel", now)
    return True


def payments_of(rtx: ReturnsTx, facts: OrderFacts, now: datetime) -> list[Payment]:
    """The order's payments; when none were recorded, one payment of the order's total (the
    channel told us no more), recorded so later refunds see the same one. Its method is the
    channel's gateway names when it gave them (Shopify's `payment_gateway_names`)."""
    found = rtx.payments(facts.id)
    if found:
        return found
    amount = order_money(facts.order).total
    stated = facts.order.total_price
    if stated is not None and stated.amount >= 0:
        amount = stated
    gateways = rtx.channel_gateways(facts.id)
    method = "+".join(gateways)[:64] if gateways else "unknown"
    rtx.add_payments(facts.id, [NewPayment(method, amount)], "default", now)
    return rtx.payments(facts.id)


def mark_delivered(
    rtx: ReturnsTx,
    order_id: int,
    *,
    delivered_at: datetime | None,
    fulfilled_at: datetime | None,
    source: str,
    now: datetime,
) -> None:
    """Record that the order's units reached the customer (or left for them): they become
    returnable. Shipment tracking, when it exists, calls this on the delivery event."""
    facts = _locked(rtx, order_id)
    if facts.status is OrderStatus.CANCELLED:
        raise NotReturnable(f"order {order_id} is cancelled", field="order_id")
    if delivered_at is None and fulfilled_at is None:
        delivered_at = now
    rtx.set_delivery(order_id, fulfilled_at, delivered_at, source, now)


# -- returns -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemRequest:
    line_no: int
    quantity: int
    reason: str
    has_photos: bool = False


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    sku: str
    unit_price: Money  # the replacement's price (tax-inclusive when the order's prices are)
    tax: Money
    quantity: int = 1
    instant: bool = False  # ship the replacement before the return arrives
    title: str | None = None


@dataclass(frozen=True, slots=True)
class RequestReturn:
    order_id: int
    items: Sequence[ItemRequest]
    customer_tags: Sequence[str] = ()
    refund_to: RefundDestination | None = None
    refund_shipping: bool | None = None
    exchange: ExchangeRequest | None = None
    external_id: str | None = None  # Shopify's return id


def committed_units(rtx: ReturnsTx, order_id: int) -> dict[int, int]:
    """Units per line that are refunded or on their way back in an open return."""
    refunded = rtx.refunded(order_id)
    units: dict[int, int] = defaultdict(int)
    for line_no, done in refunded.lines.items():
        units[line_no] += done.units
    for line_no, n in rtx.units_in_open_returns(order_id, unrefunded_only=True).items():
        units[line_no] += n
    return dict(units)


def request_return(rtx: ReturnsTx, cmd: RequestReturn, *, geocode: Geocoder, now: datetime) -> int:
    """Open a return and let the store's policy decide it (approve, reject, review)."""
    facts = _locked(rtx, cmd.order_id)
    if cmd.external_id is not None:
        known = rtx.find_return(facts.shop, cmd.external_id)
        if known is not None:
            return known
    if facts.status is OrderStatus.CANCELLED:
        raise NotReturnable(f"order {facts.id} is cancelled", field="order_id")
    delivery = rtx.delivery(facts.id)
    if delivery is None:
        raise NotReturnable(
            f"order {facts.id} is not recorded as fulfilled or delivered; only units that "
            "reached the customer can be returned",
            field="order_id",
        )
    if not cmd.items:
        raise InvalidInput("a return needs at least one unit", field="items")
    lines = {ln.line_no: ln for ln in facts.order.lines}
    committed = committed_units(rtx, facts.id)
    asked: dict[int, int] = defaultdict(int)
    for i, item in enumerate(cmd.items):
        if item.line_no not in lines:
            raise InvalidInput(f"the order has no line {item.line_no}", field=f"items[{i}]")
        if item.quantity <= 0:
            raise InvalidInput("return at least one unit", field=f"items[{i}].quantity")
        asked[item.line_no] += item.quantity
    for line_no, n in asked.items():
        ln = lines[line_no]
        left = ln.quantity - committed.get(line_no, 0)
        if n > left:
            raise ReturnQuantityExceeded(
                f"line {line_no} ({ln.sku}): {n} unit(s) asked back, {left} of {ln.quantity} "
                "can still be returned",
                field="items",
                line_no=line_no,
                asked=n,
                left=left,
            )
    policy = rtx.return_policy(facts.shop).for_country(facts.country)
    tags = rtx.core.sku_tags([lines[i.line_no].sku for i in cmd.items])
    decision = decide(
        policy,
        [
            ItemFacts(
                lines[i.line_no].sku,
                tuple(tags.get(lines[i.line_no].sku, ())),
                i.reason,
                i.has_photos,
            )
            for i in cmd.items
        ],
        now=now,
        delivered_at=delivery[1],
        fulfilled_at=delivery[0],
    )
    status = {
        Outcome.APPROVE: ReturnStatus.APPROVED,
        Outcome.REJECT: ReturnStatus.REJECTED,
        Outcome.REVIEW: ReturnStatus.REVIEW,
    }[decision.outcome]
    customer_tags = tuple(cmd.customer_tags) + facts.tags
    exchange = None
    if cmd.exchange is not None:
        x = cmd.exchange
        if x.quantity <= 0:
            raise InvalidInput("an exchange replaces at least one unit", field="exchange.quantity")
        for money in (x.unit_price, x.tax):
            if money.currency != facts.order.currency or money.amount < 0:
                raise InvalidInput(
                    "the replacement's price is in the order's currency", field="exchange"
                )
        cost = x.unit_price * x.quantity
        if not facts.order.taxes_included:
            cost = cost + x.tax
        exchange = {
            "sku": x.sku,
            "quantity": x.quantity,
            "unit_price": str(x.unit_price.amount),
            "tax": str(x.tax.amount),
            "cost": str(cost.amount),
            "instant": x.instant,
            "title": x.title,
        }
    return_id = rtx.insert_return(
        {
            "order_id": facts.id,
            "shop": facts.shop,
            "status": status.value,
            "decision": decision.outcome.value,
            "decision_reasons": list(decision.reasons),
            "policy": policy.as_dict(),
            "customer_tags": list(customer_tags),
            "refund_to": (cmd.refund_to or policy.refund_to).value,
            "refund_shipping": policy.refund_shipping
            if cmd.refund_shipping is None
            else cmd.refund_shipping,
            "fees_waived": fees_waived(policy, [i.reason for i in cmd.items], customer_tags),
            "exchange": exchange,
            "external_id": cmd.external_id,
            "created_at": now,
            "updated_at": now,
        },
        [
            {
                "line_no": i.line_no,
                "sku": lines[i.line_no].sku,
                "quantity": i.quantity,
                "reason": i.reason,
                "has_photos": i.has_photos,
            }
            for i in cmd.items
        ],
    )
    agg = f"return:{return_id}"
    rtx.core.emit(
        [
            Event(
                RETURN_REQUESTED,
                agg,
                {
                    "order_id": facts.id,
                    "units": sum(asked.values()),
                    "lines": {str(k): v for k, v in asked.items()},
                },
            ),
            Event(
                RETURN_DECIDED,
                agg,
                {
                    "order_id": facts.id,
                    "decision": decision.outcome.value,
                    "reasons": list(decision.reasons),
                },
            ),
        ],
        now,
    )
    if status is ReturnStatus.APPROVED:
        _on_approved(rtx, return_id, facts, geocode=geocode, now=now)
    return return_id


def _record(rtx: ReturnsTx, return_id: int) -> ReturnRecord:
    found = rtx.get_return(return_id)
    if found is None:
        raise UnknownReturn(f"no return {return_id}", field="return_id")
    return found


def _open(rtx: ReturnsTx, return_id: int) -> tuple[ReturnRecord, OrderFacts]:
    """The return, with its order's row locked (so every write to it is one at a time)."""
    first = _record(rtx, return_id)
    facts = _locked(rtx, first.order_id)
    return _record(rtx, return_id), facts


def _move(
    rtx: ReturnsTx, rec: ReturnRecord, target: ReturnStatus, now: datetime, **values: Any
) -> None:
    transition(rec.status, target)
    rtx.update_return(rec.id, {"status": target.value, "updated_at": now, **values})


def review_return(
    rtx: ReturnsTx, return_id: int, *, approve: bool, note: str, geocode: Geocoder, now: datetime
) -> None:
    """A person's decision on a return the policy sent to review."""
    rec, facts = _open(rtx, return_id)
    if rec.status is not ReturnStatus.REVIEW:
        raise NotReturnable(f"return {return_id} is {rec.status}, not waiting for review")
    target = ReturnStatus.APPROVED if approve else ReturnStatus.REJECTED
    _move(
        rtx,
        rec,
        target,
        now,
        decision="approve" if approve else "reject",
        decision_reasons=[note or ("approved on review" if approve else "rejected on review")],
    )
    rtx.core.emit(
        [
            Event(
                RETURN_DECIDED,
                f"return:{return_id}",
                {
                    "order_id": rec.order_id,
                    "decision": "approve" if approve else "reject",
                    "reasons": [note],
                    "by": "review",
                },
            )
        ],
        now,
    )
    if approve:
        _on_approved(rtx, return_id, facts, geocode=geocode, now=now)


def _on_approved(
    rtx: ReturnsTx, return_id: int, facts: OrderFacts, *, geocode: Geocoder, now: datetime
) -> None:
    rec = _record(rtx, return_id)
    if rec.exchange and rec.exchange.get("instant"):
        _ship_replacement(rtx, rec, facts, geocode=geocode, now=now)


def cancel_return(rtx: ReturnsTx, return_id: int, *, now: datetime) -> None:
    rec, _ = _open(rtx, return_id)
    if rec.refund_id is not None:
        raise AlreadyRefunded(f"return {return_id} was refunded; it cannot be cancelled")
    _move(rtx, rec, ReturnStatus.CANCELLED, now)
    rtx.core.emit([Event(RETURN_CANCELLED, f"return:{return_id}", {"order_id": rec.order_id})], now)


def issue_label(rtx: ReturnsTx, return_id: int, *, carrier: ReturnCarrier, now: datetime) -> Label:
    rec, facts = _open(rtx, return_id)
    transition(rec.status, ReturnStatus.LABEL_ISSUED)
    label = carrier.return_label(return_id, facts, rec.location_id)
    _move(
        rtx,
        rec,
        ReturnStatus.LABEL_ISSUED,
        now,
        carrier=label.carrier,
        tracking_number=label.tracking_number,
        label=label.document,
    )
    rtx.core.emit(
        [
            Event(
                RETURN_LABEL_ISSUED,
                f"return:{return_id}",
                {
                    "order_id": rec.order_id,
                    "carrier": label.carrier,
                    "tracking_number": label.tracking_number,
                },
            )
        ],
        now,
    )
    return label


def scan_label(rtx: ReturnsTx, return_id: int, *, now: datetime) -> int | None:
    """The carrier scanned the return parcel: it is on its way. Refunds if the rule says so."""
    rec, facts = _open(rtx, return_id)
    _move(rtx, rec, ReturnStatus.IN_TRANSIT, now)
    rtx.core.emit(
        [Event(RETURN_IN_TRANSIT, f"return:{return_id}", {"order_id": rec.order_id})], now
    )
    return _refund_if_due(rtx, return_id, facts, now)


def receive_return(
    rtx: ReturnsTx, return_id: int, *, location_id: str, geocode: Geocoder, now: datetime
) -> int | None:
    rec, facts = _open(rtx, return_id)
    if not rtx.core.known_locations([location_id]):
        raise InvalidInput(f"no location {location_id!r}", field="location_id")
    _move(rtx, rec, ReturnStatus.RECEIVED, now, location_id=location_id)
    data = {"order_id": rec.order_id, "location_id": location_id}
    rtx.core.emit([Event(RETURN_RECEIVED, f"return:{return_id}", data)], now)
    rec = _record(rtx, return_id)
    if rec.exchange is not None:
        if rec.exchange_order_id is None:  # not instant: the replacement ships now
            _ship_replacement(rtx, rec, facts, geocode=geocode, now=now)
        elif rec.exchange_status == "open":
            rtx.update_return(return_id, {"exchange_status": "returned"})
    return _refund_if_due(rtx, return_id, facts, now)


@dataclass(frozen=True, slots=True)
class DispositionRequest:
    item_id: int
    quantity: int
    disposition: Disposition
    location_id: str | None = None  # default: where the return was received


def inspect_return(
    rtx: ReturnsTx, return_id: int, dispositions: Sequence[DispositionRequest], *, now: datetime
) -> int | None:
    """Set what happens to each unit. Restocked units go back to the location's on_hand;
    refurbished and disposed units are received and written off again (two movements), so the
    ledger shows every unit that came back. When every unit has one, the return is inspected."""
    rec, facts = _open(rtx, return_id)
    if rec.status is not ReturnStatus.RECEIVED:
        raise NotReturnable(
            f"return {return_id} is {rec.status}; receive it before inspecting", field="status"
        )
    items = {i.id: i for i in rec.items}
    done = rtx.dispositioned(return_id)
    asked: dict[int, int] = defaultdict(int)
    for n, d in enumerate(dispositions):
        if d.item_id not in items:
            raise InvalidInput(
                f"return {return_id} has no item {d.item_id}", field=f"dispositions[{n}].item_id"
            )
        if d.quantity <= 0:
            raise InvalidInput("at least one unit", field=f"dispositions[{n}].quantity")
        asked[d.item_id] += d.quantity
    for item_id, q in asked.items():
        left = items[item_id].quantity - done.get(item_id, 0)
        if q > left:
            raise AlreadyDispositioned(
                f"item {item_id}: {q} unit(s) given a disposition, {left} left without one",
                field="dispositions",
                item_id=item_id,
                left=left,
            )
    for d in dispositions:
        item = items[d.item_id]
        location = d.location_id or rec.location_id
        if location is None:
            raise InvalidInput("name the location", field="location_id")
        disp_id = rtx.add_disposition(return_id, item.id, d.quantity, d.disposition, location, now)
        ref = f"return:{return_id}"
        key = f"return:{return_id}:disposition:{disp_id}"
        if d.disposition is Disposition.RESTOCK:
            inventory.adjust_stock(
                rtx.core,
                sku=item.sku,
                location_id=location,
                reason="return_restock",
                delta=d.quantity,
                reference=ref,
                idempotency_key=key,
                now=now,
            )
        else:
            inventory.adjust_stock(
                rtx.core,
                sku=item.sku,
                location_id=location,
                reason="return_received",
                delta=d.quantity,
                reference=ref,
                idempotency_key=f"{key}:in",
                now=now,
            )
            inventory.adjust_stock(
                rtx.core,
                sku=item.sku,
                location_id=location,
                reason=f"return_{d.disposition.value}",
                delta=-d.quantity,
                reference=ref,
                idempotency_key=f"{key}:out",
                now=now,
            )
    total_done = {k: done.get(k, 0) + asked.get(k, 0) for k in items}
    if all(total_done[k] == items[k].quantity for k in items):
        _move(rtx, rec, ReturnStatus.INSPECTED, now)
        rtx.core.emit(
            [
                Event(
                    RETURN_INSPECTED,
                    f"return:{return_id}",
                    {
                        "order_id": rec.order_id,
                        "dispositions": [
                            {
                                "item_id": d.item_id,
                                "quantity": d.quantity,
                                "disposition": d.disposition.value,
                            }
                            for d in dispositions
                        ],
                    },
                )
            ],
            now,
        )
        refund_id = _refund_if_due(rtx, return_id, facts, now)
        _close_if_done(rtx, return_id, now)
        return refund_id
    return None


def _close_if_done(rtx: ReturnsTx, return_id: int, now: datetime) -> None:
    rec = _record(rtx, return_id)
    if rec.status is ReturnStatus.INSPECTED and rec.refund_id is not None:
        _move(rtx, rec, ReturnStatus.CLOSED, now)
        rtx.core.emit(
            [Event(RETURN_CLOSED, f"return:{return_id}", {"order_id": rec.order_id})], now
        )


def _refund_if_due(rtx: ReturnsTx, return_id: int, facts: OrderFacts, now: datetime) -> int | None:
    rec = _record(rtx, return_id)
    if rec.refund_id is not None or not refund_due(rec.policy.refund_timing, rec.status):
        return None
    return _refund_return(rtx, rec, facts, now)


def refund_return_now(rtx: ReturnsTx, return_id: int, *, now: datetime) -> int:
    """The merchant refunds a return before its timing rule would (any approved return)."""
    rec, facts = _open(rtx, return_id)
    if rec.refund_id is not None:
        raise AlreadyRefunded(
            f"return {return_id} was refunded already (refund {rec.refund_id})",
            refund_id=rec.refund_id,
        )
    if rec.status in (
        ReturnStatus.REQUESTED,
        ReturnStatus.REVIEW,
        ReturnStatus.REJECTED,
        ReturnStatus.CANCELLED,
    ):
        raise NotReturnable(f"return {return_id} is {rec.status}; it cannot be refunded")
    refund_id = _refund_return(rtx, rec, facts, now)
    _close_if_done(rtx, return_id, now)
    return refund_id


def _refund_return(rtx: ReturnsTx, rec: ReturnRecord, facts: OrderFacts, now: datetime) -> int:
    units: dict[int, int] = defaultdict(int)
    for item in rec.items:
        units[item.line_no] += item.quantity
    money = order_money(facts.order)
    refunded = rtx.refunded(facts.id)
    plain = quote_refund(
        money,
        refunded,
        units,
        refund_shipping=rec.refund_shipping and not refunded.shipping_refunded(),
    )
    fees: list[Fee] = []
    if not rec.fees_waived and rec.exchange is None:
        fees = fees_for(rec.policy.fee_rules(), plain.items, plain.units)
    quote = quote_refund(
        money,
        refunded,
        units,
        refund_shipping=rec.refund_shipping and not refunded.shipping_refunded(),
        fees=fees,
    )
    cur = facts.order.currency
    kept = Money.zero(cur)
    # An overdue instant exchange's replacement was made due in full: the return that comes
    # back late is refunded like a plain one (without fees), never kept twice.
    if rec.exchange is not None and rec.exchange_status != "overdue":
        cost = Money.of(str(rec.exchange["cost"]), cur)
        difference = exchange_difference(quote.total, cost)
        kept = cost if difference.amount <= 0 else quote.total
        if difference.amount > 0:
            data = {
                "order_id": facts.id,
                "amount": str(difference.amount),
                "currency": cur,
                "replacement_order_id": rec.exchange_order_id,
            }
            rtx.core.emit([Event(EXCHANGE_CHARGE_DUE, f"return:{rec.id}", data)], now)
            rtx.update_return(
                rec.id, {"exchange": {**rec.exchange, "charge_due": str(difference.amount)}}
            )
    refund_id = _issue(
        rtx, facts, quote, rec.refund_to, rec.policy, return_id=rec.id, kept=kept, now=now
    )
    rtx.update_return(rec.id, {"refund_id": refund_id, "updated_at": now})
    return refund_id


def _issue(
    rtx: ReturnsTx,
    facts: OrderFacts,
    quote: RefundQuote,
    destination: RefundDestination,
    policy: ReturnPolicy,
    *,
    return_id: int | None,
    kept: Money,
    now: datetime,
    idempotency_key: str | None = None,
    restock: Mapping[int, str] | None = None,
) -> int:
    amount = quote.total - kept
    payments = payments_of(rtx, facts, now)
    parts = split_refund(amount, payments, policy.payment_order)
    bonus = Money.zero(amount.currency)
    if destination is RefundDestination.STORE_CREDIT:
        bonus = store_credit_bonus(amount, policy.store_credit_bonus_percent)
    refund_id = rtx.insert_refund(
        facts.id,
        return_id=return_id,
        quote=quote,
        parts=parts,
        destination=destination,
        bonus=bonus,
        exchange=kept,
        source="aoms",
        idempotency_key=idempotency_key,
        external_id=None,
        restock=restock or {},
        now=now,
    )
    rtx.core.emit(
        [
            Event(
                REFUND_ISSUED,
                f"order:{facts.id}",
                {
                    "refund_id": refund_id,
                    "return_id": return_id,
                    "amount": str(amount.amount),
                    "currency": amount.currency,
                    "destination": destination.value,
                    "bonus": str(bonus.amount),
                    "fees": str(quote.fees_total.amount),
                    "payments": [
                        {
                            "payment_id": p.payment_id,
                            "method": p.method,
                            "amount": str(p.amount.amount),
                        }
                        for p in parts
                    ],
                },
            )
        ],
        now,
    )
    return refund_id


# -- refunds without a return ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefundLineRequest:
    line_no: int
    quantity: int
    restock_location_id: str | None = None


@dataclass(frozen=True, slots=True)
class RefundOrder:
    order_id: int
    lines: Sequence[RefundLineRequest]
    refund_shipping: bool = False
    fees: Sequence[Fee] = ()
    refund_to: RefundDestination = RefundDestination.ORIGINAL
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund_id: int
    applied: bool  # False when the idempotency key was used before


def refund_order(rtx: ReturnsTx, cmd: RefundOrder, *, now: datetime) -> RefundResult:
    """Refund units of an order directly (the merchant's decision), optionally restocking them.

    Units on their way back in an open return are not refundable here: that return refunds
    them. Restocking needs the order recorded as delivered (units that never left are not
    stock that came back).
    """
    facts = _locked(rtx, cmd.order_id)
    if cmd.idempotency_key is not None:
        earlier = rtx.refund_by_key(cmd.idempotency_key)
        if earlier is not None:
            return RefundResult(earlier, applied=False)
    units: dict[int, int] = defaultdict(int)
    restock: dict[int, str] = {}
    for ln in cmd.lines:
        units[ln.line_no] += ln.quantity
        if ln.restock_location_id:
            restock[ln.line_no] = ln.restock_location_id
    in_returns = rtx.units_in_open_returns(facts.id, unrefunded_only=True)
    money = order_money(facts.order)
    refunded = rtx.refunded(facts.id)
    for line_no, n in units.items():
        line = money.line(line_no)
        left = line.quantity - refunded.line(line_no, money.currency).units
        left -= in_returns.get(line_no, 0)
        if n > left:
            raise ReturnQuantityExceeded(
                f"line {line_no} ({line.sku}): {n} unit(s) asked, {left} of {line.quantity} "
                "can still be refunded",
                field="lines",
                line_no=line_no,
                asked=n,
                left=left,
            )
    if restock and rtx.delivery(facts.id) is None:
        raise NotReturnable(
            f"order {facts.id} is not recorded as delivered; nothing to restock",
            field="restock_location_id",
        )
    quote = quote_refund(money, refunded, units, refund_shipping=cmd.refund_shipping, fees=cmd.fees)
    policy = rtx.return_policy(facts.shop).for_country(facts.country)
    refund_id = _issue(
        rtx,
        facts,
        quote,
        cmd.refund_to,
        policy,
        return_id=None,
        kept=Money.zero(money.currency),
        now=now,
        idempotency_key=cmd.idempotency_key,
        restock=restock,
    )
    for line_no, location in sorted(restock.items()):
        inventory.adjust_stock(
            rtx.core,
            sku=money.line(line_no).sku,
            location_id=location,
            reason="refund_restock",
            delta=units[line_no],
            reference=f"refund:{refund_id}",
            idempotency_key=f"refund:{refund_id}:line:{line_no}",
            now=now,
        )
    return RefundResult(refund_id, applied=True)


# -- exchanges -----------------------------------------------------------------------------


def _ship_replacement(
    rtx: ReturnsTx, rec: ReturnRecord, facts: OrderFacts, *, geocode: Geocoder, now: datetime
) -> int:
    """Create the replacement as an order of its own; it is routed and its stock reserved
    like any order (an instant exchange before the return arrives)."""
    assert rec.exchange is not None
    x = rec.exchange
    cur = facts.order.currency
    original = facts.order
    replacement = Order(
        shop=facts.shop,
        channel="exchange",
        external_id=f"return-{rec.id}",
        name=f"{original.name}-X{rec.id}",
        currency=cur,
        placed_at=now,
        source_updated_at=now,
        lines=(
            OrderLine(
                1,
                str(x["sku"]),
                int(x["quantity"]),
                Money.of(str(x["unit_price"]), cur),
                Money.zero(cur),
                Money.of(str(x["tax"]), cur),
                title=x.get("title"),
            ),
        ),
        shipping_address=original.shipping_address,
        financial_status="exchange",
        taxes_included=original.taxes_included,
        tags=("exchange",),
    )
    received = orders.receive_order(rtx.core, replacement, geocode=geocode, now=now)
    values: dict[str, Any] = {"exchange_order_id": received.order_id, "exchange_status": "open"}
    if x.get("instant"):
        values["exchange_deadline"] = now + timedelta(days=rec.policy.exchange_deadline_days)
    rtx.update_return(rec.id, values)
    rtx.core.emit(
        [
            Event(
                EXCHANGE_CREATED,
                f"return:{rec.id}",
                {
                    "order_id": facts.id,
                    "replacement_order_id": received.order_id,
                    "status": received.status.value,
                    "instant": bool(x.get("instant")),
                },
            )
        ],
        now,
    )
    return received.order_id


def check_exchange_deadlines(rtx: ReturnsTx, *, now: datetime) -> list[int]:
    """Instant exchanges whose return has not arrived by the deadline: the replacement's full
    price becomes due (an event the payment side acts on) and the return is flagged."""
    overdue = []
    for return_id in rtx.overdue_exchanges(now):
        rec, facts = _open(rtx, return_id)
        if rec.exchange_status != "open" or rec.status in (
            ReturnStatus.RECEIVED,
            ReturnStatus.INSPECTED,
            ReturnStatus.CLOSED,
        ):
            continue
        assert rec.exchange is not None
        rtx.update_return(
            return_id,
            {
                "exchange_status": "overdue",
                "exchange": {**rec.exchange, "charge_due": rec.exchange["cost"]},
            },
        )
        rtx.core.emit(
            [
                Event(
                    EXCHANGE_RETURN_OVERDUE,
                    f"return:{return_id}",
                    {
                        "order_id": rec.order_id,
                        "replacement_order_id": rec.exchange_order_id,
                        "amount": rec.exchange["cost"],
                        "currency": facts.order.currency,
                    },
                )
            ],
            now,
        )
        overdue.append(return_id)
    return overdue


# -- refunds made elsewhere -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExternalRefund:
    """A refund made in the channel (Shopify's admin), as its webhook tells it."""

    order_id: int
    external_id: str
    lines: Mapping[int, tuple[int, Money, Money]]  # line_no -> (units, goods, tax)
    shipping: Money
    shipping_tax: Money
    transactions: Sequence[tuple[str, Money]]  # (gateway, amount) of successful refunds
    restock: Mapping[int, str] = field(default_factory=dict)
    note: str | None = None


AOMS_MARK = "aoms-refund:"


def record_external_refund(rtx: ReturnsTx, ext: ExternalRefund, *, now: datetime) -> int | None:
    """Take in a refund made in the channel, once. One aoms pushed itself is recognised (by
    the id the push stored, or by the `aoms-refund:<id>` mark in its note) and not counted
    again; a repeat of the same webhook finds its refund and changes nothing."""
    facts = _locked(rtx, ext.order_id)
    known = rtx.refund_by_external(facts.id, ext.external_id)
    if known is not None:
        return None
    if ext.note and AOMS_MARK in ext.note:
        mark = ext.note.split(AOMS_MARK, 1)[1].split()[0]
        if mark.isdigit():
            rtx.set_refund_external_id(int(mark), ext.external_id)
            return None
    cur = facts.order.currency
    money = order_money(facts.order)
    refunded = rtx.refunded(facts.id)
    lines = []
    for line_no, (n, goods, tax) in sorted(ext.lines.items()):
        line = money.line(line_no)
        left = line.quantity - refunded.line(line_no, cur).units
        if n > left:
            raise ReturnQuantityExceeded(
                f"the channel refunded {n} unit(s) of line {line_no}, {left} were left",
                line_no=line_no,
                asked=n,
                left=left,
            )
        lines.append(RefundLine(line_no, line.sku, n, goods, tax))
    quote = RefundQuote(cur, tuple(lines), ext.shipping, ext.shipping_tax, ())
    if ext.transactions:
        # What left the payments is what the channel refunded; a difference to the lines is
        # kept visible: less is an adjustment line, more is counted against the shipping (so
        # aoms never refunds it again).
        paid_back = Money.zero(cur)
        for _, value in ext.transactions:
            paid_back = paid_back + value
        if paid_back < quote.subtotal:
            quote = replace(quote, fees=(Fee("channel_adjustment", quote.subtotal - paid_back),))
        elif quote.subtotal < paid_back:
            quote = replace(quote, shipping=quote.shipping + (paid_back - quote.subtotal))
    payments = payments_of(rtx, facts, now)
    parts = _match_transactions(ext.transactions, payments, quote.total)
    refund_id = rtx.insert_refund(
        facts.id,
        return_id=None,
        quote=quote,
        parts=parts,
        destination=RefundDestination.ORIGINAL,
        bonus=Money.zero(cur),
        exchange=Money.zero(cur),
        source="shopify",
        idempotency_key=None,
        external_id=ext.external_id,
        restock=ext.restock,
        now=now,
    )
    for line_no, location in sorted(ext.restock.items()):
        inventory.adjust_stock(
            rtx.core,
            sku=money.line(line_no).sku,
            location_id=location,
            reason="refund_restock",
            delta=ext.lines[line_no][0],
            reference=f"refund:{refund_id}",
            idempotency_key=f"refund:{refund_id}:line:{line_no}",
            now=now,
        )
    rtx.core.emit(
        [
            Event(
                REFUND_RECORDED,
                f"order:{facts.id}",
                {
                    "refund_id": refund_id,
                    "external_id": ext.external_id,
                    "amount": str(quote.total.amount),
                    "currency": cur,
                },
            )
        ],
        now,
    )
    return refund_id


def _match_transactions(
    transactions: Sequence[tuple[str, Money]], payments: Sequence[Payment], amount: Money
) -> list[PaymentRefund]:
    """Tie the channel's refund transactions to our payments by gateway; what cannot be tied
    by gateway is split in payment order, never beyond what a payment can take back."""
    if not transactions:
        return split_refund(amount, payments)
    room = {p.id: p.refundable for p in payments}
    parts: dict[int, Money] = {}
    rest = Money.zero(amount.currency)
    for gateway, value in transactions:
        target = next((p for p in payments if p.method == gateway and room[p.id] >= value), None)
        if target is None:
            rest = rest + value
            continue
        room[target.id] = room[target.id] - value
        parts[target.id] = parts.get(target.id, Money.zero(amount.currency)) + value
    if rest.amount:
        left = [Payment(p.id, p.method, p.captured, p.captured - room[p.id]) for p in payments]
        for part in split_refund(rest, left):
            parts[part.payment_id] = (
                parts.get(part.payment_id, Money.zero(amount.currency)) + part.amount
            )
    methods = {p.id: p.method for p in payments}
    return [PaymentRefund(pid, methods[pid], value) for pid, value in sorted(parts.items())]
