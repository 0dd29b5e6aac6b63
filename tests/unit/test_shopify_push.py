"""The ATS push as a use case, with in-memory fakes of its two ports: whatever Shopify held
and whatever sales happen on Shopify between the calls, it ends showing the store's ATS."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from aoms.domain.availability import ats_by_location
from aoms.services.shopify_sync import (
    Change,
    InventoryTarget,
    SetOutcome,
    desired_values,
    push_inventory,
)

NOW = datetime(2026, 12, 4, tzinfo=UTC)


class MemoryRepo:
    def __init__(
        self, available: dict[tuple[str, str], int], known: dict[tuple[str, str], int], buffer: int
    ) -> None:
        self.available, self.known, self._buffer = available, dict(known), buffer
        self.recorded: list[int] = []

    def targets(self, shop: str) -> list[InventoryTarget]:
        return [
            InventoryTarget(
                sku, loc, f"item:{sku}", f"loc:{loc}", units, self.known.get((sku, loc))
            )
            for (sku, loc), units in sorted(self.available.items())
        ]

    def buffer(self, shop: str) -> int:
        return self._buffer

    def record_known(
        self, shop: str, values: Sequence[tuple[str, str, int]], now: datetime, *, pushed: int
    ) -> None:
        for sku, loc, n in values:
            self.known[(sku, loc)] = n
        self.recorded.append(pushed)


class MemoryShopify:
    """Compare-and-set, all or nothing, like inventorySetQuantities; `sales` is the chance
    that a sale on Shopify takes a unit somewhere before each call."""

    def __init__(self, levels: dict[tuple[str, str], int], sales: float, seed: int) -> None:
        self.levels, self.sales, self.rng = levels, sales, random.Random(seed)
        self.calls = 0

    def _maybe_sell(self) -> None:
        if self.levels and self.rng.random() < self.sales:
            pair = self.rng.choice(sorted(self.levels))
            self.levels[pair] = max(0, self.levels[pair] - 1)

    def set_available(
        self, changes: Sequence[Change], *, reason: str = "correction", reference: str | None = None
    ) -> SetOutcome:
        assert 0 < len(changes) <= 250
        self.calls += 1
        self._maybe_sell()
        stale = tuple(
            i
            for i, c in enumerate(changes)
            if c.compare_to is not None
            and self.levels[(c.inventory_item_id, c.location_id)] != c.compare_to
        )
        if stale:
            errors = tuple(
                {
                    "code": "CHANGE_FROM_QUANTITY_STALE",
                    "field": ["input", "quantities", str(i), "changeFromQuantity"],
                }
                for i in stale
            )
            return SetOutcome(False, stale, errors)
        for c in changes:
            self.levels[(c.inventory_item_id, c.location_id)] = c.quantity
        return SetOutcome(True)

    def read_available(self, pairs: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], int]:
        return {p: self.levels[p] for p in pairs}


@settings(max_examples=150, deadline=None)
@given(
    skus=st.integers(1, 120),
    locations=st.integers(1, 4),
    buffer=st.integers(0, 8),
    seed=st.integers(0, 10_000),
    sales=st.sampled_from([0.0, 0.2, 0.5]),
    known_share=st.floats(0, 1),
)
def test_shopify_ends_with_the_store_ats_whatever_it_held_and_sold(
    skus: int, locations: int, buffer: int, seed: int, sales: float, known_share: float
) -> None:
    rng = random.Random(seed)
    pairs = [(f"S{s}", f"L{n}") for s in range(skus) for n in range(locations)]
    available = {p: rng.randint(0, 12) for p in pairs}
    shopify = {(f"item:{s}", f"loc:{n}"): rng.randint(0, 12) for s, n in pairs}
    # aoms knows some of Shopify's values, and some of what it knows is out of date.
    known = {
        (s, n): shopify[(f"item:{s}", f"loc:{n}")] + rng.choice([0, 0, 0, 1])
        for s, n in pairs
        if rng.random() < known_share
    }
    repo = MemoryRepo(available, known, buffer)
    admin = MemoryShopify(dict(shopify), sales, seed)
    desired = desired_values(repo.targets("s"), buffer)
    expected = {(f"item:{s}", f"loc:{n}"): v for (s, n), v in desired.items()}
    report = push_inventory(repo, admin, "s", now=NOW, max_attempts=50, concurrency=1)
    assert report.failed == []
    if sales == 0.0:
        # Each value is right, except where aoms's knowledge was out of date and happened to
        # equal the ATS already: then nothing told it to push (what `verify` is for).
        for (s, n), value in desired.items():
            pair = (f"item:{s}", f"loc:{n}")
            drift = (s, n) in known and known[(s, n)] != shopify[pair] and known[(s, n)] == value
            assert admin.levels[pair] == (shopify[pair] if drift else value)
        assert report.calls <= -(-report.changed // 250) + report.stale
    verified = push_inventory(
        repo, admin, "s", now=NOW, max_attempts=50, concurrency=1, verify=True
    )
    assert verified.failed == []
    if sales == 0.0:
        assert admin.levels == expected
        assert repo.known == desired
    # The ATS per SKU is the sum minus the buffer, spread so no location shows more than it has.
    for s in range(skus):
        levels = {f"L{n}": available[(f"S{s}", f"L{n}")] for n in range(locations)}
        assert sum(ats_by_location(levels, buffer).values()) == max(
            0, sum(levels.values()) - buffer
        )


def test_nothing_is_sent_when_nothing_changed() -> None:
    available = {("X", "a"): 4, ("X", "b"): 2}
    repo = MemoryRepo(available, {("X", "a"): 3, ("X", "b"): 2}, 1)  # ATS 5: a 3, b 2
    admin = MemoryShopify({("item:X", "loc:a"): 3, ("item:X", "loc:b"): 2}, 0.0, 1)
    report = push_inventory(repo, admin, "s", now=NOW)
    assert (report.changed, report.calls, admin.calls) == (0, 0, 0)
