"""Order edits through the API: reduce or remove lines (releasing exactly their reserved
units), never below what has shipped; add lines (reserved and routed on today's stock, beside
what the order already holds). All in the caller's transaction, all or nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from aoms.domain import events as ev
from aoms.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OrderAtWarehouse,
    PlanBroken,
    UnknownPolicy,
)
from aoms.domain.events import Event
from aoms.domain.handoff import AT_WAREHOUSE
from aoms.domain.lifecycle import LineChange, LineState, plan_quantity_changes, reservation_cuts
from aoms.domain.money import Money
from aoms.domain.orders import Order, OrderLine, OrderStatus, allocate_to_lines
from aoms.domain.policies import accept_plan
from aoms.domain.routing import Demand, RoutingConfig, RoutingPlan
from aoms.domain.service_levels import effective_card
from aoms.services import handoff, holds
from aoms.services.orders import (
    apply_version,
    record_decision,
    routing_key,
    unit_grams,
    with_services,
)
from aoms.services.ports import Tx


@dataclass(frozen=True, slots=True)
class NewLine:
    sku: str
    quantity: int
    unit_price: Money
    grams: int = 0
    title: str | None = None


@dataclass(frozen=True, slots=True)
class EditResult:
    order_id: int
    status: OrderStatus
    released_units: int
    reserved_units: int
    backordered_units: int
    added_lines: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Cut:
    """What cutting reservations changed: the stock moves (sku, location, -units off
    reserved), and the open fulfilment orders it left with nothing to ship (now cancelled):
    (id, location, units taken off it per SKU)."""

    moves: list[tuple[str, str, int]]
    emptied: list[tuple[int, str, dict[str, int]]]


class EditRepo(holds.LifecycleRepo, Protocol):
    def line_states(self, order_id: int) -> list[LineState]: ...
    def cut_reservations(
        self, order_id: int, cuts: Sequence[tuple[int, int]], now: datetime
    ) -> Cut: ...
    def set_line_quantity(self, order_id: int, line_no: int, quantity: int) -> None: ...
    def insert_line(self, order_id: int, line: OrderLine) -> None: ...
    def add_fulfilment_orders(self, order_id: int, plan: RoutingPlan, now: datetime) -> None: ...
    def planned_fulfilment_orders(self, order_id: int) -> int: ...
    def set_routing_key(self, order_id: int, key: str, units: int) -> None: ...


def _refuse_cuts_at_warehouses(
    tx: Tx, order_id: int, states: Sequence[LineState], quantities: Mapping[int, int]
) -> None:
    """A line a warehouse has units of is not cut here: the warehouse may be packing them.
    Cancel them there first (`POST /v1/fulfilment-orders/{id}/cancel`), then edit."""
    if not tx.handed_off(order_id):
        return
    htx = tx.handoff()
    at_warehouse: dict[int, list[int]] = {}
    for fo in htx.order_fos(order_id):
        if fo.status not in AT_WAREHOUSE:
            continue
        for ln in handoff.adopt(htx, fo):
            if ln.quantity - ln.closed > 0:
                at_warehouse.setdefault(ln.line_no, []).append(fo.id)
    now_qty = {s.line_no: s.quantity for s in states}
    for line_no, wanted in quantities.items():
        if line_no in at_warehouse and wanted < now_qty.get(line_no, 0):
            raise OrderAtWarehouse(
                f"line {line_no} is at a warehouse (fulfilment order "
                f"{', '.join(map(str, at_warehouse[line_no]))}): cancel it there first, "
                "then edit",
                field="lines",
                line_no=line_no,
                fulfilment_orders=at_warehouse[line_no],
            )


def edit_order(
    repo: EditRepo,
    order_id: int,
    *,
    quantities: Mapping[int, int],
    add: Sequence[NewLine] = (),
    actor: str,
    now: datetime,
) -> EditResult:
    """Apply an edit. A line cannot go below its shipped units (`quantity_below_shipped`);
    then nothing at all is changed."""
    tx = repo.tx
    stored = tx.get_order(order_id)  # locks the order row
    if stored is None:
        raise NotFound(f"no order {order_id}", field="order_id")
    if stored.status is OrderStatus.CANCELLED:
        raise Conflict(f"order {order_id} is cancelled", field="order_id")
    if not quantities and not add:
        raise InvalidInput("an edit changes a line or adds one", field="lines")
    order = tx.load_order(order_id)
    for new in add:
        if new.quantity <= 0:
            raise InvalidInput("an added line needs a quantity of at least 1", field="add")
        if new.unit_price.currency != order.currency:
            raise InvalidInput(
                f"an added line's price must be in {order.currency}", field="add.unit_price"
            )
    states = repo.line_states(order_id)
    changes = plan_quantity_changes(states, quantities)  # refuses before anything is written
    _refuse_cuts_at_warehouses(tx, order_id, states, quantities)
    new_lines = tuple(
        OrderLine(
            line_no=max((s.line_no for s in states), default=0) + 1 + i,
            sku=n.sku, quantity=n.quantity, unit_price=n.unit_price,
            discount=Money.zero(order.currency), tax=Money.zero(order.currency),
            grams=n.grams, title=n.title,
        )
        for i, n in enumerate(add)
    )  # fmt: skip
    # Lock every stock row the edit touches, once, in key order.
    tx.lock_stock({c.sku for c in changes} | {ln.sku for ln in new_lines}
                  | set(tx.reserved_skus(order_id)))  # fmt: skip

    released = _release_cuts(repo, order_id, changes, now)
    by_line = {s.line_no: s for s in states}
    line_reserved = {s.line_no: s.reserved for s in states}
    line_short = {s.line_no: s.backordered for s in states}
    for c in changes:
        repo.set_line_quantity(order_id, c.line_no, c.quantity)
        line_reserved[c.line_no] = by_line[c.line_no].reserved - c.release
        line_short[c.line_no] = by_line[c.line_no].backordered - c.unbackorder

    reserved_units = 0
    if new_lines:
        for ln in new_lines:
            repo.insert_line(order_id, ln)
        reserved, short = _route_new_lines(repo, order_id, replace(order, lines=new_lines), now)
        line_reserved.update(reserved)
        line_short.update(short)
        reserved_units = sum(reserved.values())

    edited = tx.load_order(order_id)
    repo.set_routing_key(order_id, routing_key(edited, stored.dest),
                         sum(ln.quantity for ln in edited.lines))  # fmt: skip
    backordered = sum(line_short.values())
    status = stored.status  # an unroutable order stays so: it still has nowhere to go
    if status is not OrderStatus.UNROUTABLE:
        status = OrderStatus.BACKORDERED if backordered else OrderStatus.ROUTED
    tx.set_order_outcome(
        order_id, status=status, backordered_units=backordered,
        shipments=repo.planned_fulfilment_orders(order_id),
        line_reserved=line_reserved, line_backordered=line_short,
    )  # fmt: skip
    data = {
        "actor": actor,
        "changed": [{"line_no": c.line_no, "sku": c.sku, "quantity": c.quantity,
                     "released": c.release} for c in changes],
        "added": [{"line_no": ln.line_no, "sku": ln.sku, "quantity": ln.quantity}
                  for ln in new_lines],
        "released_units": released, "reserved_units": reserved_units, "status": status.value,
    }  # fmt: skip
    tx.emit([Event(ev.ORDER_EDITED, f"order:{order_id}", data)], now)
    repo.ledger("order_edited", f"order:{order_id}", {"order_id": order_id, **data})
    holds.gate(repo, order_id, now=now)
    return EditResult(order_id, status, released, reserved_units, backordered,
                      tuple(ln.line_no for ln in new_lines))  # fmt: skip


def _release_cuts(
    repo: EditRepo, order_id: int, changes: Sequence[LineChange], now: datetime
) -> int:
    """Give back exactly the reduced lines' units, from their newest reservations."""
    held = repo.tx.active_reservations(order_id)
    cuts: list[tuple[int, int]] = []
    for c in changes:
        if c.release:
            mine = [(r.id, r.quantity) for r in held if r.line_no == c.line_no]
            cuts.extend(reservation_cuts(mine, c.release))
    if not cuts:
        return 0
    cut = repo.cut_reservations(order_id, cuts, now)
    units = -sum(q for _, _, q in cut.moves)
    repo.tx.emit([Event(ev.STOCK_RELEASED, f"order:{order_id}", {
        "units": units, "edit": True,
        "reservations": [{"sku": s, "location_id": loc, "quantity": -q} for s, loc, q in cut.moves],
    })], now)  # fmt: skip
    # A fulfilment order the edit left empty is cancelled, with the event every cancellation has.
    repo.tx.emit([
        Event(ev.FULFILMENT_CANCELLED, f"order:{order_id}",
              {"fulfilment_order_id": fo_id, "location_id": loc, "released": taken})
        for fo_id, loc, taken in cut.emptied
    ], now)  # fmt: skip
    return units


def _route_new_lines(
    repo: EditRepo, order_id: int, part: Order, now: datetime
) -> tuple[dict[int, int], dict[int, int]]:
    """Plan and reserve the added lines alone, leaving what the order holds where it is.
    Returns per added line the units reserved and the units backordered."""
    tx = repo.tx
    everything = {ln.line_no: ln.quantity for ln in part.lines}
    stored = tx.get_order(order_id)
    inputs = tx.routing_inputs(part.shop, part.currency)
    version = inputs.active
    trial: tuple[int, str] | None = None
    if inputs.experiment is not None:
        arm, version = inputs.experiment.arm_for(part.external_id)
        trial = (inputs.experiment.id, arm)
    name = version.document.policy if version else inputs.policy
    if stored is None or stored.dest is None or inputs.card is None:
        return {n: 0 for n in everything}, everything
    levels = tx.lock_stock(part.demand())
    candidates = tx.candidates(levels)
    config = RoutingConfig(rate_card=effective_card(inputs.card, None)[0])
    if version is not None:
        candidates, config, _ = apply_version(tx, version, part, candidates, inputs.card, now)
    wanted = Demand(part.demand(), unit_grams(tx, part), stored.dest, part.currency)
    try:
        routing = accept_plan(tx.routing_policy(name), wanted, candidates, config)
    except (UnknownPolicy, PlanBroken):
        return {n: 0 for n in everything}, everything
    routing = replace(routing, explanation=f"Added lines: {routing.explanation}")
    days = version.document.days_for(part.shipping_method) if version else None
    routing = with_services(routing, inputs.card, days, part, now)
    allocations, short = allocate_to_lines(part.lines, routing.shipments)
    tx.reserve(order_id, allocations, now)
    repo.add_fulfilment_orders(order_id, routing, now)
    record_decision(tx, order_id, routing, version, trial, now)
    reserved = {n: 0 for n in everything}
    for a in allocations:
        reserved[a.line_no] += a.quantity
    if allocations:
        shipments = [{"location_id": s.location_id, "items": dict(s.items)}
                     for s in routing.chosen.shipments]  # fmt: skip
        tx.emit([Event(ev.STOCK_RESERVED, f"order:{order_id}", {"shipments": shipments})], now)
    return reserved, {n: short.get(n, 0) for n in everything}
