"""Stock changes from warehouses: receipts, deltas and counts, each with a reason and a
reference, idempotent by key, a batch at a time (all of a batch, or none of it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from aoms.domain.errors import InvalidInput
from aoms.services.inventory import Adjusted, adjust_stock
from aoms.services.ports import Tx
from aoms.services.stock_checks import COUNT_REASONS


class ChangeKind(StrEnum):
    RECEIPT = "receipt"  # units arrived: on_hand + quantity
    DELTA = "delta"  # a correction either way: on_hand + quantity (not below reserved)
    COUNT = "count"  # the warehouse counted `quantity`: on_hand = quantity


@dataclass(frozen=True, slots=True)
class StockChange:
    kind: ChangeKind
    sku: str
    location_id: str
    quantity: int
    idempotency_key: str
    reason: str | None = None
    reference: str | None = None


def apply_changes(tx: Tx, changes: Sequence[StockChange], *, now: datetime) -> list[Adjusted]:
    """Apply a warehouse's changes in order; a key seen before is skipped (applied=False)."""
    out: list[Adjusted] = []
    for i, c in enumerate(changes):
        field = f"changes[{i}]"
        if not c.idempotency_key:
            raise InvalidInput("every stock change needs an idempotency key", field=field)
        if c.kind is ChangeKind.RECEIPT:
            if c.quantity <= 0:
                raise InvalidInput("a receipt adds at least 1 unit", field=f"{field}.quantity")
            out.append(adjust_stock(
                tx, sku=c.sku, location_id=c.location_id, reason=c.reason or "receipt",
                now=now, delta=c.quantity, reference=c.reference,
                idempotency_key=c.idempotency_key,
            ))  # fmt: skip
        elif c.kind is ChangeKind.DELTA:
            if c.quantity == 0 or not c.reason:
                raise InvalidInput("a delta changes stock and says why", field=field)
            out.append(adjust_stock(
                tx, sku=c.sku, location_id=c.location_id, reason=c.reason, now=now,
                delta=c.quantity, reference=c.reference, idempotency_key=c.idempotency_key,
            ))  # fmt: skip
        else:
            reason = c.reason or "cycle_count"
            if reason not in COUNT_REASONS:
                raise InvalidInput(
                    f"a count's reason is one of {sorted(COUNT_REASONS)}", field=f"{field}.reason"
                )
            if c.quantity < 0:
                raise InvalidInput("a count is not negative", field=f"{field}.quantity")
            out.append(adjust_stock(
                tx, sku=c.sku, location_id=c.location_id, reason=reason, now=now,
                set_on_hand=c.quantity, reference=c.reference,
                idempotency_key=c.idempotency_key, warehouse_count=True,
            ))  # fmt: skip
    return out
