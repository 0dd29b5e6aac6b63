"""Return and exchange use cases: the lifecycle from request to refund and restock.

Every use case runs in one transaction that first locks the order's row, so two requests for
the same units are decided one after the other on fresh numbers: no unit is returned or
restocked twice. Stock movements go through `inventory.adjust_stock`, the one stock write path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aoms.domain.errors import (
    AlreadyDispositioned,
    AlreadyRefunded,
    InvalidInput,
    NotReturnable,
    ReturnQuantityExceeded,
    ShippingAlreadyRefunded,
    UnknownReturn,
)
from aoms.domain.events import Event
from aoms.domain.money import Money
from aoms.domain.orders import Order, OrderLine, OrderStatus
from aoms.domain.refunds import (
    Fee,
    exchange_difference,
    fees_for,
    order_money,
    quote_refund,
)
from aoms.domain.returns import (
    Disposition,
    ItemFacts,
    Outcome,
    RefundDestination,
    ReturnStatus,
    decide,
    fees_waived,
    refund_due,
    transition,
)
from aoms.services import holds, inventory, orders
from aoms.services.ports import Geocoder
from aoms.services.refunds import issue, locked
from aoms.services.returns_ports import (
    EXCHANGE_CHARGE_DUE,
    EXCHANGE_CREATED,
    EXCHANGE_RETURN_OVERDUE,
    RETURN_CANCELLED,
    RETURN_CLOSED,
    RETURN_DECIDED,
    RETURN_IN_TRANSIT,
    RETURN_INSPECTED,
    RETURN_LABEL_ISSUED,
    RETURN_RECEIVED,
    RETURN_REFUND_BLOCKED,
    RETURN_REQUESTED,
    Label,
    OrderFacts,
    ReturnCarrier,
    ReturnRecord,
    ReturnsTx,
)

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
    facts = locked(rtx, cmd.order_id)
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
    shipped = rtx.shipped_units(facts.id)
    for line_no, n in asked.items():
        ln = lines[line_no]
        gone = min(ln.quantity, shipped.get(line_no, 0))  # only units that left come back
        left = gone - committed.get(line_no, 0)
        if n > left:
            raise ReturnQuantityExceeded(
                f"line {line_no} ({ln.sku}): {n} unit(s) asked back, {max(left, 0)} of "
                f"{ln.quantity} can still be returned ({gone} shipped)",
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
    facts = locked(rtx, first.order_id)
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
    try:
        return _refund_return(rtx, rec, facts, now)
    except (ReturnQuantityExceeded, ShippingAlreadyRefunded) as exc:
        # Refunded meanwhile in the channel's admin: the parcel's receipt and inspection go
        # on, and the return waits for a person (POST …/refund shows why). The refund is
        # priced before anything is written, so nothing of it is half-written.
        data = {"order_id": rec.order_id, "code": exc.code, "reason": exc.message}
        rtx.core.emit([Event(RETURN_REFUND_BLOCKED, f"return:{return_id}", data)], now)
        return None


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
    charge = Money.zero(cur)
    # An overdue instant exchange's replacement was made due in full: the return that comes
    # back late is refunded like a plain one (without fees), never kept twice.
    if rec.exchange is not None and rec.exchange_status != "overdue":
        cost = Money.of(str(rec.exchange["cost"]), cur)
        difference = exchange_difference(quote.total, cost)
        kept = cost if difference.amount <= 0 else quote.total
        charge = difference if difference.amount > 0 else charge
    refund_id = issue(
        rtx, facts, quote, rec.refund_to, rec.policy, return_id=rec.id, kept=kept, now=now
    )
    if charge.amount and rec.exchange is not None:
        data = {
            "order_id": facts.id,
            "amount": str(charge.amount),
            "currency": cur,
            "replacement_order_id": rec.exchange_order_id,
        }
        rtx.core.emit([Event(EXCHANGE_CHARGE_DUE, f"return:{rec.id}", data)], now)
        rtx.update_return(rec.id, {"exchange": {**rec.exchange, "charge_due": str(charge.amount)}})
    rtx.update_return(rec.id, {"refund_id": refund_id, "updated_at": now})
    return refund_id


# -- exchanges -----------------------------------------------------------------------------


def _ship_replacement(
    rtx: ReturnsTx, rec: ReturnRecord, facts: OrderFacts, *, geocode: Geocoder, now: datetime
) -> int:
    """Create the replacement as an order of its own; it is routed and its stock reserved
    like any order (an instant exchange before the return arrives), and released for
    fulfilment by the lifecycle's gate like any order (no payment to wait for: the return
    pays for it). It ships by the original's shipping method, its days counted from now."""
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
        shipping_method=original.shipping_method,  # as fast as the customer chose at first
        financial_status="exchange",
        taxes_included=original.taxes_included,
        tags=("exchange",),
    )
    received = orders.receive_order(rtx.core, replacement, geocode=geocode, now=now)
    holds.gate(rtx.lifecycle(), received.order_id, now=now)
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
