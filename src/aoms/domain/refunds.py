"""Refund arithmetic, exact to the minor unit.

What a line is worth when it comes back:

- its price × quantity, minus its own discount, minus its share of the order-level discount
  (the order discount is split over the lines in proportion to their pre-discount amounts by
  largest remainder, so the shares add up to the discount exactly);
- plus its tax as charged on the original order (with tax-inclusive prices the tax is already
  in the price: it is split out, never added twice).

Refunding k of the u units still unrefunded on a line refunds k/u of what is left of the line
(largest remainder again), so the last unit takes exactly what remains and a line returned in
any number of steps refunds exactly what it cost. Shipping and its tax are refunded only when
asked. Fees are separate, visible deductions and never take a refund below zero. A refund is
split over the order's payments in a stated order and never sends a payment more than it
captured minus what was already refunded to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from aoms.domain.errors import (
    InvalidInput,
    NothingToRefund,
    RefundExceedsCaptured,
    ReturnQuantityExceeded,
    ShippingAlreadyRefunded,
)
from aoms.domain.money import Money, total
from aoms.domain.orders import Order


@dataclass(frozen=True, slots=True)
class LineMoney:
    """What one order line cost, after discounts, with its tax split out."""

    line_no: int
    sku: str
    quantity: int
    goods: Money  # price × quantity − line discount − order-discount share, tax excluded
    tax: Money  # tax charged on the line
    discount_share: Money  # this line's share of the order-level discount

    @property
    def total(self) -> Money:
        return self.goods + self.tax


@dataclass(frozen=True, slots=True)
class OrderMoney:
    """An order's amounts as refunds see them."""

    currency: str
    taxes_included: bool
    lines: tuple[LineMoney, ...]
    shipping: Money  # shipping, tax excluded
    shipping_tax: Money

    @property
    def total(self) -> Money:
        parts = [ln.total for ln in self.lines] + [self.shipping, self.shipping_tax]
        return total(parts, self.currency)

    def line(self, line_no: int) -> LineMoney:
        for ln in self.lines:
            if ln.line_no == line_no:
                return ln
        raise InvalidInput(f"the order has no line {line_no}", field="line_no")


def order_money(order: Order) -> OrderMoney:
    """Allocate the order-level discount over the lines and split tax out of each line."""
    cur = order.currency
    zero = Money.zero(cur)
    order_discount = order.order_discount or zero
    weights = [ln.gross.in_minor() for ln in order.lines]
    if order_discount.amount and sum(weights) > 0:
        shares = order_discount.allocate(weights)
    elif order_discount.amount:
        raise InvalidInput("an order discount on an order whose lines cost nothing",
                           field="order_discount")  # fmt: skip
    else:
        shares = [zero for _ in order.lines]
    lines = []
    for ln, share in zip(order.lines, shares, strict=True):
        after_discount = ln.gross - ln.discount - share
        goods = after_discount - ln.tax if order.taxes_included else after_discount
        if goods.amount < 0:
            raise InvalidInput(
                f"line {ln.line_no}: its discounts and included tax exceed its price",
                field=f"lines[{ln.line_no}]",
            )
        lines.append(LineMoney(ln.line_no, ln.sku, ln.quantity, goods, ln.tax, share))
    shipping_tax = order.shipping_tax or zero
    shipping = order.shipping or zero
    if order.taxes_included:
        shipping = shipping - shipping_tax
    if shipping.amount < 0 or shipping_tax.amount < 0:
        raise InvalidInput("shipping tax exceeds the shipping charged", field="shipping_tax")
    return OrderMoney(cur, order.taxes_included, tuple(lines), shipping, shipping_tax)


@dataclass(frozen=True, slots=True)
class LineRefunded:
    """What has already been refunded (or is committed to a refund) on a line."""

    units: int
    goods: Money
    tax: Money


@dataclass(frozen=True, slots=True)
class Refunded:
    """Everything refunded on an order so far."""

    lines: Mapping[int, LineRefunded] = field(default_factory=dict)
    shipping: Money | None = None
    shipping_tax: Money | None = None

    def line(self, line_no: int, currency: str) -> LineRefunded:
        zero = Money.zero(currency)
        return self.lines.get(line_no) or LineRefunded(0, zero, zero)

    def shipping_refunded(self) -> bool:
        return bool(
            (self.shipping and self.shipping.amount)
            or (self.shipping_tax and self.shipping_tax.amount)
        )


@dataclass(frozen=True, slots=True)
class Fee:
    kind: str  # e.g. "restocking", "return_shipping"
    amount: Money
    description: str = ""


@dataclass(frozen=True, slots=True)
class RefundLine:
    line_no: int
    sku: str
    units: int
    goods: Money
    tax: Money

    @property
    def total(self) -> Money:
        return self.goods + self.tax


@dataclass(frozen=True, slots=True)
class RefundQuote:
    """A refund, line by line: what is given back and what is kept as fees."""

    currency: str
    lines: tuple[RefundLine, ...]
    shipping: Money
    shipping_tax: Money
    fees: tuple[Fee, ...]  # as deducted (capped so the total never goes below zero)

    @property
    def items(self) -> Money:
        return total([ln.total for ln in self.lines], self.currency)

    @property
    def subtotal(self) -> Money:
        return self.items + self.shipping + self.shipping_tax

    @property
    def fees_total(self) -> Money:
        return total([f.amount for f in self.fees], self.currency)

    @property
    def total(self) -> Money:
        return self.subtotal - self.fees_total

    @property
    def units(self) -> int:
        return sum(ln.units for ln in self.lines)


def _share(left: Money, units_left: int, units: int) -> Money:
    """`units` of the `units_left` still unrefunded take this part of what is `left`."""
    if units == units_left:
        return left
    return left.allocate([units, units_left - units])[0]


def quote_refund(
    money: OrderMoney,
    refunded: Refunded,
    units: Mapping[int, int],
    *,
    refund_shipping: bool = False,
    fees: Sequence[Fee] = (),
) -> RefundQuote:
    """The refund of `units` (line_no -> units) given what was refunded before."""
    cur = money.currency
    zero = Money.zero(cur)
    lines = []
    for line_no, count in sorted(units.items()):
        if count <= 0:
            raise InvalidInput("refund at least one unit of a line", field=f"lines[{line_no}]")
        ln = money.line(line_no)
        done = refunded.line(line_no, cur)
        units_left = ln.quantity - done.units
        if count > units_left:
            raise ReturnQuantityExceeded(
                f"line {line_no} ({ln.sku}): {count} unit(s) asked, at most {units_left} left "
                f"of {ln.quantity}",
                field=f"lines[{line_no}]",
                line_no=line_no,
                asked=count,
                left=units_left,
            )
        goods = _share(ln.goods - done.goods, units_left, count)
        tax = _share(ln.tax - done.tax, units_left, count)
        lines.append(RefundLine(line_no, ln.sku, count, goods, tax))
    ship, ship_tax = zero, zero
    if refund_shipping:
        if refunded.shipping_refunded():
            raise ShippingAlreadyRefunded("the order's shipping was refunded already")
        ship, ship_tax = money.shipping, money.shipping_tax
    quote = RefundQuote(cur, tuple(lines), ship, ship_tax, ())
    if not lines and not refund_shipping:
        raise NothingToRefund("name at least one unit to refund, or the shipping")
    room = quote.subtotal
    kept = []
    for fee in fees:
        if fee.amount.currency != cur:
            raise InvalidInput(f"fee {fee.kind} is not in {cur}", field="fees")
        if fee.amount.amount < 0:
            raise InvalidInput(f"fee {fee.kind} is negative", field="fees")
        take = fee.amount if fee.amount <= room else room
        room = room - take
        if take.amount:
            kept.append(replace(fee, amount=take))
    return replace(quote, fees=tuple(kept))


def after(refunded: Refunded, quote: RefundQuote) -> Refunded:
    """What is refunded once `quote` is refunded too."""
    cur = quote.currency
    lines = dict(refunded.lines)
    for ln in quote.lines:
        done = refunded.line(ln.line_no, cur)
        lines[ln.line_no] = LineRefunded(done.units + ln.units, done.goods + ln.goods,
                                         done.tax + ln.tax)  # fmt: skip
    zero = Money.zero(cur)
    return Refunded(
        lines,
        (refunded.shipping or zero) + quote.shipping,
        (refunded.shipping_tax or zero) + quote.shipping_tax,
    )


# -- fees ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeeRule:
    """A fee a return policy charges: a percentage of the items refunded, a fixed amount per
    unit, or a fixed amount per return (amounts in the order's currency)."""

    kind: str
    percent: Decimal | None = None
    per_unit: Decimal | None = None
    fixed: Decimal | None = None

    def amount(self, items: Money, units: int) -> Money:
        cur = items.currency
        result = Money.zero(cur)
        if self.percent is not None:
            result = result + Money.rounded(items.amount * self.percent / 100, cur)
        if self.per_unit is not None:
            result = result + Money.of(self.per_unit, cur) * units
        if self.fixed is not None:
            result = result + Money.of(self.fixed, cur)
        return result


def fees_for(rules: Iterable[FeeRule], items: Money, units: int) -> list[Fee]:
    return [
        Fee(r.kind, r.amount(items, units), _describe(r))
        for r in rules
        if r.amount(items, units).amount
    ]


def _describe(rule: FeeRule) -> str:
    parts = []
    if rule.percent is not None:
        parts.append(f"{rule.percent}% of the items")
    if rule.per_unit is not None:
        parts.append(f"{rule.per_unit} per unit")
    if rule.fixed is not None:
        parts.append(f"{rule.fixed} per return")
    return f"{rule.kind} fee: " + " + ".join(parts)


# -- payments --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payment:
    id: int
    method: str  # gateway / method name, e.g. "card", "gift_card", "shopify_payments"
    captured: Money
    refunded: Money

    @property
    def refundable(self) -> Money:
        return self.captured - self.refunded


@dataclass(frozen=True, slots=True)
class PaymentRefund:
    payment_id: int
    method: str
    amount: Money


def refund_order(payments: Sequence[Payment], method_order: Sequence[str]) -> list[Payment]:
    """The payments in the order refunds go to: methods named in `method_order` first, in
    that order; the others after them; payments of one method in the order they were made."""
    rank = {m: i for i, m in enumerate(method_order)}
    return sorted(payments, key=lambda p: (rank.get(p.method, len(rank)), p.id))


def split_refund(
    amount: Money, payments: Sequence[Payment], method_order: Sequence[str] = ()
) -> list[PaymentRefund]:
    """Send `amount` to the payments in the stated order, none more than it can take back."""
    if amount.amount < 0:
        raise InvalidInput("a refund is never negative", field="amount")
    room = total([p.refundable for p in payments], amount.currency)
    if room < amount:
        raise RefundExceedsCaptured(
            f"refund of {amount} exceeds the {room} still refundable on the order's payments",
            asked=str(amount.amount),
            refundable=str(room.amount),
        )
    parts = []
    left = amount
    for p in refund_order(payments, method_order):
        if not left.amount:
            break
        take = p.refundable if p.refundable <= left else left
        if take.amount:
            parts.append(PaymentRefund(p.id, p.method, take))
            left = left - take
    return parts


def store_credit_bonus(amount: Money, bonus_percent: Decimal) -> Money:
    """The bonus credited on top of a refund taken as store credit (rounded half to even)."""
    if bonus_percent < 0:
        raise InvalidInput("the store-credit bonus is never negative", field="bonus_percent")
    return Money.rounded(amount.amount * bonus_percent / 100, amount.currency)


def exchange_difference(returned: Money, replacement: Money) -> Money:
    """What the customer pays (positive) or gets back (negative) for an exchange: the
    replacement's price with its tax, less what the returned units are worth."""
    return replacement - returned
