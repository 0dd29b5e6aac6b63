"""A wave's re-plan and a capped location's day: no re-plan grows a day past its capacity, and
one that adds nothing to a location already past it is not refused. On SQLite and PostgreSQL.

The network: the customers live at A's door (0 km); C is at their door too; B is 700 km east.
The builders' card: one X of 500 g costs 4.00 + 1.50 handling = 5.50 from A or C, and
8.00 + 1.50 = 9.50 from B; X and Y together (1 kg) cost the same per parcel.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.domain.routing import Policy
from tests.builders import network
from tests.integration.test_cross_break7 import _made_on
from tests.integration.test_waves_edges import (
    DAY_TWO,
    WAVE,
    a_capped_late_on_day_one,
    open_at,
    order_now,
)


def _post(c: TestClient, runtime: Runtime, ref: str, *skus: str) -> dict[str, Any]:
    return order_now(c, runtime, ref, 0, *((sku, 1) for sku in skus))


def _receive(c: TestClient, sku: str, location: str, n: int) -> None:
    got = c.post(
        "/v1/inventory/adjustments",
        json={"sku": sku, "location_id": location, "delta": n, "reason": "receipt"},
    )
    assert got.status_code == 200, got.text


def test_a_wave_that_adds_nothing_at_a_full_location_is_not_refused(runtime: Runtime) -> None:
    """A ships one parcel a day and holds two X and the only two Z. Day 1, 23:00: W1 (X and Z)
    goes to A. Day 2, 00:05: W2 (X and Z) takes A's one parcel of day 2; W1 is routed again
    and keeps its place of day 1 at A (on a new fulfilment order: routing lets it, the place
    being W1's own). W3 (X) goes to B (A is full, C is empty). X then arrives at C. The wave
    can move W3 to C (saves 4.00) without putting anything more at A (W1 and W2 cannot leave
    A: only A has Z), and must not be refused as "a re-plan would exceed a's capacity"."""
    network(runtime.engine, {("X", "a"): 2, ("Z", "a"): 2, ("X", "b"): 5, ("X", "c"): 0},
            locations={"a": 0, "b": 700, "c": 0}, policy=Policy.OPTIMAL)  # fmt: skip
    with a_capped_late_on_day_one(runtime) as c:
        w1 = _post(c, runtime, "W1", "X", "Z")
        assert open_at(c, w1["id"]) == ["a"]
        runtime.clock = lambda: DAY_TWO + timedelta(minutes=5)
        w2 = _post(c, runtime, "W2", "X", "Z")
        assert open_at(c, w2["id"]) == ["a"]
        assert c.post(f"/v1/orders/{w1['id']}/route").status_code == 200
        assert open_at(c, w1["id"]) == ["a"]  # its own place, kept
        w3 = _post(c, runtime, "W3", "X")
        assert open_at(c, w3["id"]) == ["b"]
        _receive(c, "X", "c", 1)
        before = _made_on(runtime, "a", DAY_TWO)
        answer = c.post(WAVE, json={"since": (DAY_TWO - timedelta(hours=2)).isoformat()})
        assert answer.status_code == 200, answer.text
        assert _made_on(runtime, "a", DAY_TWO) <= before  # nothing more at A either way
        assert open_at(c, w3["id"]) == ["c"], answer.json().get("kept")


def test_a_wave_that_moves_an_order_keeping_yesterdays_place_does_not_overfill_today(
    runtime: Runtime,
) -> None:
    """A ships one parcel a day. Day 1, 23:00: W1 (X and Y) ships X from A and Y from B (A
    has no Y). Day 2, 00:05: W2 (X) takes A's one parcel of day 2. Y arrives at A. The wave
    must not merge W1 at A (5.50 instead of 15.00): W1's fulfilment orders would be made
    again, today, and A have two parcels of day 2 where routing allows one."""
    network(runtime.engine, {("X", "a"): 5, ("Y", "a"): 0, ("Y", "b"): 5},
            locations={"a": 0, "b": 700}, policy=Policy.OPTIMAL)  # fmt: skip
    with a_capped_late_on_day_one(runtime) as c:
        w1 = _post(c, runtime, "W1", "X", "Y")
        assert open_at(c, w1["id"]) == ["a", "b"]
        assert _made_on(runtime, "a", DAY_TWO) == 0
        runtime.clock = lambda: DAY_TWO + timedelta(minutes=5)
        w2 = _post(c, runtime, "W2", "X")
        assert open_at(c, w2["id"]) == ["a"]
        assert _made_on(runtime, "a", DAY_TWO) == 1  # A is full for day 2
        _receive(c, "Y", "a", 1)
        answer = c.post(WAVE, json={"since": (DAY_TWO - timedelta(hours=2)).isoformat()})
        assert answer.status_code == 200, answer.text
        assert _made_on(runtime, "a", DAY_TWO) <= 1, (
            answer.json(), open_at(c, w1["id"]), open_at(c, w2["id"]),
        )  # fmt: skip
