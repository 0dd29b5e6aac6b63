"""The wave timer's boundaries, laid from each UTC midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aoms.services.waves import due_waves, wave_close


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 12, 4, hh, mm, ss, tzinfo=UTC)


def test_a_wave_closes_on_the_last_multiple_of_its_length_since_midnight() -> None:
    assert wave_close(at(10, 44, 59), 15) == at(10, 30)
    assert wave_close(at(10, 45), 15) == at(10, 45)
    assert wave_close(at(0, 6), 7) == at(0, 0)
    assert wave_close(at(23, 59), 1440) == at(0, 0)
    # 90-minute waves: 00:00, 01:30, … 22:30; at 23:59 the last boundary is 22:30.
    assert wave_close(at(23, 59), 90) == at(22, 30)


def test_each_shop_is_due_once_per_closed_wave_and_starts_at_the_current_boundary() -> None:
    closed: dict[str, datetime] = {}
    schedules = {"a": 15, "b": 60}
    assert due_waves(schedules, closed, at(10, 20)) == []
    assert closed == {"a": at(10, 15), "b": at(10, 0)}
    assert due_waves(schedules, closed, at(10, 31)) == [("a", at(10, 15))]
    assert due_waves(schedules, closed, at(10, 32)) == []
    # b's hour closes at 11:00; a missed its 10:45 boundary (11:00 is its latest): one re-plan
    # of everything since the last one, 10:30.
    assert due_waves(schedules, closed, at(11, 2)) == [("a", at(10, 30)), ("b", at(10, 0))]
    assert due_waves({"b": 60}, closed, at(11, 3)) == []
    assert "a" not in closed  # a's timer is off; turned on again, it starts afresh
    assert due_waves({"a": 15, "b": 60}, closed, at(11, 20)) == []
    assert closed["a"] == at(11, 15)
    assert due_waves({"a": 15}, closed, at(11, 30) + timedelta(seconds=1)) == [("a", at(11, 15))]
