"""The rate card routing prices an order with, over several carrier services (by hand)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from aoms.domain.errors import InvalidInput
from aoms.domain.routing import RateCard
from aoms.domain.service_levels import ServiceRates, days_left, effective_card


def d(*row: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(p) for p in row)


# Bands: ≤100 km, ≤1000 km; ≤1 kg, ≤5 kg. Ground 2 / 5 days, express 1 / 2 days.
CARD = RateCard(
    "USD", (100, 1000), (1000, 5000), (d("5", "8"), d("9", "14")),
    service="ground", transit_days=(2, 5),
    services=(ServiceRates("express", (1, 2), (d("12", "18"), d("20", "30"))),),
)  # fmt: skip


def test_within_3_days_ground_where_it_is_that_fast_and_express_beyond() -> None:
    card, pick = effective_card(CARD, 3)
    assert card.prices == (d("5", "8"), d("20", "30"))
    assert pick is not None
    assert pick.at(card, 50, 500) == ("ground", 2)
    assert pick.at(card, 800, 4000) == ("express", 2)


def test_with_no_limit_the_cheapest_everywhere_and_within_a_day_the_fastest_beyond_reach() -> None:
    free, _ = effective_card(CARD, None)
    assert free.prices == (d("5", "8"), d("9", "14"))  # ground is cheaper in every band
    fast, pick = effective_card(CARD, 1)
    # ≤100 km only express takes a day; beyond, none does: the fastest (express, 2 days).
    assert fast.prices == (d("12", "18"), d("20", "30"))
    assert pick is not None and pick.at(fast, 800, 500) == ("express", 2)


def test_a_card_without_services_is_used_as_it_is_and_services_must_fit_the_bands() -> None:
    plain = RateCard("USD", (100,), (1000,), (d("4"),))
    assert effective_card(plain, 1) == (plain, None)
    with pytest.raises(InvalidInput, match="one value per distance band"):
        RateCard("USD", (100, 1000), (1000,), (d("4"), d("8")), transit_days=(1,))
    round_trip = RateCard.from_dict(CARD.as_dict())
    assert round_trip == CARD


def test_the_days_left_count_utc_days_from_the_day_the_order_was_placed() -> None:
    late_evening = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert days_left(3, late_evening, datetime(2026, 12, 1, 23, 59, tzinfo=UTC)) == 3
    assert days_left(3, late_evening, datetime(2026, 12, 2, 0, 10, tzinfo=UTC)) == 2
    assert days_left(3, late_evening, datetime(2026, 12, 9, tzinfo=UTC)) == 0  # never below 0
    assert days_left(None, late_evening, datetime(2026, 12, 9, tzinfo=UTC)) is None
    # 20:00 in New York on the 1st is 01:00 UTC on the 2nd: still the 2nd at 10:00 UTC
    new_york = datetime(2026, 12, 1, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert days_left(3, new_york, datetime(2026, 12, 2, 10, 0, tzinfo=UTC)) == 3
    # a clock behind the order's own time gives back no days
    assert days_left(3, late_evening, datetime(2026, 11, 30, tzinfo=UTC)) == 3
