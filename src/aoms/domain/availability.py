"""Available to sell (ATS) for a sales channel, spread over the locations that serve it."""

from __future__ import annotations

from collections.abc import Mapping


def ats_by_location(available: Mapping[str, int], buffer: int) -> dict[str, int]:
    """What each location should show a channel so that together they show its ATS.

    The channel's ATS is the sum of `available` over its locations minus its `buffer`,
    never below 0. The buffer is taken from the locations with the most available first
    (ties by location id, so the answer is stable), so no location shows more than it
    holds, none shows less than 0, and the parts add up to the ATS exactly.
    """
    if buffer < 0:
        raise ValueError("a buffer cannot be negative")
    shown = {loc: max(0, units) for loc, units in available.items()}
    left = buffer
    for loc in sorted(shown, key=lambda k: (-shown[k], k)):
        if left == 0:
            break
        take = min(left, shown[loc])
        shown[loc] -= take
        left -= take
    return shown
