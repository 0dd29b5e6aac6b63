"""The stock invariants, checked by a job: every counter agrees with what it is derived from.

- reserved equals the sum of the open (active) reservations at that SKU and location;
- on_hand and reserved equal the sums of their stock movements (the ledger of stock);
- on_hand is not below reserved, unless a warehouse count made it so (which raised a
  `stock.count_below_reserved` alert of its own).

Each broken invariant is reported and raised as a `stock.invariant_broken` event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aoms.domain import events as ev
from aoms.domain.events import Event

COUNT_REASONS = frozenset({"cycle_count", "full_count", "count"})  # a warehouse's counts


@dataclass(frozen=True, slots=True)
class StockRow:
    sku: str
    location_id: str
    on_hand: int
    reserved: int
    safety_stock: int
    open_reservations: int  # sum of active reservations
    moved_on_hand: int  # sum of on_hand deltas of its movements
    moved_reserved: int  # sum of reserved deltas of its movements
    last_count_reason: str | None = None  # reason of its latest on_hand movement


@dataclass(frozen=True, slots=True)
class Breach:
    sku: str
    location_id: str
    invariant: str
    detail: str


class StockCheckRepo(Protocol):
    def stock_rows(self) -> Iterable[StockRow]: ...
    def emit(self, events: Iterable[Event], now: datetime) -> None: ...


def breaches(row: StockRow) -> list[Breach]:
    """The invariants one stock row breaks (pure)."""
    out: list[Breach] = []
    at = (row.sku, row.location_id)
    if row.reserved != row.open_reservations:
        out.append(Breach(*at, "reserved_matches_reservations",
                          f"reserved is {row.reserved} but open reservations hold "
                          f"{row.open_reservations}"))  # fmt: skip
    if row.on_hand != row.moved_on_hand:
        out.append(Breach(*at, "on_hand_matches_movements",
                          f"on_hand is {row.on_hand} but its movements add up to "
                          f"{row.moved_on_hand}"))  # fmt: skip
    if row.reserved != row.moved_reserved:
        out.append(Breach(*at, "reserved_matches_movements",
                          f"reserved is {row.reserved} but its movements add up to "
                          f"{row.moved_reserved}"))  # fmt: skip
    available = row.on_hand - row.reserved - row.safety_stock
    if row.on_hand - row.reserved < 0 and row.last_count_reason not in COUNT_REASONS:
        # A warehouse count may leave fewer units than are reserved (it raised its own alert);
        # anything else doing so is a bug.
        out.append(Breach(*at, "available_not_negative",
                          f"available is {available}: {row.reserved} reserved but "
                          f"{row.on_hand} on hand"))  # fmt: skip
    return out


def check_stock(repo: StockCheckRepo, *, now: datetime) -> list[Breach]:
    found = [b for row in repo.stock_rows() for b in breaches(row)]
    if found:
        repo.emit(
            [
                Event(
                    ev.STOCK_INVARIANT_BROKEN,
                    f"stock:{b.sku}@{b.location_id}",
                    {"invariant": b.invariant, "detail": b.detail},
                )
                for b in found
            ],
            now,
        )
    return found
