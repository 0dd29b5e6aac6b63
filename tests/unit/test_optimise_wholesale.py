"""The exact optimiser on orders of many units (the live `optimal` decision)."""

from __future__ import annotations

import random
import signal
from types import FrameType

import pytest

from aoms.domain.optimise import Problem, Site, Solution, Weights, _milp, solve


def solve_within(problem: Problem, seconds: float) -> Solution:
    """`solve`, failing the test (without the search's deep traceback) if it takes longer."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return solve(problem)
    except TimeoutError:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    pytest.fail(f"solve was still searching after {seconds} s", pytrace=False)


def test_an_order_of_two_thousand_units_of_two_skus_is_routed_within_seconds() -> None:
    # Two SKUs of 500 g, 2,000 units each (the API accepts up to 100,000 per line); three
    # locations each hold 1,001 of both, so no location ships the order whole. Bands: up to
    # 1 kg 4.00, 3 kg 6.00, 10 kg 9.00 and beyond; handling 1.50. Every parcel of a split
    # weighs far more than 10 kg, so any two-location plan costs 2 × (9.00 + 1.50) = 21.00
    # and three locations cost 31.50: the optimum is 2,100 minor units.
    sites = [
        Site(f"L{i}", 10.0 * i, 150, {"A": 1001, "B": 1001}, (1000, 3000, 10000), (400, 600, 900))
        for i in range(3)
    ]
    problem = Problem(
        {"A": 2000, "B": 2000},
        {"A": 500, "B": 500},
        sites,
        Weights(backorder_penalty=10**7),
        max_shipments=3,
    )
    solution = solve_within(problem, 5.0)
    assert solution.objective == 2100
    assert not solution.backordered


def test_a_b2b_order_of_eight_skus_by_twelve_over_ten_locations_is_routed_within_seconds() -> None:
    # Eight SKUs of 12 units each (96 units) over ten locations that hold 1-12 of about 70% of
    # the SKUs, on a seven-band card: a wholesale order the live `optimal` policy may meet.
    # The expected optimum comes from HiGHS's MILP (an independent method, 0.3 s here); the
    # depth-first search that `solve` uses for up to 12 SKUs ran for minutes.
    rng = random.Random(1)
    skus = [f"S{i}" for i in range(8)]
    sites = []
    for i in range(10):
        available = {k: rng.randint(1, 12) for k in skus if rng.random() < 0.7}
        km = rng.uniform(0, 3000)
        handling = rng.choice([150, 180, 210])
        prices = tuple(sorted(rng.randint(500, 3000) for _ in range(7)))
        bands = (500, 1000, 2000, 5000, 10000, 20000, 30000)
        sites.append(Site(f"L{i}", km, handling, available, bands, prices))
    grams = {k: rng.choice([90, 300, 780, 1500]) for k in skus}
    problem = Problem({k: 12 for k in skus}, grams, sites, Weights(backorder_penalty=10**6), 3)
    units = dict(problem.units)
    expected = _milp(problem, units, [s for s in sites if s.available]).objective
    solution = solve_within(problem, 5.0)
    assert solution.objective == expected
