"""A/B tests of two routing policy versions on live traffic: which arm routes an order, and
what the arms' outcomes say.

Assignment is a pure function of (experiment id, the order's external id): SHA-256, not
Python's `hash`, so every process, and the same process after a restart, puts an order in
the same arm. The verdict compares the mean landed cost per order with Welch's t interval
(unequal variances, Welch–Satterthwaite degrees of freedom) and the split-shipment rates with
a normal (Wald) interval on the difference of two proportions.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from aoms.domain.errors import InvalidInput
from aoms.domain.money import minor_units
from aoms.domain.routing_policy import PolicyVersion

ARMS = ("A", "B")


def assign(experiment_id: int, external_id: str, share_b: float) -> str:
    """'B' for a `share_b` fraction of orders, else 'A'; the same order always the same."""
    digest = hashlib.sha256(f"{experiment_id}:{external_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64  # uniform on [0, 1)
    return "B" if u < share_b else "A"


@dataclass(frozen=True, slots=True)
class Experiment:
    """A running A/B test: orders are routed with arm A's or arm B's policy version."""

    id: int
    arm_a: PolicyVersion
    arm_b: PolicyVersion
    share_b: float

    def arm_for(self, external_id: str) -> tuple[str, PolicyVersion]:
        arm = assign(self.id, external_id, self.share_b)
        return arm, self.arm_b if arm == "B" else self.arm_a


def check_share(share_b: float) -> None:
    if not 0 < share_b < 1:
        raise InvalidInput("share_b must be above 0 and below 1", field="share_b")


@dataclass(frozen=True, slots=True)
class ArmOutcome:
    """One order's outcome in an arm (its latest decision under the experiment)."""

    cost_minor: int
    shipments: int
    backordered_units: int


@dataclass(frozen=True, slots=True)
class ArmKpis:
    orders: int
    shipped_orders: int  # orders that shipped something: the cost and split rate are over these
    mean_cost: float  # currency units per shipped order
    split_rate: float
    backorder_rate: float  # share of all orders with a unit backordered


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def kpis(outcomes: Sequence[ArmOutcome], scale: int) -> ArmKpis:
    shipped = [o for o in outcomes if o.shipments > 0]
    return ArmKpis(
        orders=len(outcomes),
        shipped_orders=len(shipped),
        mean_cost=statistics.fmean(o.cost_minor / scale for o in shipped) if shipped else 0.0,
        split_rate=sum(o.shipments > 1 for o in shipped) / len(shipped) if shipped else 0.0,
        backorder_rate=(
            sum(o.backordered_units > 0 for o in outcomes) / len(outcomes) if outcomes else 0.0
        ),
    )


def _t_pdf(x: float, df: float) -> float:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))


def _t_cdf(x: float, df: float) -> float:
    """P(T <= x) for x >= 0: one half plus Simpson's rule over [0, x] (the density is smooth;
    2000 panels give about ten correct digits for the quantiles used here)."""
    n = 2000
    h = x / n
    total = _t_pdf(0.0, df) + _t_pdf(x, df)
    total += sum((4 if i % 2 else 2) * _t_pdf(i * h, df) for i in range(1, n))
    return 0.5 + total * h / 3


def t_quantile(p: float, df: float) -> float:
    """The p-quantile (p > 0.5) of Student's t with `df` degrees of freedom (any real df > 0)."""
    if df > 1e7:
        return statistics.NormalDist().inv_cdf(p)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        low, high = high, high * 2
    for _ in range(60):
        mid = (low + high) / 2
        if _t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def welch(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval | None:
    """mean(b) − mean(a) with Welch's interval; None with fewer than two values in an arm, or
    when neither arm's values vary (no spread to estimate an interval from)."""
    if len(a) < 2 or len(b) < 2:
        return None
    diff = statistics.fmean(b) - statistics.fmean(a)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return None
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(0.5 + confidence / 2, df) * se
    return Interval(diff, diff - half, diff + half)


def proportion_difference(
    hits_a: int, n_a: int, hits_b: int, n_b: int, confidence: float = 0.95
) -> Interval | None:
    """p(b) − p(a) with the normal (Wald) interval; None when an arm has no observations."""
    if n_a == 0 or n_b == 0:
        return None
    pa, pb = hits_a / n_a, hits_b / n_b
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    half = statistics.NormalDist().inv_cdf(0.5 + confidence / 2) * se
    return Interval(pb - pa, pb - pa - half, pb - pa + half)


def _round(value: float, currency: str) -> str:
    """An estimate shown to the currency's minor unit (a statistic, not an amount owed)."""
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-minor_units(currency))))


def verdict(cost: Interval | None, n_a: int, n_b: int, currency: str) -> str:
    """The cost comparison in one plain sentence."""
    sizes = f"n={n_a} (A) and {n_b} (B)"
    if cost is None:
        return (
            "Not enough orders yet: each arm needs two shipped orders, and costs that vary "
            f"({sizes})."
        )
    if not cost.significant:
        return (
            f"No significant difference yet: B−A is {_round(cost.estimate, currency)} "
            f"{currency} per order (95% CI {_round(cost.low, currency)} to "
            f"{_round(cost.high, currency)}), {sizes}."
        )
    if cost.estimate < 0:
        return (
            f"B is cheaper by {_round(-cost.estimate, currency)} {currency} per order "
            f"(95% CI {_round(-cost.high, currency)} to {_round(-cost.low, currency)}), {sizes}."
        )
    return (
        f"B costs {_round(cost.estimate, currency)} {currency} more per order "
        f"(95% CI {_round(cost.low, currency)} to {_round(cost.high, currency)}), {sizes}."
    )
