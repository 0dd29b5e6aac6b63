"""The fulfilment-order state machine and the pure helpers behind shipments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoms.domain.errors import InvalidTransition, OverShipment
from aoms.domain.handoff import (
    MOVES,
    TERMINAL,
    FoLine,
    FoStatus,
    can_move,
    check_move,
    claim_lines,
    spread,
    status_after_refused_cancel,
    status_after_shipment,
)

S = FoStatus


def test_terminal_states_have_no_way_out_and_every_state_is_reachable_from_open() -> None:
    assert all(not MOVES[s] for s in TERMINAL)
    seen, todo = {S.OPEN}, [S.OPEN]
    while todo:
        for nxt in MOVES[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(FoStatus)


def test_nothing_goes_back_to_open_or_requested_once_handed_off() -> None:
    assert not any(can_move(s, S.OPEN) for s in FoStatus)
    assert [s for s in FoStatus if can_move(s, S.REQUESTED)] == [S.OPEN]


def test_a_forbidden_move_is_refused_with_a_stable_code() -> None:
    with pytest.raises(InvalidTransition) as err:
        check_move(7, S.SHIPPED, S.CANCEL_REQUESTED)
    assert err.value.code == "invalid_fulfilment_transition"
    assert err.value.details == {"current": "shipped", "target": "cancel_requested"}


def test_shipped_units_fill_the_first_line_first() -> None:
    lines = [FoLine(1, "X", 2, shipped=1), FoLine(2, "Y", 1), FoLine(3, "X", 4)]
    assert spread(lines, {"X": 3}) == [(1, "X", 1), (3, "X", 2)]
    with pytest.raises(OverShipment):
        spread(lines, {"X": 6})  # 1 + 4 are expected


def test_the_state_after_a_shipment() -> None:
    done = [FoLine(1, "X", 2, shipped=2)]
    part = [FoLine(1, "X", 2, shipped=1)]
    assert status_after_shipment(S.ACCEPTED, done) is S.SHIPPED
    assert status_after_shipment(S.ACCEPTED, part) is S.PARTLY_SHIPPED
    assert status_after_shipment(S.CANCEL_REQUESTED, part) is S.CANCEL_REQUESTED
    assert status_after_refused_cancel(part, S.ACCEPTED) is S.PARTLY_SHIPPED
    assert status_after_refused_cancel([FoLine(1, "X", 2)], S.ACCEPTED) is S.ACCEPTED


lines_strategy = st.lists(
    st.tuples(st.sampled_from("XYZ"), st.integers(1, 6), st.integers(0, 6)),
    min_size=1,
    max_size=6,
).map(lambda rows: [FoLine(i + 1, sku, q, shipped=min(s, q)) for i, (sku, q, s) in enumerate(rows)])


@given(lines_strategy, st.dictionaries(st.sampled_from("XYZ"), st.integers(1, 12)))
def test_spread_ships_exactly_the_units_asked_or_refuses(
    lines: list[FoLine], units: dict[str, int]
) -> None:
    expected: dict[str, int] = {}
    for ln in lines:
        expected[ln.sku] = expected.get(ln.sku, 0) + ln.remaining
    if any(q > expected.get(sku, 0) for sku, q in units.items()):
        with pytest.raises(OverShipment):
            spread(lines, units)
        return
    parts = spread(lines, units)
    got: dict[str, int] = {}
    by_line = {ln.line_no: ln for ln in lines}
    for line_no, sku, q in parts:
        assert by_line[line_no].sku == sku and 0 < q <= by_line[line_no].remaining
        got[sku] = got.get(sku, 0) + q
    assert got == {k: v for k, v in units.items() if v}


@given(
    st.dictionaries(st.sampled_from("XYZ"), st.integers(1, 9)),
    st.lists(st.tuples(st.sampled_from("XYZ"), st.integers(1, 9)), max_size=6),
)
def test_an_fo_claims_what_its_items_say_as_far_as_the_reservations_go(
    items: dict[str, int], held: list[tuple[str, int]]
) -> None:
    unclaimed = [(i + 1, sku, q) for i, (sku, q) in enumerate(held)]
    claimed = claim_lines(items, unclaimed)
    for sku in "XYZ":
        have = sum(q for _, s, q in unclaimed if s == sku)
        got = sum(ln.quantity for ln in claimed if ln.sku == sku)
        assert got == min(items.get(sku, 0), have)
