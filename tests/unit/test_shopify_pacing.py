"""The client's model of Shopify's cost bucket, against a simulated leaky bucket."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoms.adapters.shopify.pacing import CostBucket, ThrottleStatus
from aoms.domain.availability import ats_by_location


def status(available: float, *, maximum: float = 1000.0, rate: float = 50.0) -> ThrottleStatus:
    return ThrottleStatus(maximum, available, rate)


def test_before_any_answer_the_client_does_not_wait() -> None:
    assert CostBucket().wait_for(500, now=0.0) == 0.0


def test_it_waits_for_exactly_the_points_that_are_missing() -> None:
    bucket = CostBucket()
    bucket.observe(status(100.0), now=10.0)
    assert bucket.wait_for(300, now=10.0) == pytest.approx(4.0)  # 200 missing at 50/s
    assert bucket.wait_for(300, now=12.0) == pytest.approx(2.0)  # 100 restored meanwhile
    assert bucket.wait_for(300, now=14.0) == 0.0
    assert bucket.estimate(now=100.0) == 1000.0  # never more than the bucket holds


def test_a_query_sent_counts_until_shopify_reports_again() -> None:
    bucket = CostBucket()
    bucket.observe(status(1000.0), now=0.0)
    bucket.spend(900)
    assert bucket.wait_for(200, now=0.0) == pytest.approx(2.0)  # 100 left, 100 missing
    bucket.observe(status(950.0), now=0.5)  # the answer: 900 requested, most refunded
    assert bucket.wait_for(200, now=0.5) == 0.0


def test_the_report_of_an_earlier_call_does_not_undo_a_later_one() -> None:
    bucket = CostBucket()
    first, second = bucket.spend(100), bucket.spend(100)
    bucket.observe(status(800.0), now=0.0, call=second)  # counts both calls
    bucket.observe(status(900.0), now=0.0, call=first)  # older: misses the second call
    assert bucket.estimate(now=0.0) == 800.0


def test_a_call_answered_before_an_earlier_one_still_counts_until_a_later_report() -> None:
    bucket = CostBucket()
    bucket.observe(status(1000.0), now=0.0)
    first, second = bucket.spend(300), bucket.spend(300)
    bucket.observe(status(700.0), now=0.0, call=first)  # Shopify counted the first only
    assert bucket.estimate(now=0.0) == 400.0  # the second is still to come off
    bucket.drop(second)  # … unless it failed before Shopify counted it
    assert bucket.estimate(now=0.0) == 700.0


def test_after_a_throttle_it_waits_until_the_request_fits() -> None:
    assert CostBucket.retry_after_throttle(502, status(2.0, rate=100.0)) == pytest.approx(5.0)
    assert CostBucket.retry_after_throttle(10, status(80.0)) == 0.0


def test_the_throttle_status_is_read_from_the_cost_extension() -> None:
    cost = {
        "requestedQueryCost": 252,
        "actualQueryCost": 12,
        "throttleStatus": {
            "maximumAvailable": 1000.0,
            "currentlyAvailable": 988.0,
            "restoreRate": 50.0,
        },
    }
    assert ThrottleStatus.from_extensions(cost) == ThrottleStatus(1000.0, 988.0, 50.0)
    assert ThrottleStatus.from_extensions({"requestedQueryCost": 1}) is None
    assert ThrottleStatus.from_extensions(None) is None


@settings(max_examples=200, deadline=None)
@given(
    costs=st.lists(st.integers(1, 400), min_size=1, max_size=60),
    bucket_size=st.sampled_from([400.0, 1000.0, 2000.0]),
    rate=st.sampled_from([50.0, 100.0, 1000.0]),
    latency=st.floats(0.0, 0.05),
)
def test_a_paced_client_is_never_throttled_and_wastes_no_time(
    costs: list[int], bucket_size: float, rate: float, latency: float
) -> None:
    """A simulated Shopify bucket (starting full) and a client that sleeps as told: no
    request ever finds the bucket short, and the whole run takes no longer than the points
    it needed beyond the first bucketful, restored at the rate, plus the network latency."""
    now = 0.0
    server_available, server_at = bucket_size, 0.0
    client = CostBucket()
    for cost in costs:
        now += client.wait_for(cost, now)
        client.spend(cost)
        now += latency / 2  # the request travels
        server_available = min(bucket_size, server_available + (now - server_at) * rate)
        server_at = now
        assert server_available >= cost - 1e-6  # never throttled
        server_available -= cost
        reported = status(float(int(server_available)), maximum=bucket_size, rate=rate)
        now += latency / 2  # the answer travels
        client.observe(reported, now)
    shortfall = max(0.0, sum(costs) - bucket_size)
    assert now <= shortfall / rate + len(costs) * (latency + 1.0 / rate) + 1e-6


@given(
    available=st.dictionaries(st.sampled_from("abcdef"), st.integers(-5, 500), max_size=6),
    buffer=st.integers(0, 2000),
)
def test_a_store_shows_its_ats_spread_over_its_locations(
    available: dict[str, int], buffer: int
) -> None:
    shown = ats_by_location(available, buffer)
    total = sum(max(0, v) for v in available.values())
    assert sum(shown.values()) == max(0, total - buffer)
    assert set(shown) == set(available)
    assert all(0 <= shown[k] <= max(0, available[k]) for k in available)


def test_the_buffer_comes_off_the_fullest_location_first() -> None:
    assert ats_by_location({"a": 10, "b": 3, "c": 0}, 5) == {"a": 5, "b": 3, "c": 0}
    assert ats_by_location({"a": 4, "b": 4}, 6) == {"a": 0, "b": 2}  # a tie goes by id
    assert ats_by_location({"a": 2}, 0) == {"a": 2}
    with pytest.raises(ValueError):
        ats_by_location({"a": 2}, -1)
