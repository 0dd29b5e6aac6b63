"""Refund arithmetic: the issue's cases computed by hand, and properties over generated orders."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aoms.domain.errors import (
    InvalidInput,
    RefundExceedsCaptured,
    ReturnQuantityExceeded,
    ShippingAlreadyRefunded,
)
from aoms.domain.money import Money, minor_units
from aoms.domain.orders import Address, Order, OrderLine
from aoms.domain.refunds import (
    Fee,
    FeeRule,
    Payment,
    Refunded,
    after,
    exchange_difference,
    order_money,
    quote_refund,
    split_refund,
    store_credit_bonus,
)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def m(amount: str, currency: str = "EUR") -> Money:
    return Money.of(amount, currency)


def make_order(
    lines: list[tuple[str, int, str, str, str]],
    *,
    currency: str = "EUR",
    shipping: str = "0",
    shipping_tax: str = "0",
    order_discount: str = "0",
    taxes_included: bool = False,
) -> Order:
    """lines: (sku, quantity, unit price, line discount, line tax)."""
    line_tax = sum((Decimal(t) for *_, t in lines), Decimal(0))
    return Order(
        shop="s.example",
        channel="api",
        external_id="1",
        name="#1",
        currency=currency,
        placed_at=T0,
        source_updated_at=T0,
        lines=tuple(
            OrderLine(i + 1, sku, q, m(p, currency), m(d, currency), m(t, currency))
            for i, (sku, q, p, d, t) in enumerate(lines)
        ),
        shipping_address=Address(country_code="NL"),
        shipping=m(shipping, currency),
        shipping_tax=m(shipping_tax, currency),
        order_discount=m(order_discount, currency),
        total_tax=Money(line_tax + Decimal(shipping_tax), currency),  # as Shopify states it
        taxes_included=taxes_included,
    )


# -- the cases, by hand ---------------------------------------------------------------


def test_a_full_return_with_shipping_refunds_the_whole_18_15_to_the_card() -> None:
    # 10.00 + 21% tax (2.10) + shipping 5.00 + 21% tax (1.05) = 18.15
    order = make_order([("TEE", 1, "10.00", "0", "2.10")], shipping="5.00", shipping_tax="1.05")
    money = order_money(order)
    assert money.total == m("18.15")
    quote = quote_refund(money, Refunded(), {1: 1}, refund_shipping=True)
    assert quote.items == m("12.10")
    assert quote.shipping + quote.shipping_tax == m("6.05")
    assert quote.total == m("18.15")
    card = Payment(1, "card", m("18.15"), m("0"))
    assert [(p.payment_id, p.amount) for p in split_refund(quote.total, [card])] == [
        (1, m("18.15"))
    ]


def test_without_shipping_the_same_return_refunds_12_10() -> None:
    order = make_order([("TEE", 1, "10.00", "0", "2.10")], shipping="5.00", shipping_tax="1.05")
    assert quote_refund(order_money(order), Refunded(), {1: 1}).total == m("12.10")


def test_a_three_unit_line_sharing_an_order_discount_refunds_exactly_its_cost_in_three_steps() -> (
    None
):
    # Line 1: 3 × 3.33 = 9.99; line 2: 1 × 5.00. Order discount 1.00 split 999:500:
    # 66.644 and 33.356 cents -> floors 66 + 33, the cent left goes to line 1 -> 0.67 / 0.33.
    # Line 1 after discount 9.32, tax as charged 0.93 -> it cost 10.25.
    order = make_order(
        [("A", 3, "3.33", "0", "0.93"), ("B", 1, "5.00", "0", "0.47")], order_discount="1.00"
    )
    money = order_money(order)
    assert [ln.discount_share for ln in money.lines] == [m("0.67"), m("0.33")]
    assert money.line(1).total == m("10.25")
    # Unit 1 of 3: goods 932 cents by 1:2 = 310.67 -> 311; tax 93 by 1:2 = 31 -> 3.42.
    # Unit 2 of 2: goods 621 by 1:1 = 310.5, tie to the first part -> 311; tax 62 -> 31: 3.42.
    # Unit 3 takes what remains: goods 3.10 + tax 0.31 = 3.41.
    refunded = Refunded()
    totals = []
    for _ in range(3):
        quote = quote_refund(money, refunded, {1: 1})
        totals.append(quote.total)
        refunded = after(refunded, quote)
    assert totals == [m("3.42"), m("3.42"), m("3.41")]
    assert totals[0] + totals[1] + totals[2] == m("10.25")
    with pytest.raises(ReturnQuantityExceeded):
        quote_refund(money, refunded, {1: 1})


def test_yen_have_no_minor_unit_and_split_the_same_way() -> None:
    # ¥100 over ¥999 and ¥500: 66.64 and 33.36 yen -> 66 + 33, the yen left to line 1.
    order = make_order(
        [("A", 3, "333", "0", "0"), ("B", 1, "500", "0", "0")], currency="JPY", order_discount="100"
    )
    money = order_money(order)
    assert [ln.discount_share for ln in money.lines] == [
        Money.of("67", "JPY"),
        Money.of("33", "JPY"),
    ]
    # 999 − 67 = 932 over 3 units: 311, 311, 310.
    refunded = Refunded()
    totals = []
    for _ in range(3):
        quote = quote_refund(money, refunded, {1: 1})
        totals.append(quote.total.amount)
        refunded = after(refunded, quote)
    assert totals == [Decimal(311), Decimal(311), Decimal(310)]


def test_two_cables_refund_2_00_once_and_cameras_at_most_one() -> None:
    order = make_order([("CAMERA", 1, "300.00", "0", "0"), ("CABLE", 2, "1.00", "0", "0")])
    money = order_money(order)
    quote = quote_refund(money, Refunded(), {2: 2})
    assert quote.total == m("2.00")
    with pytest.raises(ReturnQuantityExceeded):
        quote_refund(money, after(Refunded(), quote), {2: 2})
    with pytest.raises(ReturnQuantityExceeded) as exc:
        quote_refund(money, Refunded(), {1: 2})
    assert exc.value.details["left"] == 1


def test_an_exchange_for_a_dearer_item_charges_only_the_difference() -> None:
    # Returned: a 40.00 + 8.40 tax shirt; replacement 55.00 + 11.55 tax = 66.55.
    order = make_order([("SHIRT-M", 1, "40.00", "0", "8.40")])
    returned = quote_refund(order_money(order), Refunded(), {1: 1}).items
    assert exchange_difference(returned, m("66.55")) == m("18.15")
    # Cheaper replacement 30.00 + 6.30 = 36.30: 48.40 − 36.30 = 12.10 comes back.
    assert exchange_difference(returned, m("36.30")) == m("-12.10")


def test_tax_inclusive_prices_split_the_tax_out_and_never_add_it_twice() -> None:
    # 121.00 including 21.00 tax; shipping 6.05 including 1.05 tax.
    order = make_order(
        [("X", 1, "121.00", "0", "21.00")],
        shipping="6.05",
        shipping_tax="1.05",
        taxes_included=True,
    )
    money = order_money(order)
    assert (money.line(1).goods, money.line(1).tax) == (m("100.00"), m("21.00"))
    assert (money.shipping, money.shipping_tax) == (m("5.00"), m("1.05"))
    assert quote_refund(money, Refunded(), {1: 1}, refund_shipping=True).total == m("127.05")


def test_shipping_is_refunded_once() -> None:
    order = make_order([("X", 2, "10.00", "0", "0")], shipping="4.00")
    money = order_money(order)
    first = quote_refund(money, Refunded(), {1: 1}, refund_shipping=True)
    with pytest.raises(ShippingAlreadyRefunded):
        quote_refund(money, after(Refunded(), first), {1: 1}, refund_shipping=True)


def test_fees_are_visible_lines_and_never_take_the_refund_below_zero() -> None:
    order = make_order([("X", 2, "10.00", "0", "2.00")])
    money = order_money(order)
    # 2 × 10.00 + 2.00 tax = 22.00; 10% restocking = 2.20; return shipping 5.00 -> 14.80
    rules = [
        FeeRule("restocking", percent=Decimal(10)),
        FeeRule("return_shipping", fixed=Decimal(5)),
    ]
    items = quote_refund(money, Refunded(), {1: 2}).items
    fees = [Fee(r.kind, r.amount(items, 2)) for r in rules]
    quote = quote_refund(money, Refunded(), {1: 2}, fees=fees)
    assert [(f.kind, f.amount) for f in quote.fees] == [
        ("restocking", m("2.20")),
        ("return_shipping", m("5.00")),
    ]
    assert quote.total == m("14.80")
    # One unit (11.00) with a 20.00 fee: the fee is capped at 11.00, the refund is 0.00.
    capped = quote_refund(money, Refunded(), {1: 1}, fees=[Fee("return_shipping", m("20.00"))])
    assert (capped.fees[0].amount, capped.total) == (m("11.00"), m("0.00"))


def test_a_gift_card_and_a_card_are_refunded_in_the_stated_order_and_never_beyond_capture() -> None:
    gift = Payment(1, "gift_card", m("30.00"), m("0"))
    card = Payment(2, "card", m("70.00"), m("0"))
    parts = split_refund(m("80.00"), [gift, card], ["card", "gift_card"])
    assert [(p.method, p.amount) for p in parts] == [
        ("card", m("70.00")),
        ("gift_card", m("10.00")),
    ]
    parts = split_refund(m("80.00"), [gift, card], ["gift_card"])
    assert [(p.method, p.amount) for p in parts] == [
        ("gift_card", m("30.00")),
        ("card", m("50.00")),
    ]
    with pytest.raises(RefundExceedsCaptured):
        split_refund(m("100.01"), [gift, card])
    partly = Payment(2, "card", m("70.00"), m("69.00"))
    with pytest.raises(RefundExceedsCaptured):
        split_refund(m("31.01"), [gift, partly])


def test_store_credit_bonus_rounds_half_to_even_in_the_minor_unit() -> None:
    assert store_credit_bonus(m("12.10"), Decimal(10)) == m("1.21")
    assert store_credit_bonus(m("0.25"), Decimal(10)) == m("0.02")  # 0.025 -> 0.02
    assert store_credit_bonus(Money.of("1005", "JPY"), Decimal(10)) == Money.of("100", "JPY")


def test_discounts_and_included_tax_above_the_price_are_refused() -> None:
    with pytest.raises(InvalidInput):
        order_money(make_order([("X", 1, "10.00", "8.00", "3.00")], taxes_included=True))


# -- properties -------------------------------------------------------------------------------

CURRENCIES = ["EUR", "USD", "JPY", "KWD"]


@st.composite
def orders(draw: st.DrawFn) -> Order:
    cur = draw(st.sampled_from(CURRENCIES))
    unit = Decimal(1).scaleb(-minor_units(cur))
    inclusive = draw(st.booleans())

    def amount(units: int) -> str:
        return str(Decimal(units) * unit)

    lines = []
    gross_total = 0
    for i in range(draw(st.integers(1, 4))):
        qty = draw(st.integers(1, 6))
        price = draw(st.integers(0, 50_000))
        gross = price * qty
        discount = draw(st.integers(0, gross // 3))
        rate = draw(st.sampled_from([0, 5, 10, 19, 21, 25]))
        net = gross - discount
        # tax as the channel charged it: on the net, included or added
        tax = round(net * rate / (100 + rate)) if inclusive else round(net * rate / 100)
        lines.append((f"SKU{i}", qty, amount(price), amount(discount), amount(tax)))
        gross_total += gross
    order_discount = draw(st.integers(0, gross_total // 4))
    shipping = draw(st.integers(0, 3_000))
    shipping_tax = shipping * 21 // (121 if inclusive else 100)
    order = make_order(
        lines,
        currency=cur,
        shipping=amount(shipping),
        shipping_tax=amount(shipping_tax),
        order_discount=amount(order_discount),
        taxes_included=inclusive,
    )
    try:
        order_money(order)
    except InvalidInput:
        assume(False)  # a line whose order-discount share exceeds what its included tax left
    return order


def payments_for(data: st.DataObject, captured: Money) -> list[Payment]:
    methods = data.draw(st.lists(st.sampled_from(["card", "gift_card", "paypal"]), min_size=1,
                            max_size=3))  # fmt: skip
    weights = data.draw(st.lists(st.integers(1, 100), min_size=len(methods), max_size=len(methods)))
    parts = captured.allocate(weights) if captured.amount else [captured for _ in methods]
    zero = Money.zero(captured.currency)
    return [
        Payment(i + 1, meth, part, zero)
        for i, (meth, part) in enumerate(zip(methods, parts, strict=True))
    ]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.large_base_example])
@given(order=orders(), data=st.data())
def test_a_full_return_in_any_steps_refunds_exactly_what_was_captured_less_fees(
    order: Order, data: st.DataObject
) -> None:
    money = order_money(order)
    cur = order.currency
    # Allocations sum to the whole: every line's discount share adds up to the order discount.
    assert order.order_discount is not None
    shares = sum(ln.discount_share.in_minor() for ln in money.lines)
    assert shares == order.order_discount.in_minor()
    # Independent check of what was captured: the channel's own total.
    captured = order.amount_check().computed_total
    assert money.total == captured
    payments = payments_for(data, captured)
    order_of_methods = data.draw(st.permutations(["card", "gift_card", "paypal"]))
    refunded = Refunded()
    per_payment = {p.id: Money.zero(cur) for p in payments}
    refunds_total = Money.zero(cur)
    fees_total = Money.zero(cur)
    left = {ln.line_no: ln.quantity for ln in money.lines}
    shipping_step = data.draw(st.integers(0, 5))
    shipping_done = False
    for step in range(8):  # up to seven steps of any units, then whatever is left
        last = step == 7
        units = {
            n: q if last else data.draw(st.integers(0, q), label=f"units of line {n}")
            for n, q in left.items()
            if q
        }
        units = {n: k for n, k in units.items() if k}
        ship = not shipping_done and (last or step >= shipping_step)
        if not units and not ship:
            continue
        shipping_done = shipping_done or ship
        fee_units = data.draw(st.integers(0, 300))
        fees = [Fee("restocking", Money.from_minor(fee_units, cur))]
        quote = quote_refund(money, refunded, units, refund_shipping=ship, fees=fees)
        current = [Payment(p.id, p.method, p.captured, per_payment[p.id]) for p in payments]
        parts = split_refund(quote.total, current, order_of_methods)
        assert sum(p.amount.in_minor() for p in parts) == quote.total.in_minor()
        for part in parts:
            per_payment[part.payment_id] = per_payment[part.payment_id] + part.amount
        refunds_total = refunds_total + quote.total
        fees_total = fees_total + quote.fees_total
        assert quote.total.amount >= 0
        assert refunds_total <= captured  # never more than captured, at any step
        refunded = after(refunded, quote)
        for n, k in units.items():
            left[n] -= k
    assert not any(left.values()) and shipping_done
    assert refunds_total + fees_total == captured
    for p in payments:
        assert per_payment[p.id] <= p.captured
    for ln in money.lines:
        done = refunded.line(ln.line_no, cur)
        assert (done.units, done.goods, done.tax) == (ln.quantity, ln.goods, ln.tax)


@settings(max_examples=60, deadline=None)
@given(order=orders(), data=st.data())
def test_a_partial_refund_takes_its_units_share_of_what_is_left_within_one_minor_unit(
    order: Order, data: st.DataObject
) -> None:
    money = order_money(order)
    ln = data.draw(st.sampled_from(money.lines))
    k = data.draw(st.integers(1, ln.quantity))
    quote = quote_refund(money, Refunded(), {ln.line_no: k})
    exact = Decimal(ln.goods.in_minor()) * k / ln.quantity
    assert abs(quote.lines[0].goods.in_minor() - exact) < 1
