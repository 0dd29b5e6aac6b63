"""Out-of-time evaluation of learned delivery promises against a history's own promises."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from aoms.domain.errors import InvalidInput
from aoms.domain.promise import PromiseModel, Transit


@dataclass(frozen=True, slots=True)
class Delivered:
    ordered_on: date
    delivered_on: date
    promised_on: date  # the promise the history made (e.g. Olist's estimate)
    origin: str
    destination: str


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def evaluate(
    history: Sequence[Delivered],
    *,
    test_months: int = 3,
    confidence: float = 0.9,
    prior_weight: float = 20.0,
    half_life_days: float | None = 60.0,
) -> dict[str, object]:
    """Fit on every month before the last `test_months` months; promise each later order and
    compare with what the history promised."""
    if not history:
        raise InvalidInput("no delivered orders to learn from")
    last = max(d.ordered_on for d in history)
    cut = _months_back(date(last.year, last.month, 1), test_months - 1)
    train = [d for d in history if d.ordered_on < cut]
    test = [d for d in history if d.ordered_on >= cut]
    if not train or not test:
        raise InvalidInput("the history is too short for that many test months")
    model = PromiseModel.fit(
        (
            Transit(
                d.origin,
                d.destination,
                (d.delivered_on - d.ordered_on).days,
                weight=0.5 ** ((cut - d.ordered_on).days / half_life_days)
                if half_life_days
                else 1.0,
            )
            for d in train
        ),
        confidence=confidence,
        prior_weight=prior_weight,
    )
    ours = [model.days(d.origin, d.destination) for d in test]
    theirs = [(d.promised_on - d.ordered_on).days for d in test]
    actual = [(d.delivered_on - d.ordered_on).days for d in test]
    on_time_ours = sum(a <= p for a, p in zip(actual, ours, strict=True)) / len(test)
    on_time_theirs = sum(a <= p for a, p in zip(actual, theirs, strict=True)) / len(test)
    return {
        "train": {
            "orders": len(train),
            "from": str(train[0].ordered_on),
            "to": str(train[-1].ordered_on),
        },
        "test": {"orders": len(test), "from": str(cut), "to": str(last)},
        "confidence": confidence,
        "prior_weight": prior_weight,
        "half_life_days": half_life_days,
        "lanes": len(model.by_lane),
        "mean_promised_days": round(statistics.fmean(ours), 2),
        "mean_history_promised_days": round(statistics.fmean(theirs), 2),
        "ratio_to_history": round(statistics.fmean(ours) / statistics.fmean(theirs), 3),
        "on_time": round(on_time_ours, 4),
        "history_on_time": round(on_time_theirs, 4),
        "mean_actual_days": round(statistics.fmean(actual), 2),
    }
