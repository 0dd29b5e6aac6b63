"""Fulfilment orders after routing: handed to a warehouse or 3PL and followed to the end.

A fulfilment order (FO) is what one location is asked to ship of one order. Its states and
the only moves between them are listed here; every use case asks `check_move` before it
writes, so a late or repeated message from a warehouse can never take an FO backwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from aoms.domain.errors import InvalidInput, InvalidTransition, OverShipment


class FoStatus(StrEnum):
    OPEN = "open"  # routed and reserved, not handed off yet
    REQUESTED = "requested"  # handed off (or being handed off): the 3PL has it
    ACCEPTED = "accepted"  # the 3PL said it will ship it
    REJECTED = "rejected"  # the 3PL cannot ship it: its lines went elsewhere
    PARTLY_SHIPPED = "partly_shipped"  # some units shipped, the rest still expected
    SHIPPED = "shipped"  # every unit shipped
    CANCEL_REQUESTED = "cancel_requested"  # aoms asked the 3PL to stop; waiting for its answer
    CANCELLED = "cancelled"  # nothing more will ship; what it held is released


class RejectReason(StrEnum):
    NOT_IN_STOCK = "not_in_stock"  # the location's available becomes 0 for the SKUs
    DAMAGED = "damaged"  # the units leave on_hand (unsellable)
    ADDRESS_UNSERVICEABLE = "address_unserviceable"  # no stock change
    OTHER = "other"  # no stock change


S = FoStatus
TERMINAL = frozenset({S.REJECTED, S.SHIPPED, S.CANCELLED})
# Fulfilment orders that will not ship: cancelled, or rejected (and routed elsewhere).
WONT_SHIP = frozenset({S.CANCELLED, S.REJECTED})
# Fulfilment orders a warehouse has (or had): past `open`, and not given up.
AT_WAREHOUSE = frozenset(FoStatus) - WONT_SHIP - {S.OPEN}
# The 3PL may ship before it says "accepted", and may still ship what it had packed when our
# cancel request reaches it; it may give up (reject) on what it has not shipped yet. An FO
# never handed off ships from its own location (its parcel, under a label aoms bought, was
# picked up by the carrier).
MOVES: Mapping[FoStatus, frozenset[FoStatus]] = {
    S.OPEN: frozenset({S.REQUESTED, S.PARTLY_SHIPPED, S.SHIPPED, S.CANCELLED}),
    S.REQUESTED: frozenset(
        {S.ACCEPTED, S.REJECTED, S.PARTLY_SHIPPED, S.SHIPPED, S.CANCEL_REQUESTED, S.CANCELLED}
    ),
    S.ACCEPTED: frozenset(
        {S.REJECTED, S.PARTLY_SHIPPED, S.SHIPPED, S.CANCEL_REQUESTED, S.CANCELLED}
    ),
    S.PARTLY_SHIPPED: frozenset(
        {S.PARTLY_SHIPPED, S.SHIPPED, S.REJECTED, S.CANCEL_REQUESTED, S.CANCELLED}
    ),
    S.CANCEL_REQUESTED: frozenset(
        {S.CANCELLED, S.ACCEPTED, S.PARTLY_SHIPPED, S.SHIPPED, S.CANCEL_REQUESTED}
    ),
    S.REJECTED: frozenset(),
    S.SHIPPED: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_move(current: FoStatus, target: FoStatus) -> bool:
    return target in MOVES[current]


def check_move(fo_id: int, current: FoStatus, target: FoStatus) -> None:
    if not can_move(current, target):
        raise InvalidTransition(
            f"fulfilment order {fo_id} is {current.value}; it cannot become {target.value}",
            field="status",
            current=current.value,
            target=target.value,
        )


@dataclass(frozen=True, slots=True)
class FoLine:
    """One order line's share of a fulfilment order. `closed` units will not ship from it
    (cancelled, or rejected and routed elsewhere)."""

    line_no: int
    sku: str
    quantity: int
    shipped: int = 0
    closed: int = 0

    @property
    def remaining(self) -> int:
        return self.quantity - self.shipped - self.closed


def remaining_by_sku(lines: Sequence[FoLine]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ln in lines:
        if ln.remaining:
            out[ln.sku] = out.get(ln.sku, 0) + ln.remaining
    return out


def spread(lines: Sequence[FoLine], units: Mapping[str, int]) -> list[tuple[int, str, int]]:
    """Spread shipped units per SKU over the FO's lines that still expect them, first line
    first: [(line_no, sku, units)]. More units than the lines expect is refused."""
    left = remaining_by_sku(lines)
    for sku, q in units.items():
        if q <= 0:
            raise InvalidInput(f"{sku}: a shipped quantity must be positive", field="lines")
        if q > left.get(sku, 0):
            raise OverShipment(
                f"{sku}: {q} unit(s) shipped but only {left.get(sku, 0)} are expected from "
                "this fulfilment order",
                field="lines",
            )
    out: list[tuple[int, str, int]] = []
    need = dict(units)
    for ln in sorted(lines, key=lambda x: x.line_no):
        take = min(need.get(ln.sku, 0), ln.remaining)
        if take:
            out.append((ln.line_no, ln.sku, take))
            need[ln.sku] -= take
    return out


def status_after_shipment(current: FoStatus, lines: Sequence[FoLine]) -> FoStatus:
    """Every unit shipped or closed: shipped. Otherwise partly shipped — unless a cancel
    request is still waiting for the 3PL's answer, which the shipment does not answer."""
    if all(ln.remaining == 0 for ln in lines):
        return S.SHIPPED
    return S.CANCEL_REQUESTED if current is S.CANCEL_REQUESTED else S.PARTLY_SHIPPED


def status_after_refused_cancel(lines: Sequence[FoLine], before: FoStatus) -> FoStatus:
    """The 3PL will not stop: back to where the FO was, counting what shipped meanwhile."""
    if all(ln.remaining == 0 for ln in lines):
        return S.SHIPPED
    if any(ln.shipped for ln in lines):
        return S.PARTLY_SHIPPED
    return S.ACCEPTED if before is S.ACCEPTED else S.REQUESTED


def claim_lines(
    items: Mapping[str, int], unclaimed: Sequence[tuple[int, str, int]]
) -> list[FoLine]:
    """Which order lines an FO's per-SKU items are: taken from the order's reservations at the
    FO's location that no other live FO there claims yet, first line first."""
    need = dict(items)
    out: list[FoLine] = []
    for line_no, sku, units in sorted(unclaimed):
        take = min(units, need.get(sku, 0))
        if take:
            out.append(FoLine(line_no, sku, take))
            need[sku] -= take
    return out
