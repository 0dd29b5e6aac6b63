"""Refund use cases: payments, delivery, refunds with or without a return, and refunds made in
the channel taken in once.

Every use case runs in one transaction that first locks the order's row, so two requests for
the same units (two workers, a retry, a webhook and an API call) are decided one after the
other on fresh numbers: nothing is refunded twice and no payment gets back more than it paid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from aoms.domain.errors import (
    InvalidInput,
    NotFound,
    NotReturnable,
    PaymentsAlreadyRecorded,
    ReturnQuantityExceeded,
)
from aoms.domain.events import Event
from aoms.domain.money import Money
from aoms.domain.orders import OrderStatus
from aoms.domain.refunds import (
    Fee,
    Payment,
    PaymentRefund,
    RefundLine,
    RefundQuote,
    order_money,
    quote_refund,
    split_refund,
    store_credit_bonus,
)
from aoms.domain.returns import (
    RefundDestination,
    ReturnPolicy,
)
from aoms.services import handoff, inventory
from aoms.services.returns_ports import (
    REFUND_ISSUED,
    REFUND_RECORDED,
    NewPayment,
    OrderFacts,
    ReturnsTx,
)

# -- payments and delivery -----------------------------------------------------------------


def locked(rtx: ReturnsTx, order_id: int) -> OrderFacts:
    facts = rtx.lock_order(order_id)
    if facts is None:
        raise NotFound(f"no order {order_id}", field="order_id")
    return facts


def record_payments(
    rtx: ReturnsTx, order_id: int, payments: Sequence[NewPayment], *, source: str, now: datetime
) -> None:
    """Record what the order's payments captured (replacing nothing: an order's payments are
    recorded once; a refund already made stays tied to the payment it went to)."""
    facts = locked(rtx, order_id)
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
    facts = locked(rtx, order_id)
    if payment.external_id is not None and rtx.payment_by_external(order_id, payment.external_id):
        return False
    if payment.captured.currency != facts.order.currency:
        raise InvalidInput(
            f"transaction in {payment.captured.currency}, order in {facts.order.currency}",
            field="currency",
        )
    rtx.add_payments(order_id, [payment], "channel", now)
    return True


def assumed_capture(facts: OrderFacts) -> Money:
    """What one payment is assumed to have captured when none is known: the channel's stated
    total, or else the order's own."""
    stated = facts.order.total_price
    if stated is not None and stated.amount >= 0:
        return stated
    return order_money(facts.order).total


def payments_of(rtx: ReturnsTx, facts: OrderFacts, now: datetime) -> list[Payment]:
    """The order's payments; when none were recorded, one payment of the order's total (the
    channel told us no more), recorded so later refunds see the same one. Its method is the
    channel's gateway names when it gave them (Shopify's `payment_gateway_names`)."""
    found = rtx.payments(facts.id)
    if found:
        return found
    amount = assumed_capture(facts)
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
    consume: bool = True,
    units: Mapping[int, int] | None = None,
    at: str | None = None,
) -> None:
    """Record that the order's units reached the customer (or left for them): they become
    returnable, and what aoms still reserved for them is consumed as shipped (unless a
    warehouse aoms handed them to reports its own shipments). `units` (order line -> units):
    only those left, as the channel's fulfilment names them, from `at` (an aoms location)
    first. `consume=False`: the channel
    tells of a fulfilment aoms itself made there, whose units aoms already counted."""
    facts = locked(rtx, order_id)
    if facts.status is OrderStatus.CANCELLED:
        raise NotReturnable(f"order {order_id} is cancelled", field="order_id")
    if delivered_at is None and fulfilled_at is None:
        delivered_at = now
    rtx.set_delivery(order_id, fulfilled_at, delivered_at, source, now)
    # Units the channel fulfilled left the building: what aoms still holds for them is
    # consumed, so that a restock of a returned unit is not stock made out of nothing.
    if consume:
        handoff.ship_outside(rtx.core.handoff(), order_id, now, units, at)


def parcel_delivered(
    rtx: ReturnsTx, order_id: int, *, delivered_at: datetime, now: datetime
) -> None:
    """A carrier delivered a parcel of the order: its shipped units become returnable, the
    return window running from the latest delivery. Nothing ships here (unlike
    `mark_delivered`): the parcel's units shipped when it left, and the order's other
    parcels and fulfilment orders are on their own way."""
    facts = locked(rtx, order_id)
    if facts.status is OrderStatus.CANCELLED:
        return
    known = rtx.delivery(order_id)
    if known is not None and known[1] is not None and known[1] >= delivered_at:
        return
    rtx.set_delivery(order_id, None, delivered_at, "carrier", now)


def issue(
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


@dataclass(frozen=True, slots=True)
class RefundPreview:
    quote: RefundQuote
    payments: tuple[PaymentRefund, ...]
    bonus: Money


def _plan(
    rtx: ReturnsTx, cmd: RefundOrder
) -> tuple[OrderFacts, RefundQuote, dict[int, int], dict[int, str], ReturnPolicy]:
    """Check a direct refund against what is left and price it (nothing is written)."""
    facts = locked(rtx, cmd.order_id)
    units: dict[int, int] = defaultdict(int)
    restock: dict[int, str] = {}
    for ln in cmd.lines:
        units[ln.line_no] += ln.quantity
        if ln.restock_location_id:
            restock[ln.line_no] = ln.restock_location_id
    in_returns = rtx.units_in_open_returns(facts.id, unrefunded_only=True)
    money = order_money(facts.order)
    refunded = rtx.refunded(facts.id)
    shipped = rtx.shipped_units(facts.id)
    for line_no, n in units.items():
        line = money.line(line_no)
        # Only units that left can be refunded here: one not shipped yet is taken off the
        # order by an edit or a cancellation, which also releases what it holds.
        gone = min(line.quantity, shipped.get(line_no, 0))
        left = gone - refunded.line(line_no, money.currency).units
        left -= in_returns.get(line_no, 0)
        if n > left:
            raise ReturnQuantityExceeded(
                f"line {line_no} ({line.sku}): {n} unit(s) asked, {max(left, 0)} of "
                f"{line.quantity} can still be refunded ({gone} shipped)",
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
    return facts, quote, dict(units), restock, policy


def preview_refund(rtx: ReturnsTx, cmd: RefundOrder) -> RefundPreview:
    """What `refund_order` would refund, and to which payments, without refunding anything."""
    facts, quote, _, _, policy = _plan(rtx, cmd)
    payments = rtx.payments(facts.id) or [
        Payment(
            0,
            "+".join(rtx.channel_gateways(facts.id))[:64] or "unknown",
            assumed_capture(facts),
            Money.zero(quote.currency),
        )
    ]
    parts = split_refund(quote.total, payments, policy.payment_order)
    bonus = Money.zero(quote.currency)
    if cmd.refund_to is RefundDestination.STORE_CREDIT:
        bonus = store_credit_bonus(quote.total, policy.store_credit_bonus_percent)
    return RefundPreview(quote, tuple(parts), bonus)


def refund_order(rtx: ReturnsTx, cmd: RefundOrder, *, now: datetime) -> RefundResult:
    """Refund units of an order directly (the merchant's decision), optionally restocking them.

    Units on their way back in an open return are not refundable here: that return refunds
    them. Restocking needs the order recorded as delivered (units that never left are not
    stock that came back).
    """
    if cmd.idempotency_key is not None:
        locked(rtx, cmd.order_id)
        earlier = rtx.refund_by_key(cmd.idempotency_key)
        if earlier is not None:
            return RefundResult(earlier, applied=False)
    facts, quote, units, restock, policy = _plan(rtx, cmd)
    refund_id = issue(
        rtx,
        facts,
        quote,
        cmd.refund_to,
        policy,
        return_id=None,
        kept=Money.zero(quote.currency),
        now=now,
        idempotency_key=cmd.idempotency_key,
        restock=restock,
    )
    skus = {ln.line_no: ln.sku for ln in quote.lines}
    for line_no, location in sorted(restock.items()):
        inventory.adjust_stock(
            rtx.core,
            sku=skus[line_no],
            location_id=location,
            reason="refund_restock",
            delta=units[line_no],
            reference=f"refund:{refund_id}",
            idempotency_key=f"refund:{refund_id}:line:{line_no}",
            now=now,
        )
    return RefundResult(refund_id, applied=True)


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
    facts = locked(rtx, ext.order_id)
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
