from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoms.domain.errors import CurrencyMismatch, InvalidMoney
from aoms.domain.money import Money


def test_allocates_by_largest_remainder_so_parts_sum_to_the_whole() -> None:
    # 10.00 in three equal parts: 333.33… cents each; the one cent left goes to the first part.
    parts = Money.of("10.00", "USD").allocate([1, 1, 1])
    assert [p.amount for p in parts] == [Decimal("3.34"), Decimal("3.33"), Decimal("3.33")]


def test_allocation_follows_the_weights() -> None:
    # 100.00 by 1:2:7 is exact: 10, 20, 70.
    parts = Money.of("100.00", "EUR").allocate([1, 2, 7])
    assert [str(p.amount) for p in parts] == ["10.00", "20.00", "70.00"]


def test_the_leftover_unit_goes_to_the_largest_remainder() -> None:
    # 0.05 by 3:7 = 1.5 and 3.5 cents: both remainders 0.5, the earlier part wins the tie.
    assert [str(p.amount) for p in Money.of("0.05", "USD").allocate([3, 7])] == ["0.02", "0.03"]
    # 1.00 by 1:1:1:3 = 16.67, 16.67, 16.67, 50 cents -> remainders .67 .67 .67 0
    parts = Money.of("1.00", "USD").allocate([1, 1, 1, 3])
    assert [str(p.amount) for p in parts] == ["0.17", "0.17", "0.16", "0.50"]


def test_currencies_keep_their_minor_units() -> None:
    assert Money.of("1000", "JPY").allocate([1, 2]) == [
        Money.of("333", "JPY"),
        Money.of("667", "JPY"),
    ]
    assert str(Money.of("1.234", "KWD").amount) == "1.234"
    with pytest.raises(InvalidMoney):
        Money.of("1.5", "JPY")


def test_refuses_floats_bad_codes_and_mixed_currencies() -> None:
    with pytest.raises(InvalidMoney):
        Money.of(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidMoney):
        Money.of("1.00", "US")
    with pytest.raises(InvalidMoney):
        Money.of("abc", "USD")
    with pytest.raises(CurrencyMismatch):
        _ = Money.of("1.00", "USD") + Money.of("1.00", "EUR")


@given(
    cents=st.integers(min_value=-(10**9), max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(
        lambda w: sum(w) > 0
    ),
)
def test_any_allocation_sums_exactly_and_each_part_is_within_a_cent(
    cents: int, weights: list[int]
) -> None:
    whole = Money(Decimal(cents) / 100, "USD")
    parts = whole.allocate(weights)
    assert sum((p.amount for p in parts), Decimal(0)) == whole.amount
    for part, w in zip(parts, weights, strict=True):
        exact = whole.amount * w / sum(weights)
        assert abs(part.amount - exact) < Decimal("0.01")
