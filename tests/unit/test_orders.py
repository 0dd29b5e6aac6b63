from decimal import Decimal

from aoms.domain.money import Money
from aoms.domain.orders import OrderLine, allocate_to_lines
from tests.builders import order


def test_demand_sums_one_sku_over_lines() -> None:
    assert order(("X", 1), ("Y", 2), ("X", 3)).demand() == {"X": 4, "Y": 2}


def test_the_first_line_of_a_sku_is_served_first() -> None:
    o = order(("X", 1), ("X", 1))
    allocations, short = allocate_to_lines(o.lines, {"a": {"X": 1}})
    assert [(a.line_no, a.location_id, a.quantity) for a in allocations] == [(1, "a", 1)]
    assert short == {2: 1}


def test_a_line_can_draw_on_two_locations() -> None:
    o = order(("X", 3))
    allocations, short = allocate_to_lines(o.lines, {"a": {"X": 1}, "b": {"X": 2}})
    assert [(a.location_id, a.quantity) for a in allocations] == [("a", 1), ("b", 2)]
    assert short == {}


def test_amount_check_adds_line_prices_minus_discounts_plus_tax_and_shipping() -> None:
    o = order(("X", 2))  # 2 × 10.00, no tax, no shipping
    check = o.amount_check()
    assert check.computed_total.amount == Decimal("20.00")
    assert check.adds_up  # no stated total to contradict
    line = OrderLine(
        1, "X", 1, Money.of("10.00", "USD"), Money.of("1.00", "USD"), Money.of("0.90", "USD")
    )
    assert line.gross.amount == Decimal("10.00")
