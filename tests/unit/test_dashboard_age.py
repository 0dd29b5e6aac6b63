"""How long a hold has waited, as the review queue shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aoms.entrypoints.web.pages import age

T = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_an_age_is_shown_in_its_largest_whole_unit() -> None:
    cases = [
        (timedelta(seconds=59), "0 min"),
        (timedelta(minutes=59, seconds=59), "59 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(hours=47, minutes=59), "47 h"),
        (timedelta(hours=48), "2 d"),
        (timedelta(days=9, hours=23), "9 d"),
        (timedelta(minutes=-5), "0 min"),  # a clock a little behind is not a negative age
    ]
    assert [age(T, T + d) for d, _ in cases] == [want for _, want in cases]
