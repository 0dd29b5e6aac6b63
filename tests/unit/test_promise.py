"""Delivery promises: weighted quantiles, shrinkage toward the parent region, and the
out-of-time evaluation, on hand-worked histories."""

from datetime import date, timedelta

import pytest

from aoms.domain.errors import InvalidInput
from aoms.domain.promise import (
    Estimate,
    PromiseModel,
    Transit,
    promise_after_routing,
    promise_before_routing,
    quantile,
    region,
)
from aoms.services.promises import Delivered, evaluate, tune


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


def test_a_lane_with_a_service_shrinks_toward_its_route_over_every_service() -> None:
    # A→X: 2 "express" deliveries of 1 day, 2 "ground" of 5 days. Route A→X over both
    # services at the median: values 1,1,5,5 → 1 (cumulative 2 of 4 reaches 0.5). Destination X
    # has the same four → 1; overall 1. Route: (4·1 + 2·1)/(4 + 2) = 1. Express lane:
    # (2·1 + 2·1)/4 = 1. Ground lane: own median 5 → (2·5 + 2·1)/(2 + 2) = 3.
    history = [Transit("A", "X", 1, "express")] * 2 + [Transit("A", "X", 5, "ground")] * 2
    model = PromiseModel.fit(history, confidence=0.5, prior_weight=2)
    assert model.estimate("A", "X", "ground") == Estimate(3, "lane", 2)
    assert model.estimate("A", "X", "express") == Estimate(1, "lane", 2)
    assert model.estimate("A", "X", "freight") == Estimate(1, "route", 4)  # unseen service
    assert model.estimate("B", "X") == Estimate(1, "destination", 4)
    assert model.estimate("B", "Y") == Estimate(1, "overall", 4)  # all four deliveries


def test_before_routing_the_fastest_candidate_sets_the_promise_and_after_the_slowest() -> None:
    # Lane A→X takes 2 days, B→X 6 (no prior, so each lane is its own median).
    history = [Transit("BR-A", "BR-X", 2)] * 3 + [Transit("BR-B", "BR-X", 6)] * 3
    model = PromiseModel.fit(history, confidence=0.5, prior_weight=0)
    day = date(2026, 12, 1)
    before = promise_before_routing(model, day, [("b", "BR-B"), ("a", "BR-A")], "BR-X")
    assert before.arrives_by == date(2026, 12, 3)
    assert [s.location_id for s in before.shipments] == ["a"]
    assert before.statement == "arrives by 2026-12-03 with 50% confidence"
    after = promise_after_routing(model, day, [("a", "BR-A"), ("b", "BR-B")], "BR-X")
    assert after.arrives_by == date(2026, 12, 7)  # the B shipment lands last
    assert [s.arrives_by.day for s in after.shipments] == [3, 7]
    with pytest.raises(InvalidInput):
        promise_before_routing(model, day, [], "BR-X")


def test_a_region_is_the_country_then_the_province() -> None:
    assert region("br", " sp ") == "BR-SP"
    assert region("US", None) == "US"
    with pytest.raises(InvalidInput):
        region(None, "SP")


def _made_up_history() -> list[Delivered]:
    """Jan–Apr 2026, lane A→X. Jan–Feb: days 2,4,6,8,10 in turn. Mar–Apr: the same pattern.
    The history promised 9 days, so it was on time 4 times in 5 (80%) on every month."""
    out = []
    for month in (1, 2, 3, 4):
        for i in range(20):
            day = date(2026, month, 1 + i)
            took = 2 + 2 * (i % 5)
            out.append(
                Delivered(day, day + timedelta(days=took), day + timedelta(days=9), "A", "X")
            )
    return out


def test_tuning_picks_the_least_confidence_that_reaches_the_target_on_validation() -> None:
    # Validation = the last month (April) of Jan–Apr; fit on Jan–Mar, identical pattern.
    # Each fit sees days 2,4,6,8,10 in equal shares; the q-quantile is the least value whose
    # cumulative share reaches q: q ≤ 0.8 → 8 days, which is on time 4 in 5 = 80%, the
    # history's own rate there. So the least confidence tried, 0.8, is chosen (the smallest
    # mean too).
    choice = tune(_made_up_history()[:80], validation_months=1)
    assert choice.target_on_time == 0.8
    assert choice.params.confidence == 0.8
    assert choice.validation.mean_promised_days == 8.0
    assert choice.validation.on_time == 0.8
    assert choice.validation_from == date(2026, 4, 1)
    # Asking for 100% needs the 10-day quantile: with equal weights, any confidence above 0.8.
    # (With a half-life the later, 10-day orders of each week weigh more, so 0.8 may do.)
    strict = tune(_made_up_history(), validation_months=1, target_on_time=1.0, half_lives=(None,))
    assert strict.params.confidence == 0.81 and strict.validation.mean_promised_days == 10.0


def test_the_tuned_evaluation_never_looks_at_the_test_months() -> None:
    history = _made_up_history()
    # Make the test month (April) much faster: if tuning saw it, it would choose differently.
    fast_april = [
        Delivered(d.ordered_on, d.ordered_on + timedelta(days=1), d.promised_on, "A", "X")
        if d.ordered_on.month == 4
        else d
        for d in history
    ]
    a = evaluate(history, test_months=1, tune_on_validation=True, validation_months=1)
    b = evaluate(fast_april, test_months=1, tune_on_validation=True, validation_months=1)
    assert a["confidence"] == b["confidence"] == 0.8
    assert a["chosen_on_validation"] == b["chosen_on_validation"]
    assert a["mean_promised_days"] == b["mean_promised_days"] == 8.0  # same model, same promise
    assert a["on_time"] == 0.8 and b["on_time"] == 1.0  # only the outcome differs
    # The hindsight bound is fitted on April itself: 1 day covers every fast April order.
    assert b["hindsight_bound"]["mean_promised_days"] == 1.0  # type: ignore[index]


def test_the_evaluation_does_not_learn_from_a_parcel_that_arrived_in_the_test_months() -> None:
    # Nine February orders took 4 days; one ordered on 25 February took 30 (it arrived on
    # 27 March, inside the test month). Had it been learned from, the 95% quantile of the ten
    # would be 30 (cumulative 9.5 of 10 is reached only there); on 1 March it was unknown, so
    # the model promises 4.
    def order(day: date, took: int) -> Delivered:
        return Delivered(day, day + timedelta(days=took), day + timedelta(days=10), "A", "X")

    history = [order(date(2026, 2, 1 + i), 4) for i in range(9)]
    history += [order(date(2026, 2, 25), 30), order(date(2026, 3, 2), 3)]
    report = evaluate(history, test_months=1, confidence=0.95, prior_weight=0, half_life_days=None)
    assert report["mean_promised_days"] == 4.0
    assert report["train"] == {
        "orders": 10,
        "delivered_before_test": 9,
        "from": "2026-02-01",
        "to": "2026-02-25",
    }


def test_the_hindsight_bound_knowing_the_hand_over_adds_the_lane_transit() -> None:
    # Test month: ten orders, each handed over after 1 or 5 days (alternately) and then in
    # transit 2 days. Knowing each hand-over day, the promise is hand-over + 2: on time every
    # time, mean (1 + 2 + 5 + 2) / 2 = 5 days. Without it, the whole-journey lane must cover
    # 7 days to reach the history's 100%: 7 days.
    def order(day: date, handling: int, transit: int) -> Delivered:
        shipped = day + timedelta(days=handling)
        return Delivered(
            day, shipped + timedelta(days=transit), day + timedelta(days=20), "A", "X",
            shipped_on=shipped,
        )  # fmt: skip

    train = [order(date(2026, 1, 1 + i), 1, 2) for i in range(10)]
    test = [order(date(2026, 2, 1 + i), 1 if i % 2 else 5, 2) for i in range(10)]
    report = evaluate(train + test, test_months=1, prior_weight=0, half_life_days=None)
    bound = report["hindsight_bound"]
    assert bound["mean_promised_days"] == 7.0  # type: ignore[index]
    assert bound["knowing_the_hand_over"] == {  # type: ignore[index]
        "orders": 10,
        "confidence": 0.5,
        "mean_promised_days": 5.0,
        "on_time": 1.0,
    }
