"""Review: the exact optimiser on orders of many units (the live `optimal` decision)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from aoms.domain.optimise import Problem, Site, Weights, solve


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still searching after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
    with deadline(5.0):
        solution = solve(problem)
    assert solution.objective == 2100
    assert not solution.backordered
