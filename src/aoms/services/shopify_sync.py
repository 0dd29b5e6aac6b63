"""Keep Shopify right: available-to-sell per store, fulfilments, tags and holds.

Inventory: for every SKU and location a store sells from (the mapping tables), Shopify
should show the location's share of the store's ATS (`domain.availability`). Only values
that differ from what Shopify is known to hold are sent, 250 to a call, each with
compare-and-set (`changeFromQuantity` = the value we believe Shopify holds). A call whose
compare fails changed nothing: the stale values are read back, and the call is sent again
with them. What Shopify holds after a call is recorded in the same transaction as an event
saying so, so an interrupted push resumes with what is left.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aoms.domain.availability import ats_by_location
from aoms.domain.errors import ShopifyError

log = logging.getLogger(__name__)

BATCH = 250  # Shopify's limit on an input list


@dataclass(frozen=True, slots=True)
class InventoryTarget:
    """One SKU at one location a store sells from, with what Shopify is known to hold."""

    sku: str
    location_id: str
    inventory_item_id: str
    shopify_location_id: str
    available: int  # aoms: on_hand − reserved − safety stock, at least 0
    known: int | None  # Shopify's available, as last pushed or read; None: never


@dataclass(frozen=True, slots=True)
class Change:
    inventory_item_id: str
    location_id: str
    quantity: int
    compare_to: int | None


@dataclass(frozen=True, slots=True)
class SetOutcome:
    applied: bool
    stale: tuple[int, ...] = ()
    errors: tuple[dict[str, Any], ...] = ()


class InventoryAdmin(Protocol):
    """The part of Shopify's Admin API the push needs (adapters.shopify.admin)."""

    def set_available(
        self, changes: Sequence[Change], *, reason: str = ..., reference: str | None = ...
    ) -> SetOutcome: ...
    def read_available(
        self, pairs: Sequence[tuple[str, str]]
    ) -> Mapping[tuple[str, str], int | None]: ...


class InventorySyncRepo(Protocol):
    def targets(self, shop: str) -> list[InventoryTarget]: ...
    def buffer(self, shop: str) -> int: ...
    def record_known(
        self, shop: str, values: Sequence[tuple[str, str, int]], now: datetime, *, pushed: int
    ) -> None: ...


@dataclass
class PushReport:
    shop: str
    targets: int = 0  # SKU × location pairs the store sells from
    changed: int = 0  # pairs whose value differed from Shopify's
    pushed: int = 0  # pairs set on Shopify
    calls: int = 0  # inventorySetQuantities calls sent
    stale: int = 0  # compare-and-set failures (Shopify held something else)
    read_back: int = 0  # values read from Shopify (unknown ones and stale ones)
    failed: list[dict[str, Any]] = field(default_factory=list)  # userErrors we gave up on

    def as_dict(self) -> dict[str, Any]:
        return {
            "shop": self.shop,
            "targets": self.targets,
            "changed": self.changed,
            "pushed": self.pushed,
            "calls": self.calls,
            "stale": self.stale,
            "read_back": self.read_back,
            "failed": self.failed,
        }


def desired_values(targets: Sequence[InventoryTarget], buffer: int) -> dict[tuple[str, str], int]:
    """(sku, location) -> what Shopify should show there, the store's ATS spread over them."""
    by_sku: dict[str, dict[str, int]] = defaultdict(dict)
    for t in targets:
        by_sku[t.sku][t.location_id] = t.available
    desired: dict[tuple[str, str], int] = {}
    for sku, levels in by_sku.items():
        for location, units in ats_by_location(levels, buffer).items():
            desired[(sku, location)] = units
    return desired


def push_inventory(
    repo: InventorySyncRepo,
    admin: InventoryAdmin,
    shop: str,
    *,
    now: datetime,
    max_attempts: int = 3,
    concurrency: int = 4,
    verify: bool = False,
) -> PushReport:
    """Push the store's ATS to Shopify where it differs from what Shopify holds.

    With `verify`, every value is read from Shopify first (3 points each), not only those
    never pushed: a nightly check. Batches run on `concurrency` threads: the client sends
    their calls one at a time within the shop's bucket, and a batch's database write
    overlaps with the next call."""
    targets = repo.targets(shop)
    report = PushReport(shop, targets=len(targets))
    desired = desired_values(targets, repo.buffer(shop))
    known: dict[tuple[str, str], int | None] = {(t.sku, t.location_id): t.known for t in targets}
    by_key = {(t.sku, t.location_id): t for t in targets}
    lock = threading.Lock()  # the report and `known`, between the batches' threads

    # What aoms knows of Shopify can be out of date without any push noticing: a sale on
    # Shopify lowers a location aoms then has no reason to push. `verify` reads every value.
    unknown = [k for k, v in known.items() if v is None or verify]
    if unknown:
        _read_back(repo, admin, shop, unknown, by_key, known, report, now, lock)
    todo = [k for k in sorted(desired) if known.get(k) != desired[k]]
    report.changed = len(todo)

    def push_batch(keys: list[tuple[str, str]]) -> None:
        batch = [k for k in keys if known.get(k) is not None]
        for _attempt in range(max_attempts):
            batch = [k for k in batch if known[k] != desired[k]]
            if not batch:
                return
            changes = [
                Change(
                    by_key[k].inventory_item_id, by_key[k].shopify_location_id, desired[k], known[k]
                )
                for k in batch
            ]
            result = admin.set_available(changes, reference=f"gid://aoms/InventorySync/{shop}")
            with lock:
                report.calls += 1
            if result.applied:
                repo.record_known(shop, [(*k, desired[k]) for k in batch], now, pushed=len(batch))
                with lock:
                    for k in batch:
                        known[k] = desired[k]
                    report.pushed += len(batch)
                return
            if not result.stale or len(result.stale) < len(result.errors):
                log.warning("Shopify %s refused an inventory push: %s", shop, result.errors[:3])
                with lock:
                    report.failed.extend(result.errors)  # not a compare failure: retry won't help
                return
            with lock:
                report.stale += len(result.stale)
            stale = [batch[i] for i in result.stale]
            _read_back(repo, admin, shop, stale, by_key, known, report, now, lock)
        raise ShopifyError(
            f"{shop}: inventory kept changing on Shopify during {max_attempts} attempts",
            shop=shop,
        )

    batches = [todo[start : start + BATCH] for start in range(0, len(todo), BATCH)]
    if concurrency <= 1 or len(batches) <= 1:
        for keys in batches:
            push_batch(keys)
        return report
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="aoms-push") as pool:
        for done in [pool.submit(push_batch, keys) for keys in batches]:
            done.result()  # the first failure is raised here, after the others finish
    return report


def _read_back(
    repo: InventorySyncRepo,
    admin: InventoryAdmin,
    shop: str,
    keys: Sequence[tuple[str, str]],
    by_key: Mapping[tuple[str, str], InventoryTarget],
    known: dict[tuple[str, str], int | None],
    report: PushReport,
    now: datetime,
    lock: threading.Lock,
) -> None:
    pairs = [(by_key[k].inventory_item_id, by_key[k].shopify_location_id) for k in keys]
    found = admin.read_available(pairs)
    values = []
    with lock:
        report.read_back += len(keys)
        for k, pair in zip(keys, pairs, strict=True):
            value = found.get(pair)
            if value is None:
                report.failed.append(
                    {"code": "ITEM_NOT_STOCKED_AT_LOCATION", "sku": k[0], "location_id": k[1]}
                )
                known[k] = None
                continue
            known[k] = value
            values.append((*k, value))
    if values:
        repo.record_known(shop, values, now, pushed=0)
