"""Delivery promises: weighted quantiles, shrinkage toward the parent region, and the
out-of-time evaluation, on hand-worked histories."""

from datetime import date, timedelta

import pytest

from aoms.domain.errors import InvalidInput
from aoms.domain.promise import PromiseModel, Transit, quantile
from aoms.services.promises import Delivered, evaluate


def test_weighted_quantile_is_the_least_value_reaching_the_share() -> None:
    four = [(1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (10.0, 1.0)]
    assert quantile(four, 0.5) == 2.0  # cumulative 2 of 4 reached at 2
    assert quantile(four, 0.75) == 3.0
    assert quantile(four, 0.9) == 10.0
    assert quantile([(1.0, 3.0), (10.0, 1.0)], 0.75) == 1.0  # weight 3 of 4 at 1
    with pytest.raises(InvalidInput):
        quantile([], 0.5)


def test_a_thin_lane_is_shrunk_toward_its_destination() -> None:
    # Lane A→X: 4 deliveries of 2 days; lane B→X: 16 of 10 days. Median of X's 20 = 10.
    # A→X: (4 × 2 + k 4 × 10) / (4 + 4) = 6. B→X: (16 × 10 + 4 × 10) / 20 = 10.
    history = [Transit("A", "X", 2)] * 4 + [Transit("B", "X", 10)] * 16
    model = PromiseModel.fit(history, confidence=0.5, prior_weight=4)
    assert model.days("A", "X") == 6
    assert model.days("B", "X") == 10
    assert model.days("C", "X") == 10  # unknown lane: the destination's estimate
    assert model.days("A", "Y") == 10  # unknown destination: everything's
    assert model.promise(date(2026, 1, 30), "A", "X") == date(2026, 2, 5)
    assert model.best_of(date(2026, 1, 30), ["B", "A"], "X") == date(2026, 2, 5)


def test_with_no_prior_a_lane_promises_its_own_quantile_rounded_up() -> None:
    history = [Transit("A", "X", d) for d in (3, 4, 4, 5, 9)]
    model = PromiseModel.fit(history, confidence=0.8, prior_weight=0)
    assert model.days("A", "X") == 5  # cumulative 4 of 5 (0.8) reached at 5


def test_older_deliveries_weigh_less() -> None:
    # Two old slow deliveries (weight 0.25 each) and two recent fast ones (weight 1):
    # total 2.5, median needs 1.25: the fast ones (2 days) reach it.
    history = [Transit("A", "X", 9, weight=0.25)] * 2 + [Transit("A", "X", 2)] * 2
    assert PromiseModel.fit(history, confidence=0.5, prior_weight=0).days("A", "X") == 2


def test_evaluation_fits_on_the_earlier_months_and_tests_on_the_last() -> None:
    # Jan-Feb: lane A→X always takes 4 days. Mar: it takes 3 or 5 days; the history promised
    # 10 days each time. At 90% the learned promise is 4 days: on time for the 3s, late for
    # the 5s.
    def order(day: date, took: int) -> Delivered:
        return Delivered(day, day + timedelta(days=took), day + timedelta(days=10), "A", "X")

    train = [order(date(2026, 1, 1) + timedelta(days=i), 4) for i in range(50)]
    test = [order(date(2026, 3, 1) + timedelta(days=i), 3 if i % 4 else 5) for i in range(20)]
    report = evaluate(train + test, test_months=1, confidence=0.9, half_life_days=None)
    assert report["mean_promised_days"] == 4.0
    assert report["mean_history_promised_days"] == 10.0
    assert report["ratio_to_history"] == 0.4
    assert report["on_time"] == 0.75  # 15 of 20 took 3 days
    assert report["history_on_time"] == 1.0
    assert report["test"] == {"orders": 20, "from": "2026-03-01", "to": "2026-03-20"}
