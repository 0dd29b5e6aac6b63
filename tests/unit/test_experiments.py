"""A/B assignment and the verdict's statistics, against hand computations and tables."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys

import pytest

from aoms.domain.experiments import (
    ArmOutcome,
    Interval,
    assign,
    kpis,
    proportion_difference,
    t_quantile,
    verdict,
    welch,
)


def test_the_same_order_always_gets_the_same_arm() -> None:
    arms = [assign(7, f"order-{i}", 0.5) for i in range(200)]
    assert arms == [assign(7, f"order-{i}", 0.5) for i in range(200)]
    assert set(arms) == {"A", "B"}


def test_the_arm_does_not_depend_on_the_process_or_its_hash_seed() -> None:
    ids = [f"#{i}" for i in range(50)]
    script = (
        "from aoms.domain.experiments import assign; "
        f"print(''.join(assign(3, i, 0.4) for i in {ids!r}))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == "".join(assign(3, i, 0.4) for i in ids)


def test_another_experiment_shuffles_the_arms() -> None:
    ids = [str(i) for i in range(1000)]
    same = sum(assign(1, i, 0.5) == assign(2, i, 0.5) for i in ids)
    assert 400 < same < 600  # independent halves agree about half the time


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5])
def test_ten_thousand_orders_split_within_three_binomial_deviations(share: float) -> None:
    n = 10_000
    in_b = sum(assign(42, f"{1_000_000 + i}", share) == "B" for i in range(n))
    sd = math.sqrt(n * share * (1 - share))  # 30 at 10%, 45.8 at 30%, 50 at 50%
    assert abs(in_b - n * share) <= 3 * sd


@pytest.mark.parametrize(
    "df, table",
    [(1, 12.7062047), (4, 2.7764451), (10, 2.2281389), (30, 2.0422725), (1e9, 1.9599640)],
)
def test_the_t_quantile_matches_the_table(df: float, table: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(table, abs=1e-6)


def test_welchs_interval_on_a_small_sample_by_hand() -> None:
    # A = 10, 12, 14: mean 12, variance 4. B = 14, 16, 18: mean 16, variance 4.
    # se = sqrt(4/3 + 4/3) = 1.6329932; equal n and variances give df = 2(n − 1) = 4,
    # t(0.975, 4) = 2.7764451 (table): 4 ± 4.5339159 = −0.5339159 to 8.5339159.
    found = welch([10, 12, 14], [14, 16, 18])
    assert found is not None
    assert found.estimate == 4
    assert found.low == pytest.approx(-0.5339159, abs=1e-6)
    assert found.high == pytest.approx(8.5339159, abs=1e-6)
    assert not found.significant


def test_welchs_interval_with_unequal_variances_uses_satterthwaites_df() -> None:
    a = [9.5, 9.5, 12.5, 9.5, 12.5, 12.5, 9.5, 9.5]
    b = [5.5, 7.5, 5.5, 5.5, 7.5, 5.5]
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / 7 + vb**2 / 5)
    half = t_quantile(0.975, df) * math.sqrt(va + vb)
    diff = statistics.mean(b) - statistics.mean(a)
    found = welch(a, b)
    assert found == Interval(diff, diff - half, diff + half)
    assert found.significant and found.estimate < 0


def test_the_split_rate_difference_by_hand() -> None:
    # A: 20 of 100 split, B: 10 of 100. pB − pA = −0.10;
    # se = sqrt(.2 × .8 / 100 + .1 × .9 / 100) = sqrt(.0025) = 0.05; ± 1.959964 × 0.05.
    found = proportion_difference(20, 100, 10, 100)
    assert found is not None
    assert found.estimate == pytest.approx(-0.10)
    assert found.low == pytest.approx(-0.10 - 0.0979982, abs=1e-6)
    assert found.high == pytest.approx(-0.10 + 0.0979982, abs=1e-6)


def test_kpis_count_cost_and_splits_over_shipped_orders_and_backorders_over_all() -> None:
    outcomes = [
        ArmOutcome(550, 1, 0),
        ArmOutcome(1100, 2, 0),
        ArmOutcome(950, 1, 1),
        ArmOutcome(0, 0, 2),  # nothing shipped: no cost, counts as a backorder
    ]
    k = kpis(outcomes, 100)
    # shipped: 5.50, 11.00, 9.50 -> mean 26.00 / 3; one of three split; two of four short.
    assert (k.orders, k.shipped_orders) == (4, 3)
    assert k.mean_cost == pytest.approx(26 / 3)
    assert k.split_rate == pytest.approx(1 / 3)
    assert k.backorder_rate == 0.5


def test_the_verdict_in_words() -> None:
    cheaper = verdict(Interval(-0.42, -0.74, -0.10), 812, 790, "USD")
    assert (
        cheaper
        == "B is cheaper by 0.42 USD per order (95% CI 0.10 to 0.74), n=812 (A) and 790 (B)."
    )
    dearer = verdict(Interval(1.5, 0.25, 2.75), 10, 12, "USD")
    assert dearer.startswith("B costs 1.50 USD more per order (95% CI 0.25 to 2.75)")
    unsure = verdict(Interval(0.05, -0.2, 0.3), 40, 41, "USD")
    assert unsure.startswith("No significant difference yet: B−A is 0.05 USD per order")
    assert verdict(None, 1, 0, "USD").startswith("Not enough orders yet")


def test_costs_that_never_vary_give_no_interval_rather_than_a_certain_one() -> None:
    # Two orders per arm at 9.50 (A) and 5.50 (B): no spread in either arm, so there is no
    # standard error to build an interval from; two orders are not proof of anything.
    assert welch([9.5, 9.5], [5.5, 5.5]) is None
    assert verdict(None, 2, 2, "USD").startswith("Not enough orders yet")
