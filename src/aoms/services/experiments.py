"""A/B tests of two routing policy versions on a shop's live orders: start, stop, report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aoms.domain import events as ev
from aoms.domain import experiments as ab
from aoms.domain.errors import Conflict, InvalidInput, NotFound, UnknownShop
from aoms.domain.events import Event
from aoms.domain.money import minor_units
from aoms.domain.policies import PolicyRegistry
from aoms.services.ports import Tx


def start(
    tx: Tx,
    shop: str,
    *,
    arm_a: int,
    arm_b: int,
    share_b: float,
    note: str,
    registry: PolicyRegistry,
    now: datetime,
) -> int:
    """Start routing `share_b` of the shop's new orders with version `arm_b` and the rest with
    `arm_a`. One experiment runs per shop at a time."""
    if not tx.lock_shop(shop):
        raise UnknownShop(f"no shop {shop!r}", field="domain")
    ab.check_share(share_b)
    if arm_a == arm_b:
        raise InvalidInput("the two arms must be different versions", field="arm_b")
    versions = {v.version: v for v in tx.policy_versions(shop)}
    for field, number in (("arm_a", arm_a), ("arm_b", arm_b)):
        if number not in versions:
            raise NotFound(f"{shop} has no routing policy version {number}", field=field)
        registry.get(versions[number].document.policy)
    running = tx.running_experiment(shop)
    if running is not None:
        raise Conflict(f"experiment {running} is running for {shop}; stop it first", field="shop")
    experiment_id = tx.insert_experiment(shop, arm_a, arm_b, share_b, note, now)
    data = {"shop": shop, "id": experiment_id, "arm_a": arm_a, "arm_b": arm_b, "share_b": share_b}
    tx.emit([Event(ev.EXPERIMENT_STARTED, f"shop:{shop}", data)], now)
    return experiment_id


def stop(tx: Tx, shop: str, experiment_id: int, *, now: datetime) -> bool:
    """Stop it (new orders go back to the active version); False if it was not running."""
    if not tx.stop_experiment(shop, experiment_id, now):
        return False
    data = {"shop": shop, "id": experiment_id}
    tx.emit([Event(ev.EXPERIMENT_STOPPED, f"shop:{shop}", data)], now)
    return True


def _rate(value: float) -> float:
    return round(value, 4)


def _interval(found: ab.Interval | None, digits: int) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "estimate": round(found.estimate, digits),
        "low": round(found.low, digits),
        "high": round(found.high, digits),
        "significant": found.significant,
    }


def report(currency: str, outcomes: Mapping[str, Sequence[ab.ArmOutcome]]) -> dict[str, Any]:
    """Per-arm KPIs and the verdict, from each order's latest decision in the experiment."""
    scale = 10 ** minor_units(currency)
    kpis = {arm: ab.kpis(outcomes.get(arm, ()), scale) for arm in ab.ARMS}
    shipped = {
        arm: [o.cost_minor / scale for o in outcomes.get(arm, ()) if o.shipments > 0]
        for arm in ab.ARMS
    }
    cost = ab.welch(shipped["A"], shipped["B"])
    splits = {arm: sum(1 for o in outcomes.get(arm, ()) if o.shipments > 1) for arm in ab.ARMS}
    split = ab.proportion_difference(
        splits["A"], kpis["A"].shipped_orders, splits["B"], kpis["B"].shipped_orders
    )
    digits = minor_units(currency) + 2
    return {
        "currency": currency,
        "arms": {
            arm: {
                "orders": k.orders,
                "shipped_orders": k.shipped_orders,
                "mean_cost_per_order": round(k.mean_cost, digits),
                "split_shipment_rate": _rate(k.split_rate),
                "backorder_rate": _rate(k.backorder_rate),
            }
            for arm, k in kpis.items()
        },
        "cost_difference_b_minus_a": _interval(cost, digits),
        "split_rate_difference_b_minus_a": _interval(split, 4),
        "verdict": ab.verdict(cost, kpis["A"].shipped_orders, kpis["B"].shipped_orders, currency),
    }
