"""Batch re-optimisation for merchants who release work in waves.

Orders are routed one by one as they arrive. Before a wave is released to the warehouses, every
order routed in it and still fully reserved and not yet handed on is planned again *together*,
within the stock they hold plus the free stock (`joint.joint_plans`: column generation from
the current plans, then one MILP that picks one whole plan per order). Reservations move only
when it pays: no order ships fewer units, and the wave's landed cost goes down. Everything —
releases, new reservations, fulfilment orders, decisions and events — is one transaction, on
rows locked in the same order as routing locks them (orders, then stock, then locations).

The shop's active routing policy version applies to the re-plan as to routing: its rules
narrow each order's candidates and its weights price the plans. A shop running an A/B test is
left alone, so that the re-plan cannot blur the arms.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from aoms.domain import events as ev
from aoms.domain.errors import Conflict, UnknownShop
from aoms.domain.events import Event
from aoms.domain.geo import Point
from aoms.domain.joint import joint_plans
from aoms.domain.money import Money
from aoms.domain.optimise import Problem
from aoms.domain.orders import Order, OrderStatus
from aoms.domain.policies import plan_from
from aoms.domain.routing import Candidate, Demand, RoutingConfig, problem_for
from aoms.domain.routing_policy import utc_day_start
from aoms.domain.service_levels import effective_card
from aoms.services.orders import (
    apply_version,
    commit_plan,
    held_places,
    release_all,
    unit_grams,
    with_services,
)
from aoms.services.ports import Tx

# The wave's column generation gets this long, and then its final MILP as long again (the
# rows stay locked meanwhile, so orders of the same SKUs wait): past it, the plans found by
# then stand, or the current ones.
WAVE_SECONDS = 2.0


def replan_wave(tx: Tx, shop: str, since: datetime, *, now: datetime) -> dict[str, object]:
    """Re-plan the shop's orders routed since `since` together; returns what moved."""
    if not tx.lock_shop(shop):  # one wave at a time per shop
        raise UnknownShop(f"no shop {shop!r}", field="domain")
    report: dict[str, object] = {"shop": shop, "since": since, "orders": 0, "moved": 0}
    inputs = tx.routing_inputs(shop, tx.shop_currency(shop) or "")
    if inputs.experiment is not None:
        return {**report, "skipped": "an A/B experiment is running for this shop"}
    ids = tx.wave_orders(shop, since)
    orders: dict[int, Order] = {}
    dests: dict[int, Point] = {}
    for order_id in ids:  # lock the order rows first, in id order, as every writer does
        stored = tx.get_order(order_id)
        if stored is None or stored.status is not OrderStatus.ROUTED or stored.dest is None:
            continue
        orders[order_id] = tx.load_order(order_id)
        dests[order_id] = stored.dest
    currency = inputs.card.currency if inputs.card else None
    orders = {i: o for i, o in orders.items() if o.currency == currency}
    report["orders"] = len(orders)
    if len(orders) < 2 or inputs.card is None:
        return report
    assert inputs.card is not None
    version = inputs.active
    name = version.document.policy if version else inputs.policy
    card = inputs.card
    held = {i: tx.active_reservations(i) for i in orders}
    current = {i: _taken((r.location_id, r.sku, r.quantity) for r in held[i]) for i in orders}
    levels = tx.lock_stock({k for o in orders.values() for k in o.demand()})
    capped = version.document.capped() if version else []
    day_start = utc_day_start(now)
    shipped_today = tx.shipped_today(capped, day_start) if capped else {}
    # Places an order has held since an earlier day stay its own (orders.held_places), and
    # what its fulfilment orders made today hold was counted in today's capacity.
    made_today = {i: tx.open_shipments_since(i, day_start) for i in orders} if capped else {}
    earlier = {  # held since an earlier day, and not by a fulfilment order made today
        i: {loc for loc in held_places(tx, i, now) if loc not in made_today[i]} for i in orders
    } if capped else {}  # fmt: skip
    while True:
        # The wave's own shipments today do not count against a location's capacity while
        # it is re-planned; the total is checked once the new plans are known.
        own: Counter[str] = Counter()
        for i in orders:
            own.update(made_today.get(i, {}))
        mine: dict[tuple[str, str], int] = defaultdict(int)
        for i in orders:
            for r in held[i]:
                mine[(r.sku, r.location_id)] += r.quantity
        # What the wave may use: the free stock (none, not less, under the safety stock) plus
        # what its own orders hold, so that their current plans always fit.
        pooled = [
            replace(
                lv, on_hand=lv.available + mine[(lv.sku, lv.location_id)], reserved=0,
                safety_stock=0,
            )
            for lv in levels
        ]  # fmt: skip
        plans: dict[int, tuple[Demand, list[Candidate], RoutingConfig, Problem]] = {}
        misfits = []
        everywhere = tx.candidates(pooled)  # the same for every order, before its rules
        for order_id, order in orders.items():
            candidates = everywhere
            config = RoutingConfig(rate_card=effective_card(card, None)[0])
            if version is not None:
                mine_before = own + Counter(earlier.get(order_id, set()))
                candidates, config, _ = apply_version(
                    tx, version, order, candidates, card, now, shipped_before=mine_before
                )
            if not _fits(current[order_id], candidates):
                misfits.append(order_id)  # e.g. a rule since then bars where it ships from
                continue
            demand = Demand(order.demand(), unit_grams(tx, order), dests[order_id], order.currency)
            plans[order_id] = (demand, candidates, config, problem_for(demand, candidates, config))
        if not misfits:
            break
        for order_id in misfits:  # they stay as they are, and so does what they hold
            del orders[order_id]
        if len(orders) < 2:
            return {**report, "orders": len(orders), "left_as_they_are": len(misfits)}
    report["orders"] = len(plans)
    stock = {(lv.sku, lv.location_id): lv.available for lv in pooled}
    better = joint_plans(
        [p[3] for p in plans.values()],
        stock,
        [current[i] for i in plans],
        time_limit=WAVE_SECONDS,
    )
    old_plans = [current[i] for i in plans]
    before = after = 0
    priced = []
    for (order_id, (demand, candidates, config, _)), old, new in zip(
        plans.items(), old_plans, better, strict=True
    ):
        was = plan_from(name, demand, candidates, config, old, "")
        now_plan = plan_from(name, demand, candidates, config, new, "")
        if now_plan.chosen.units < was.chosen.units:
            return {**report, "moved": 0, "kept": "a re-plan would ship fewer units"}
        before += was.chosen.cost.in_minor()
        after += now_plan.chosen.cost.in_minor()
        priced.append((order_id, demand, candidates, config, old, new))
    if after >= before:
        return {**report, "landed_cost_minor": before, "saved_minor": 0}
    changed = [entry for entry in priced if entry[4] != entry[5]]
    # Today's count at a capped location once the moved orders' fulfilment orders are made
    # again, today: it must stay within the capacity, or (already past it: places orders held
    # since an earlier day) not grow.
    dropped: Counter[str] = Counter()
    added: Counter[str] = Counter()
    for order_id, *_, new in changed:
        dropped.update(made_today.get(order_id, {}))
        added.update(tuple(new))
    for loc in capped:
        cap = version.document.locations[loc].daily_capacity if version else None
        was_today = shipped_today.get(loc, 0)
        count = was_today - dropped[loc] + added[loc]
        if cap is not None and count > max(cap, was_today):
            return {**report, "moved": 0, "kept": f"a re-plan would exceed {loc}'s capacity"}
    for order_id, *_ in changed:
        release_all(tx, order_id, now=now)  # with its stock.released event
    for order_id, demand, candidates, config, _, new in changed:
        order = orders[order_id]
        words = (
            f"Re-planned with the {len(plans)} orders of the wave since {since.isoformat()}: "
            f"together they cost {Money.from_minor(after, demand.currency)} instead of "
            f"{Money.from_minor(before, demand.currency)}."
        )
        routing = plan_from(name, demand, candidates, config, new, words)
        days = version.document.days_for(order.shipping_method) if version else None
        routing = with_services(routing, card, days, order, now)
        status = commit_plan(tx, order_id, order, routing, version, None, now=now, wave=True)
        if status is not OrderStatus.ROUTED:  # pragma: no cover - it ships all the old plan did
            raise Conflict(f"re-planning order {order_id} would leave units short")
    tx.emit(
        [
            Event(
                ev.WAVE_REPLANNED,
                f"shop:{shop}",
                {"since": since.isoformat(), "orders": len(plans), "moved": len(changed),
                 "landed_cost_minor": after, "saved_minor": before - after},
            )
        ],
        now,
    )  # fmt: skip
    return {
        **report,
        "moved": len(changed),
        "moved_orders": [order_id for order_id, *_ in changed],
        "landed_cost_minor": after,
        "saved_minor": before - after,
    }


def _fits(plan: Mapping[str, Mapping[str, int]], candidates: Sequence[Candidate]) -> bool:
    """Whether the candidates (after the version's rules) can still ship this plan."""
    by_id = {c.location_id: c for c in candidates}
    return all(
        loc in by_id and all(q <= by_id[loc].available.get(k, 0) for k, q in items.items())
        for loc, items in plan.items()
    )


def _taken(rows: Iterable[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    taken: dict[str, dict[str, int]] = {}
    for location_id, sku, quantity in rows:
        at = taken.setdefault(location_id, {})
        at[sku] = at.get(sku, 0) + quantity
    return taken


def wave_close(now: datetime, minutes: int) -> datetime:
    """The latest wave boundary at or before `now`: waves of `minutes` are laid from each UTC
    midnight, so every process agrees on them without sharing a clock of its own."""
    midnight = utc_day_start(now)
    span = minutes * 60
    return midnight + timedelta(seconds=int((now - midnight).total_seconds()) // span * span)


def due_waves(
    schedules: Mapping[str, int], closed: dict[str, datetime], now: datetime
) -> list[tuple[str, datetime]]:
    """The shops whose wave has closed since the last one this process re-planned, each with
    the start of the orders to re-plan: the last boundary handled, so a wave missed (a busy or
    paused process) is re-planned with the next. `closed` (shop -> last boundary handled) is
    updated; a shop seen for the first time starts from the current boundary, so a restart
    does not re-plan a wave that may already have been released."""
    due: list[tuple[str, datetime]] = []
    for shop, minutes in sorted(schedules.items()):
        boundary = wave_close(now, minutes)
        last = closed.setdefault(shop, boundary)
        if boundary > last:
            closed[shop] = boundary
            due.append((shop, last))
    for shop in set(closed) - set(schedules):
        del closed[shop]  # the timer was turned off: start afresh if it comes back
    return due
