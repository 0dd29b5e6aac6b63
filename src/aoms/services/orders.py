"""Order use cases: receive (create or update), route and reserve, cancel."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from aoms.domain import events as ev
from aoms.domain.errors import (
    AomsError,
    Conflict,
    InvalidInput,
    NotFound,
    PlanBroken,
    UnknownPolicy,
)
from aoms.domain.events import Event
from aoms.domain.geo import Point
from aoms.domain.money import Money
from aoms.domain.orders import Order, OrderStatus, allocate_to_lines
from aoms.domain.policies import accept_plan
from aoms.domain.routing import Candidate, Demand, Option, RateCard, RoutingConfig, RoutingPlan
from aoms.domain.routing_policy import PolicyVersion, utc_day_start
from aoms.domain.service_levels import days_left, effective_card
from aoms.services.ports import AfterRoute, Clock, Geocoder, Store, StoredOrder, Tx


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    STALE = "stale"  # not newer than what we hold: no effect


@dataclass(frozen=True, slots=True)
class Received:
    order_id: int
    outcome: Outcome
    status: OrderStatus


def lines_key(order: Order) -> str:
    """The channel's lines as it sent them (SKU, quantity, shipping): the same key on its next
    update means it did not change them (orders.channel_key)."""
    lines = [(ln.line_no, ln.sku, ln.quantity, ln.requires_shipping) for ln in order.lines]
    return hashlib.sha256(f"{lines}".encode()).hexdigest()[:32]


def routing_key(order: Order, dest: Point | None) -> str:
    """What routing and the per-line reservations depend on: each line's SKU, quantity and
    whether it ships, and the destination. When it changes, the order is routed again (so it
    is when its shipping method changes: `method_changed`)."""
    lines = [(ln.line_no, ln.sku, ln.quantity, ln.requires_shipping) for ln in order.lines]
    where = f"{dest.lat:.5f},{dest.lng:.5f}" if dest else "-"
    return hashlib.sha256(f"{lines}|{where}".encode()).hexdigest()[:32]


def method_changed(before: str | None, after: str | None) -> bool:
    """Whether a shipping method changed (in any case or spacing it is the same one): its
    delivery days choose the carrier services and the date a label must meet."""
    return (before or "").strip().lower() != (after or "").strip().lower()


log = logging.getLogger(__name__)

_NOT_FULLY_ROUTED = (OrderStatus.BACKORDERED, OrderStatus.UNROUTABLE)


def receive_order(tx: Tx, order: Order, *, geocode: Geocoder, now: datetime) -> Received:
    """Take an order from any channel: create it, or apply it if it is newer than ours.

    Idempotent and order-insensitive: a repeat, or anything older than the state we hold
    (by the channel's `updated_at`), has no effect.
    """
    located = geocode(order.shipping_address)
    dest, dest_source = located if located else (None, None)
    key = routing_key(order, dest)
    amounts = order.amount_check()
    stored = tx.find_order(order.shop, order.channel, order.external_id)
    if stored is None:
        order_id = tx.insert_order(
            order,
            status=OrderStatus.UNROUTABLE,
            dest=dest,
            dest_source=dest_source,
            amounts=amounts,
            routing_key=key,
            now=now,
            channel_key=lines_key(order),
        )
        tx.emit([Event(ev.ORDER_RECEIVED, f"order:{order_id}", _summary(order))], now)
        if order.cancelled_at is not None:
            status = cancel(tx, order_id, at=order.cancelled_at, now=now)
        else:
            status = route_and_reserve(tx, order_id, order, dest, now=now, dest_source=dest_source)
        return Received(order_id, Outcome.CREATED, status)

    if order.source_updated_at <= stored.source_updated_at:
        return Received(stored.id, Outcome.STALE, stored.status)
    if stored.currency != order.currency:
        raise InvalidInput("an order cannot change its currency", field="currency")
    channel_key = lines_key(order)
    if channel_key == stored.channel_key:
        # The channel's lines are as they were when it last told us: whatever differs in ours
        # is an edit made in aoms (services.order_edits), which the channel has not undone.
        # Keep aoms's lines, and what they hold; anything else (the address) is taken.
        order = replace(order, lines=tx.load_order(stored.id).lines)
        key = routing_key(order, dest)
    reroute = stored.status is not OrderStatus.CANCELLED and (
        key != stored.routing_key
        or method_changed(stored.shipping_method, order.shipping_method)
        or stored.status in _NOT_FULLY_ROUTED
    )
    at_warehouse = key != stored.routing_key and tx.handed_off(stored.id)
    tx.update_order(
        stored.id, order, dest=dest, dest_source=dest_source, amounts=amounts,
        routing_key=stored.routing_key if at_warehouse else key,
        replace_lines=key != stored.routing_key and not at_warehouse, channel_key=channel_key,
    )  # fmt: skip
    tx.emit([Event(ev.ORDER_UPDATED, f"order:{stored.id}", _summary(order))], now)
    status = stored.status
    if order.cancelled_at is not None:
        status = cancel(tx, stored.id, at=order.cancelled_at, now=now)
    elif reroute and tx.handed_off(stored.id):
        if key != stored.routing_key:
            # A warehouse has part of it: aoms does not take those units back by itself.
            tx.emit([Event(ev.ORDER_CHANGED_AFTER_HANDOFF, f"order:{stored.id}",
                           {"note": "a warehouse has part of this order: change or cancel it "
                                    "there, then route the rest again"})], now)  # fmt: skip
        else:
            status = _route_rest(tx, stored.id, now)
    elif reroute:
        # What routing depends on changed, or the order still waits for stock or an address:
        # release what it holds and route it again on today's stock.
        status = route_again(tx, stored.id, order, dest, now=now, dest_source=dest_source)
    return Received(stored.id, Outcome.UPDATED, status)


def route_and_reserve(
    tx: Tx,
    order_id: int,
    order: Order,
    dest: Point | None,
    *,
    now: datetime,
    dest_source: str | None = None,
    exclude: Collection[str] = (),
    held_before: Mapping[str, int] | None = None,
) -> OrderStatus:
    """Plan the shipments and reserve their stock, all or nothing, in this transaction.

    The stock rows of every SKU in the order are locked (in key order) before they are read,
    so the plan is made on numbers no other transaction can change until we commit.
    `exclude` are locations not to use (one that has just rejected these lines); `held_before`
    are shipments per location it held since an earlier day (not counted against today's
    capacity).
    """
    demand = order.demand()
    if not demand:
        tx.set_order_outcome(
            order_id,
            status=OrderStatus.ROUTED,
            backordered_units=0,
            shipments=0,
            line_reserved={},
            line_backordered={},
        )
        tx.emit([Event(ev.ORDER_ROUTED, f"order:{order_id}", {"shipments": []})], now)
        return OrderStatus.ROUTED
    inputs = tx.routing_inputs(order.shop, order.currency)
    version = inputs.active
    trial: tuple[int, str] | None = None  # (experiment id, arm) when an A/B test routes it
    if inputs.experiment is not None:
        arm, version = inputs.experiment.arm_for(order.external_id)
        trial = (inputs.experiment.id, arm)
    name = version.document.policy if version else inputs.policy
    card = inputs.card
    if dest is None or card is None:
        reason = (
            "Not routed: the shipping address could not be located."
            if dest is None
            else f"Not routed: there is no rate card in {order.currency} to price shipments."
        )
        return _unroutable(tx, order_id, order, name, reason, version, trial, now=now)

    levels = tx.lock_stock(demand)
    candidates = [c for c in tx.candidates(levels) if c.location_id not in exclude]
    days = version.document.days_for(order.shipping_method) if version else None
    config = RoutingConfig(rate_card=effective_card(card, None)[0])
    notes: list[str] = []
    if version is not None:
        candidates, config, notes = apply_version(
            tx, version, order, candidates, card, now, shipped_before=held_before
        )
    wanted = Demand(demand, unit_grams(tx, order), dest, order.currency)
    opportunity = None
    if version is not None and version.document.scarcity and order.currency == card.currency:
        opportunity = tx.stock_prices(order.shop, demand)
        notes.append(_priced_words(opportunity, candidates, card.currency))
    try:
        routing = accept_plan(tx.routing_policy(name), wanted, candidates, config, opportunity)
    except (UnknownPolicy, PlanBroken) as exc:
        reason = f"Not routed: {exc.message}"
        return _unroutable(tx, order_id, order, name, reason, version, trial, now=now)
    if version is not None:
        words = " ".join(notes) if notes else "No rule of it removed a candidate."
        arm = f" (arm {trial[1]} of experiment {trial[0]})" if trial else ""
        routing = replace(
            routing,
            explanation=f"{routing.explanation} Routing policy v{version.version}{arm} "
            f"of {order.shop} ({name}): {words}",
        )
    if dest_source == "country":
        routing = replace(
            routing,
            explanation=f"{routing.explanation} The address was placed only by its country "
            "(no coordinates or ZIP code it could be found by), so distances are approximate.",
        )
    routing = with_services(routing, card, days, order, now)
    return commit_plan(tx, order_id, order, routing, version, trial, now=now)


def with_services(
    routing: RoutingPlan, card: RateCard, days: int | None, order: Order, now: datetime
) -> RoutingPlan:
    """Name the carrier service each shipment goes by, when the card prices several.

    `days` count from the UTC day the order was placed (the promise stays that), so an order
    routed later (a backorder stock came for) takes services fast enough for the days left.
    """
    routing = replace(routing, within_days=days)
    left = days_left(days, order.placed_at, now)
    composed, pick = effective_card(card, left)
    if pick is None:
        return routing

    def named(option: Option) -> Option:
        return replace(option, shipments=tuple(
            replace(s, service=service, transit_days=takes)
            for s in option.shipments
            for service, takes in [pick.at(composed, s.distance_km, s.weight_g)]))  # fmt: skip

    chosen = named(routing.chosen)
    said = []
    for s in chosen.shipments:
        takes = s.transit_days
        late = left is not None and takes is not None and takes > left
        time = "" if takes is None else f"{takes} day{'' if takes == 1 else 's'}"
        said.append(f"{s.location_name} by {s.service}"
                    + (f" ({time}: none is faster from there)" if late else
                       f" ({time})" if time else ""))  # fmt: skip
    method = order.shipping_method
    within = (f"within {days} day{'' if days == 1 else 's'} ({method or 'any method'})"
              if days is not None else "with no limit on days")  # fmt: skip
    if left is not None and left != days:
        within += f" of being placed, {left} day{'' if left == 1 else 's'} from today"
    words = f" Carrier services, the cheapest that arrive {within}: {', '.join(said)}."
    return replace(routing, chosen=chosen,
                   runners_up=tuple(named(o) for o in routing.runners_up),
                   explanation=routing.explanation + (words if said else ""))  # fmt: skip


def _priced_words(
    prices: Mapping[tuple[str, str], float], candidates: Sequence[Candidate], currency: str
) -> str:
    names = {c.location_id: c.name for c in candidates}
    held = sorted(
        ((v, names[loc], sku) for (loc, sku), v in prices.items() if loc in names), reverse=True
    )
    if not held:
        return "Scarcity prices: none of the stock this order could take is scarce."
    words = ", ".join(
        f"{sku} at {name} {Money.from_minor(round(v), currency)}" for v, name, sku in held[:3]
    )
    more = f" and {len(held) - 3} more" if len(held) > 3 else ""
    return f"Scarcity prices per unit taken, added to the plan's score: {words}{more}."


def commit_plan(
    tx: Tx,
    order_id: int,
    order: Order,
    routing: RoutingPlan,
    version: PolicyVersion | None,
    trial: tuple[int, str] | None,
    *,
    now: datetime,
    wave: bool = False,
) -> OrderStatus:
    """Reserve the plan's stock line by line, open its fulfilment orders, record the decision
    and the order's outcome, and emit the events; the order's stock rows must be locked."""
    allocations, line_short = allocate_to_lines(order.lines, routing.shipments)
    tx.reserve(order_id, allocations, now)
    tx.replace_fulfilment_orders(order_id, routing, now)
    record_decision(tx, order_id, routing, version, trial, now)
    status = OrderStatus.BACKORDERED if line_short else OrderStatus.ROUTED
    reserved = {ln.line_no: 0 for ln in order.lines}
    for alloc in allocations:
        reserved[alloc.line_no] = reserved.get(alloc.line_no, 0) + alloc.quantity
    tx.set_order_outcome(
        order_id,
        status=status,
        backordered_units=sum(line_short.values()),
        shipments=len(routing.chosen.shipments),
        line_reserved=reserved,
        line_backordered=line_short,
    )
    tx.emit(
        _routing_events(
            order_id,
            routing,
            allocations_count=len(allocations),
            policy_version=version.version if version else None,
            arm=trial[1] if trial else None,
            wave=wave,
        ),
        now,
    )
    return status


def unit_grams(tx: Tx, order: Order) -> dict[str, int]:
    """Grams per unit of each SKU: the order line's, else the catalogue's (a channel that sends
    no weights still gets parcels priced at their real weight)."""
    grams = order.unit_grams()
    unknown = [k for k, g in grams.items() if not g]
    if unknown:
        grams.update(tx.product_grams(unknown))
    return grams


def apply_version(
    tx: Tx,
    version: PolicyVersion,
    order: Order,
    candidates: list[Candidate],
    card: RateCard,
    now: datetime,
    *,
    shipped_before: Mapping[str, int] | None = None,
) -> tuple[list[Candidate], RoutingConfig, list[str]]:
    """The shop's policy version narrows the candidates and sets the planner's weights.
    `shipped_before` are shipments not to count against a location's capacity today (a
    wave's own, while it is re-planned; an order's own from an earlier day, when it is routed
    again)."""
    doc = version.document
    capped = doc.capped()
    day_start = utc_day_start(now)
    shipped = tx.shipped_today(capped, day_start) if capped else {}
    if shipped_before:
        shipped = {loc: n - shipped_before.get(loc, 0) for loc, n in shipped.items()}
    tagged = any(rule.tags for rule in doc.only_from)
    kept, notes = doc.restrict(
        candidates,
        currency=order.currency,
        country=order.shipping_address.country_code,
        sku_tags=tx.sku_tags(order.demand()) if tagged else {},
        shipped_today=shipped,
    )
    config = doc.config(card, order.currency, order.shipping_method, placed_at=order.placed_at,
                        now=now)  # fmt: skip
    return kept, config, notes


def record_decision(
    tx: Tx,
    order_id: int,
    routing: RoutingPlan,
    version: PolicyVersion | None,
    trial: tuple[int, str] | None,
    now: datetime,
) -> None:
    tx.add_decision(
        order_id,
        routing,
        now,
        policy_version=version.version if version else None,
        experiment_id=trial[0] if trial else None,
        arm=trial[1] if trial else None,
    )


def _unroutable(
    tx: Tx,
    order_id: int,
    order: Order,
    policy: str,
    reason: str,
    version: PolicyVersion | None,
    trial: tuple[int, str] | None,
    *,
    now: datetime,
) -> OrderStatus:
    """Record why the order cannot be routed now; it holds nothing and waits."""
    line_short = {
        ln.line_no: ln.quantity for ln in order.lines if ln.requires_shipping and ln.quantity
    }
    nothing = Option((), order.demand(), 0, Money.zero(order.currency))
    record_decision(tx, order_id, RoutingPlan(policy, nothing, (), 0, reason), version, trial, now)
    tx.set_order_outcome(
        order_id,
        status=OrderStatus.UNROUTABLE,
        backordered_units=sum(line_short.values()),
        shipments=0,
        line_reserved={},
        line_backordered=line_short,
    )
    tx.emit([Event(ev.ORDER_UNROUTABLE, f"order:{order_id}", {"reason": reason})], now)
    return OrderStatus.UNROUTABLE


def _routing_events(
    order_id: int,
    routing: RoutingPlan,
    *,
    allocations_count: int,
    policy_version: int | None,
    arm: str | None,
    wave: bool = False,
) -> list[Event]:
    agg = f"order:{order_id}"
    shipments = [
        {"location_id": s.location_id, "items": dict(s.items), "cost": str(s.cost.amount)}
        for s in routing.chosen.shipments
    ]
    out = [
        Event(
            ev.ORDER_ROUTED,
            agg,
            {
                "policy": str(routing.policy),
                "policy_version": policy_version,
                "arm": arm,
                "shipments": shipments,
                "cost": str(routing.chosen.cost.amount),
                "currency": routing.chosen.cost.currency,
                **({"wave": True} if wave else {}),
            },
        )
    ]
    if allocations_count:
        out.append(Event(ev.STOCK_RESERVED, agg, {"shipments": shipments}))
    if routing.backordered:
        out.append(Event(ev.ORDER_BACKORDERED, agg, {"shortfall": dict(routing.backordered)}))
    return out


def release_all(tx: Tx, order_id: int, *, now: datetime, also_lock: Iterable[str] = ()) -> int:
    """Release every reservation the order holds; returns the units released.

    The stock rows of what it holds, and of `also_lock` (the SKUs about to be reserved), are
    locked first, all together in key order: a release that locked its own rows first and
    the new ones later could deadlock with another order doing the same the other way round.
    """
    tx.lock_stock(set(tx.reserved_skus(order_id)) | set(also_lock))
    held = tx.release(order_id, now)
    tx.replace_fulfilment_orders(order_id, None, now)
    units = sum(r.quantity for r in held)
    if held:
        tx.emit(
            [
                Event(
                    ev.STOCK_RELEASED,
                    f"order:{order_id}",
                    {
                        "units": units,
                        "reservations": [
                            {"sku": r.sku, "location_id": r.location_id, "quantity": r.quantity}
                            for r in held
                        ],
                    },
                )
            ],
            now,
        )
    return units


def _route_rest(tx: Tx, order_id: int, now: datetime) -> OrderStatus:
    """An order a warehouse has part of is routed again only for what no warehouse holds."""
    from aoms.services import handoff  # it builds on this module

    status: OrderStatus = handoff.route_rest(tx.handoff(), order_id, now)
    return status


def cancel(tx: Tx, order_id: int, *, at: datetime, now: datetime) -> OrderStatus:
    """Cancel: release exactly what this order holds. A second cancel changes nothing."""
    stored = tx.get_order(order_id)
    if stored is None or stored.status is OrderStatus.CANCELLED:
        return OrderStatus.CANCELLED
    if tx.handed_off(order_id):
        from aoms.services import handoff  # it builds on this module

        asked = handoff.cancel_order_at_warehouses(tx.handoff(), order_id, now)
        tx.set_cancelled(order_id, at)
        tx.emit([Event(ev.ORDER_CANCELLED, f"order:{order_id}",
                       {"released_units": 0, "cancel_requests": asked})], now)  # fmt: skip
        return OrderStatus.CANCELLED
    released = release_all(tx, order_id, now=now)
    tx.set_cancelled(order_id, at)
    tx.emit([Event(ev.ORDER_CANCELLED, f"order:{order_id}", {"released_units": released})], now)
    return OrderStatus.CANCELLED


def reroute(tx: Tx, order_id: int, *, geocode: Geocoder, now: datetime) -> OrderStatus:
    """Route an open order again on today's stock: release what it holds, plan, reserve."""
    stored = tx.get_order(order_id)
    if stored is None:
        raise NotFound(f"no order {order_id}", field="order_id")
    if stored.status is OrderStatus.CANCELLED:
        raise Conflict(f"order {order_id} is cancelled", field="order_id")
    if tx.handed_off(order_id):
        return _route_rest(tx, order_id, now)
    order = tx.load_order(order_id)
    located = geocode(order.shipping_address) if stored.dest is None else (stored.dest, None)
    return route_again(tx, order_id, order, located[0] if located else None, now=now)


def held_places(tx: Tx, order_id: int, now: datetime) -> dict[str, int]:
    """Shipments per location the order has held since an earlier day: they were counted in
    that day's capacity, and routing it again must not lose them to today's orders."""
    return tx.open_shipments_before(order_id, utc_day_start(now))


def route_again(
    tx: Tx,
    order_id: int,
    order: Order,
    dest: Point | None,
    *,
    now: datetime,
    dest_source: str | None = None,
) -> OrderStatus:
    """Release what the order holds and route it again on today's stock, keeping the
    places it held in an earlier day's capacity."""
    held = held_places(tx, order_id, now)
    release_all(tx, order_id, now=now, also_lock=order.demand())
    return route_and_reserve(
        tx, order_id, order, dest, now=now, dest_source=dest_source, held_before=held
    )


def retry_waiting(
    store: Store,
    *,
    geocode: Geocoder,
    clock: Clock,
    status: OrderStatus,
    sku: str | None = None,
    limit: int = 200,
    after_route: AfterRoute | None = None,
    order_ids: Sequence[int] | None = None,
) -> dict[str, int]:
    """Route again the oldest orders in `status` (backordered ones with `sku`, when stock of it
    arrived; unroutable ones, when a rate card was set), or `order_ids`, each in its own
    transaction, so the orders that waited longest go first. Stops when the SKU has nothing
    left to give; an order that fails is counted and skipped, never blocking the ones behind
    it."""
    outcome: dict[str, int] = {}
    ids = store.waiting_orders(status, sku, limit) if order_ids is None else order_ids
    for order_id in ids:
        if sku is not None and store.available_units(sku) == 0:
            break
        try:
            with store.transaction() as tx:
                result = reroute(tx, order_id, geocode=geocode, now=clock()).value
                if after_route is not None:
                    after_route(tx, order_id)
        except AomsError as exc:
            log.warning("routing order %s again failed: %s", order_id, exc.message)
            result = "failed"
        outcome[result] = outcome.get(result, 0) + 1
    return outcome


def cancel_order(tx: Tx, order_id: int, *, now: datetime) -> StoredOrder:
    stored = tx.get_order(order_id)
    if stored is None:
        raise NotFound(f"no order {order_id}")
    cancel(tx, order_id, at=now, now=now)
    result = tx.get_order(order_id)
    assert result is not None
    return result


def _summary(order: Order) -> dict[str, object]:
    return {
        "shop": order.shop,
        "channel": order.channel,
        "external_id": order.external_id,
        "name": order.name,
        "updated_at": order.source_updated_at.isoformat(),
        "financial_status": order.financial_status,
    }
