"""Hand fulfilment orders to warehouses and 3PLs, and apply what they answer.

Each use case runs in one transaction (`HandoffTx`) and is idempotent: a repeat of a message
already applied changes nothing and says so. Stock always changes through `Tx.change_stock`
(one movement per change), with the stock rows locked first.

Cross-system work (`send_pending`) is a chain of small steps, each its own transaction:
1. claim: an `open` FO of an order that is `ready_for_fulfilment` becomes `requested`;
2. deliver: the request goes to the 3PL (HTTP or a file); the FO is idempotent at the 3PL by
   its id, so a retry after a lost answer is safe;
3. record: the answer is applied (received / accepted / rejected).
Undo rule: a delivery that fails for a transient reason (network, timeout, 5xx, 429) is
retried with back-off; after `MAX_ATTEMPTS` failed deliveries, or at once when the 3PL
refuses the request as invalid (another 4xx), the FO is treated as rejected with reason
`other` — its reservation at that location is released and its lines are routed again to the
other locations, in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from aoms.domain import events as ev
from aoms.domain.errors import (
    AomsError,
    Conflict,
    InsufficientStock,
    InvalidInput,
    NotFound,
    NotReadyForFulfilment,
    UnknownLocation,
)
from aoms.domain.events import Event
from aoms.domain.handoff import (
    TERMINAL,
    WONT_SHIP,
    FoLine,
    FoStatus,
    RejectReason,
    check_move,
    claim_lines,
    remaining_by_sku,
    spread,
    status_after_refused_cancel,
    status_after_shipment,
)
from aoms.domain.orders import OrderStatus
from aoms.services import orders
from aoms.services.handoff_ports import (
    Answer,
    DeliveryFailed,
    Fo,
    FulfilmentChannel,
    HandoffRequest,
    HandoffStore,
    HandoffTx,
    Message,
    Readiness,
    Result,
    Shipment,
)
from aoms.services.ports import Clock, Tx

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_AFTER = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))
S = FoStatus


# -- readiness --------------------------------------------------------------------------------


def ready_for_fulfilment(tx: Tx, order_id: int) -> Readiness:
    """The one place that says whether an order may go to a warehouse now: it is routed
    (every unit reserved), not cancelled, and no hold is open on it (payment, fraud, address,
    review, a merchant's rule: docs/lifecycle.md)."""
    stored = tx.get_order(order_id)
    if stored is None:
        return Readiness(False, f"no order {order_id}")
    if stored.status is OrderStatus.CANCELLED:
        return Readiness(False, f"order {order_id} is cancelled")
    if stored.status is not OrderStatus.ROUTED:
        return Readiness(False, f"order {order_id} is {stored.status.value}, not routed")
    held = tx.open_holds(order_id)
    if held:
        return Readiness(False, f"order {order_id} is on hold ({', '.join(held)})")
    return Readiness(True, "routed")


# -- small helpers ------------------------------------------------------------------------------


def _load(htx: HandoffTx, fo_id: int) -> Fo:
    fo = htx.fulfilment_order(fo_id)
    if fo is None:
        raise NotFound(f"no fulfilment order {fo_id}", field="fulfilment_order_id")
    # The order's row first, then the FO's, as every other writer to an order takes them.
    htx.tx.get_order(fo.order_id)
    fo = htx.fulfilment_order(fo_id, lock=True)
    assert fo is not None
    return fo


def adopt(htx: HandoffTx, fo: Fo) -> list[FoLine]:
    """The FO's lines: recorded the first time aoms acts on it, from the order's reservations
    at its location that no other live FO there claims yet."""
    lines = htx.fo_lines(fo.id)
    if lines:
        return lines
    lines = claim_lines(fo.items, htx.unclaimed(fo.order_id, fo.location_id))
    htx.add_fo_lines(fo.id, lines)
    return lines


def units_by_line(parts: Sequence[tuple[int, str, int]]) -> dict[str, int]:
    """(line_no, sku, units) parts as units by order line (keys as text, as JSON keeps them)."""
    units: dict[str, int] = {}
    for line_no, _, n in parts:
        units[str(line_no)] = units.get(str(line_no), 0) + n
    return units


def _event(name: str, fo: Fo, **data: Any) -> Event:
    return Event(
        name,
        f"order:{fo.order_id}",
        {"fulfilment_order_id": fo.id, "location_id": fo.location_id, **data},
    )


def _release_lines(
    htx: HandoffTx, fo: Fo, lines: Sequence[FoLine], reason: str, now: datetime
) -> dict[str, int]:
    """Close what the FO still expects and give its reservation back: exactly the units it
    held at its location. The stock rows must be locked."""
    released: dict[str, int] = {}
    for ln in lines:
        if not ln.remaining:
            continue
        held = htx.take_reservations(
            fo.order_id, ln.line_no, fo.location_id, ln.remaining, "released", now
        )
        if held:
            htx.tx.change_stock(
                ln.sku,
                fo.location_id,
                reserved=-held,
                reason=reason,
                reference=f"fulfilment_order:{fo.id}",
                now=now,
            )
            released[ln.sku] = released.get(ln.sku, 0) + held
        htx.bump_fo_line(fo.id, ln.line_no, closed=ln.remaining)
    return released


def _unchanged(fo: Fo, detail: str) -> Result:
    return Result(fo.id, fo.status, False, detail)


# -- the hand-off ---------------------------------------------------------------------------------


def claim(htx: HandoffTx, fo_id: int, now: datetime) -> HandoffRequest | None:
    """Step 1: an open FO of an order ready for fulfilment becomes `requested`; the request
    to deliver is returned (None when the FO or its order is not ready)."""
    fo = _load(htx, fo_id)
    if fo.status is not S.OPEN:
        return None
    if not ready_for_fulfilment(htx.tx, fo.order_id).ready:
        return None
    conn = htx.connection(fo.location_id)
    if conn is None:
        return None
    lines = adopt(htx, fo)
    check_move(fo.id, fo.status, S.REQUESTED)
    htx.set_fo_status(fo.id, S.REQUESTED)
    htx.save_handoff(fo.id, fo.location_id, now, attempts=0, next_attempt_at=now)
    htx.tx.emit(
        [_event(ev.FULFILMENT_REQUESTED, fo, via=conn.kind, items=remaining_by_sku(lines))], now
    )
    return htx.request_for(fo, lines, now)


def hand_off(htx: HandoffTx, fo_id: int, now: datetime) -> HandoffRequest:
    """Claim one FO by hand (the API and CLI): refuses clearly when it cannot go."""
    fo = _load(htx, fo_id)
    readiness = ready_for_fulfilment(htx.tx, fo.order_id)
    if not readiness.ready:
        raise NotReadyForFulfilment(readiness.reason, field="fulfilment_order_id")
    if htx.connection(fo.location_id) is None:
        raise Conflict(f"location {fo.location_id} has no 3PL connection", field="location_id")
    check_move(fo.id, fo.status, S.REQUESTED)
    request = claim(htx, fo_id, now)
    assert request is not None
    return request


def pending_request(htx: HandoffTx, fo_id: int, now: datetime) -> HandoffRequest | None:
    """The request of a requested FO that the 3PL has not acknowledged yet."""
    fo = _load(htx, fo_id)
    state = htx.handoff(fo_id)
    if fo.status is not S.REQUESTED or state is None or state.delivered:
        return None
    return htx.request_for(fo, adopt(htx, fo), now)


def record_answer(htx: HandoffTx, fo_id: int, answer: Answer, now: datetime) -> Result:
    """Step 3: the 3PL acknowledged the request, and perhaps accepted or rejected it at once."""
    fo = _load(htx, fo_id)
    htx.save_handoff(
        fo.id,
        fo.location_id,
        now,
        delivered_at=now,
        last_error=None,
        external_ref=answer.external_ref,
    )
    if answer.status == "accepted":
        return accept(htx, fo_id, now, external_ref=answer.external_ref)
    if answer.status == "rejected":
        return reject(htx, fo_id, answer.reason or RejectReason.OTHER, now, note=answer.note)
    return Result(fo.id, fo.status, True, "the 3PL received the request")


def record_failure(
    htx: HandoffTx, fo_id: int, error: str, *, permanent: bool, now: datetime
) -> Result:
    """A delivery failed: retry later, or undo (see the module's undo rule)."""
    fo = _load(htx, fo_id)
    state = htx.handoff(fo_id)
    attempts = (state.attempts if state else 0) + 1
    if fo.status is not S.REQUESTED:
        return _unchanged(fo, f"fulfilment order is {fo.status.value}; nothing to retry")
    if permanent or attempts >= MAX_ATTEMPTS:
        htx.save_handoff(
            fo.id, fo.location_id, now, attempts=attempts, last_error=error, next_attempt_at=None
        )
        htx.tx.emit(
            [
                _event(
                    ev.FULFILMENT_HANDOFF_FAILED,
                    fo,
                    error=error,
                    attempts=attempts,
                    undo="rerouted",
                )
            ],
            now,
        )
        why = "refused by the 3PL" if permanent else f"not delivered after {attempts} attempts"
        return reject(htx, fo_id, RejectReason.OTHER, now, note=f"hand-off {why}: {error}")
    wait = RETRY_AFTER[min(attempts - 1, len(RETRY_AFTER) - 1)]
    htx.save_handoff(
        fo.id, fo.location_id, now, attempts=attempts, last_error=error, next_attempt_at=now + wait
    )
    return Result(fo.id, fo.status, True, f"delivery failed ({error}); retry in {wait}")


def accept(htx: HandoffTx, fo_id: int, now: datetime, *, external_ref: str | None = None) -> Result:
    fo = _load(htx, fo_id)
    if fo.status is S.ACCEPTED:
        return _unchanged(fo, "already accepted")
    if fo.status in (S.PARTLY_SHIPPED, S.SHIPPED, S.CANCEL_REQUESTED):
        return _unchanged(fo, f"already {fo.status.value}: acceptance changes nothing")
    check_move(fo.id, fo.status, S.ACCEPTED)
    htx.set_fo_status(fo.id, S.ACCEPTED)
    htx.save_handoff(fo.id, fo.location_id, now, delivered_at=now, external_ref=external_ref)
    htx.tx.emit([_event(ev.FULFILMENT_ACCEPTED, fo, external_ref=external_ref)], now)
    return Result(fo.id, S.ACCEPTED, True, "accepted")


def reject(
    htx: HandoffTx,
    fo_id: int,
    reason: RejectReason,
    now: datetime,
    *,
    note: str | None = None,
    units: Mapping[str, int] | None = None,
) -> Result:
    """The location cannot ship what it still has of this FO. In this one transaction: its
    reservation there is released, its stock adjusted by the reason, and the lines — with
    those of the order's FOs not yet handed off — are routed again without that location.

    `units` are the SKUs (and, for `damaged`, the units) the reason concerns; all of the
    FO's remaining units when not given."""
    fo = _load(htx, fo_id)
    if fo.status is S.REJECTED:
        return _unchanged(fo, "already rejected")
    check_move(fo.id, fo.status, S.REJECTED)
    tx = htx.tx
    lines = adopt(htx, fo)
    left = remaining_by_sku(lines)
    unknown = sorted(set(units or {}) - set(left))
    if unknown:
        raise InvalidInput(
            f"{', '.join(unknown)}: not expected from this fulfilment order", field="lines"
        )
    # a SKU named without units concerns all of its remaining units
    concerned = {k: q or left[k] for k, q in units.items()} if units else dict(left)
    # FOs of the order not handed off yet are planned again together with the rejected lines.
    others = [f for f in htx.order_fos(fo.order_id) if f.status is S.OPEN and f.id != fo.id]
    other_lines = {f.id: adopt(htx, f) for f in others}
    skus = set(left) | {ln.sku for ls in other_lines.values() for ln in ls}
    tx.lock_stock(skus)
    held = orders.held_places(tx, fo.order_id, now)  # before the others are replaced
    need: dict[int, int] = {}
    for ln in lines:
        if ln.remaining:
            need[ln.line_no] = need.get(ln.line_no, 0) + ln.remaining
    _release_lines(htx, fo, lines, "release", now)
    for other in others:
        for ln in other_lines[other.id]:
            if ln.remaining:
                need[ln.line_no] = need.get(ln.line_no, 0) + ln.remaining
        _release_lines(htx, other, other_lines[other.id], "release", now)
        htx.set_fo_status(other.id, S.CANCELLED)  # replaced by the new plan below
    adjusted = _adjust_for(tx, fo, reason, concerned, now)
    htx.set_fo_status(fo.id, S.REJECTED)
    htx.save_handoff(fo.id, fo.location_id, now, reject_reason=reason.value, reject_note=note)
    tx.emit(
        [
            _event(
                ev.FULFILMENT_REJECTED,
                fo,
                reason=reason.value,
                note=note,
                rerouted_lines=need,
                stock=adjusted,
            )
        ],
        now,
    )
    before = {f.id for f in htx.order_fos(fo.order_id)}
    status = _route_again(htx, fo, need, now, held)
    new_ids = sorted({f.id for f in htx.order_fos(fo.order_id)} - before)
    return Result(
        fo.id,
        S.REJECTED,
        True,
        f"rejected ({reason.value}); {sum(need.values())} unit(s) routed again "
        f"without {fo.location_id}",
        new_ids,
        status,
    )


def _adjust_for(
    tx: Tx,
    fo: Fo,
    reason: RejectReason,
    concerned: Mapping[str, int],
    now: datetime,
) -> dict[str, int]:
    """The rejecting location's stock, by the reason: not in stock → its available becomes 0
    for the SKUs; damaged → the units leave on_hand (unsellable). On_hand changes per SKU.
    Read after the FO's reservations there were released (the rows are locked): `reserved`
    is what other orders still hold, which stays."""
    changes: dict[str, int] = {}
    ref = f"fulfilment_order:{fo.id}"
    levels = {lv.sku: lv for lv in tx.lock_stock(concerned) if lv.location_id == fo.location_id}
    for sku in sorted(concerned):
        lv = levels.get(sku)
        if lv is None:
            continue
        if reason is RejectReason.NOT_IN_STOCK:
            drop = lv.on_hand - lv.reserved - lv.safety_stock
            reason_code = "3pl_not_in_stock"
        elif reason is RejectReason.DAMAGED:
            drop = min(concerned[sku], lv.on_hand - lv.reserved)
            reason_code = "damaged_unsellable"
        else:
            continue
        if drop > 0:
            tx.change_stock(
                sku, fo.location_id, on_hand=-drop, reason=reason_code, reference=ref, now=now
            )
            changes[sku] = -drop
    return changes


def _route_again(
    htx: HandoffTx, fo: Fo, need: Mapping[int, int], now: datetime, held: Mapping[str, int]
) -> str | None:
    """Route the given quantities of the order's lines with the existing router, without the
    FO's location (keeping the places `held` since an earlier day); then put the order's
    counters right for the whole order."""
    return _route_part(htx, fo.order_id, need, now, exclude={fo.location_id}, held_before=held)


def _route_part(
    htx: HandoffTx,
    order_id: int,
    need: Mapping[int, int],
    now: datetime,
    *,
    exclude: frozenset[str] | set[str] = frozenset(),
    held_before: Mapping[str, int] | None = None,
) -> str | None:
    tx = htx.tx
    if not need:
        htx.refresh_order_counters(order_id)
        return None
    stored = tx.get_order(order_id)
    assert stored is not None
    if stored.status is OrderStatus.CANCELLED:
        return stored.status.value
    order = tx.load_order(order_id)
    part = replace(
        order,
        lines=tuple(
            replace(ln, quantity=need[ln.line_no]) for ln in order.lines if ln.line_no in need
        ),
    )
    status = orders.route_and_reserve(
        tx, order_id, part, stored.dest, now=now, exclude=exclude, held_before=held_before
    )
    htx.refresh_order_counters(order_id)
    return status.value


def route_rest(htx: HandoffTx, order_id: int, now: datetime) -> OrderStatus:
    """Route again an order some of whose fulfilment orders a warehouse already has: only
    the units that neither left nor are at a warehouse (backordered ones, or ones a stopped
    warehouse gave back), planned together with the fulfilment orders not handed off yet
    (released first). What the warehouses hold stays theirs, and what shipped stays shipped
    (even from a fulfilment order cancelled or rejected after it) — releasing and reserving
    it again would ship it twice."""
    tx = htx.tx
    every = htx.order_fos(order_id)
    live = [f for f in every if f.status not in WONT_SHIP]
    lines = {f.id: adopt(htx, f) for f in live}
    covered: dict[int, int] = {}  # what left, and what the warehouses still have
    for f in every:
        if f.status is S.OPEN:
            continue
        for ln in lines[f.id] if f.id in lines else htx.fo_lines(f.id):
            kept = ln.quantity - ln.closed if f.status not in WONT_SHIP else ln.shipped
            covered[ln.line_no] = covered.get(ln.line_no, 0) + kept
    order = tx.load_order(order_id)
    need = {
        ln.line_no: left
        for ln in order.lines
        if ln.requires_shipping and (left := ln.quantity - covered.get(ln.line_no, 0)) > 0
    }
    tx.lock_stock({ln.sku for ln in order.lines if ln.line_no in need})
    held = orders.held_places(tx, order_id, now)  # before its open ones are replaced
    for f in live:
        if f.status is S.OPEN:
            _release_lines(htx, f, lines[f.id], "release", now)
            htx.set_fo_status(f.id, S.CANCELLED)  # replaced by the plan below
    _route_part(htx, order_id, need, now, held_before=held)
    stored = tx.get_order(order_id)
    assert stored is not None
    return stored.status


def ship_outside(
    htx: HandoffTx,
    order_id: int,
    now: datetime,
    units: Mapping[int, int] | None = None,
    at: str | None = None,
) -> int:
    """The channel says units of the order were fulfilled without a warehouse aoms handed
    them to (e.g. fulfilled in Shopify's admin): they left the building. `units` (order line
    -> units) are those the channel names; None: all the order still holds — then an order a
    warehouse has part of is left to the warehouse's own shipment messages. The units are
    taken from the fulfilment orders not handed off: their reservations are consumed
    (reserved and on_hand both go down, as a shipment's do) and they count as shipped on the
    order's lines; `at`: the aoms location the channel says they left from, taken first.
    Returns the units."""
    tx = htx.tx
    if units is None and tx.handed_off(order_id):
        return 0
    left = dict(units) if units is not None else None
    # Those no warehouse has: open, or partly shipped by the channel itself before.
    open_fos = [
        f for f in htx.order_fos(order_id)
        if f.status is S.OPEN or (f.status is S.PARTLY_SHIPPED and htx.handoff(f.id) is None)
    ]  # fmt: skip
    if at is not None:  # the location the channel names first, then the others
        open_fos.sort(key=lambda f: f.location_id != at)
    lines = {f.id: adopt(htx, f) for f in open_fos}
    tx.lock_stock({ln.sku for ls in lines.values() for ln in ls})
    shipped = 0
    for f in open_fos:
        took: dict[str, int] = {}
        for ln in lines[f.id]:
            n = ln.remaining if left is None else min(ln.remaining, left.get(ln.line_no, 0))
            if not n:
                continue
            if left is not None:
                left[ln.line_no] -= n
            # as a warehouse's shipment does (`ship`): the reservation is taken, not released
            held = htx.take_reservations(order_id, ln.line_no, f.location_id, n, "shipped", now)
            tx.change_stock(ln.sku, f.location_id, on_hand=-n, reserved=-held,
                            reason="shipped", reference=f"order:{order_id}", now=now)  # fmt: skip
            htx.bump_fo_line(f.id, ln.line_no, shipped=n)
            took[ln.sku] = took.get(ln.sku, 0) + n
            shipped += n
        if not took:
            continue
        done = all(ln.remaining == 0 for ln in htx.fo_lines(f.id))
        htx.set_fo_status(f.id, S.SHIPPED if done else S.PARTLY_SHIPPED)
        tx.emit([_event(ev.FULFILMENT_SHIPPED, f, outside=True, items=took)], now)
    htx.refresh_order_counters(order_id)
    return shipped


def cancel_order_at_warehouses(htx: HandoffTx, order_id: int, now: datetime) -> int:
    """The channel cancelled an order a warehouse already has: ask every warehouse holding
    part of it to stop (its units are released when it confirms; what it already shipped
    stays shipped) and release at once what was not handed off. Returns the cancel requests
    sent."""
    results = cancel_rest_of_order(htx, order_id, now)
    return sum(1 for r in results if r.status is S.CANCEL_REQUESTED)


# -- shipments --------------------------------------------------------------------------------


def label_ref(tracking_number: str) -> str:
    """The shipment reference of a parcel that left under a label aoms bought."""
    return f"label:{tracking_number}"


def _recorded(htx: HandoffTx, fo_id: int, shipment: Shipment) -> bool:
    """The same reference twice is one shipment. So is a parcel under a label aoms bought,
    told once by its carrier's tracking and once by the warehouse that sent it: the same
    tracking number."""
    if htx.shipment_known(fo_id, shipment.ref):
        return True
    tn = shipment.tracking_number
    if not tn:
        return False
    if shipment.ref == label_ref(tn):
        return htx.tracking_known(fo_id, tn)  # the warehouse told it first
    return htx.shipment_known(fo_id, label_ref(tn))  # the carrier told it first


def ship(htx: HandoffTx, fo_id: int, shipment: Shipment, now: datetime) -> Result:
    """Units left the building: they leave on_hand where they left from, and the FO's
    reservation of them is consumed. Shipped from another location than the FO's, the
    reservation at the FO's location is released (moved) and the units leave the other
    location's on_hand — so no reservation is left behind anywhere."""
    fo = _load(htx, fo_id)
    if _recorded(htx, fo.id, shipment):
        return _unchanged(fo, f"shipment {shipment.ref} was recorded before")
    if fo.status in TERMINAL:
        raise Conflict(
            f"fulfilment order {fo.id} is {fo.status.value}; nothing more ships",
            field="fulfilment_order_id",
            status=fo.status.value,
        )
    tx = htx.tx
    lines = adopt(htx, fo)
    parts = spread(lines, shipment.items)
    source = shipment.location_id or fo.location_id
    if source != fo.location_id and not tx.known_locations([source]):
        raise UnknownLocation(f"no location {source!r}", field="location_id")
    levels = {(lv.sku, lv.location_id): lv for lv in tx.lock_stock(shipment.items)}
    for sku, units in shipment.items.items():
        on_hand = levels[(sku, source)].on_hand if (sku, source) in levels else 0
        if on_hand < units:
            raise InsufficientStock(
                f"{sku}: {units} unit(s) shipped from {source}, where aoms counts {on_hand} "
                "on hand; send a stock count first",
                field="lines",
                on_hand=on_hand,
            )
    ref = f"fulfilment_order:{fo.id}"
    for line_no, sku, units in parts:
        held = htx.take_reservations(fo.order_id, line_no, fo.location_id, units, "shipped", now)
        if source == fo.location_id:
            tx.change_stock(
                sku, source, on_hand=-units, reserved=-held, reason="ship", reference=ref, now=now
            )
        else:
            if held:
                tx.change_stock(
                    sku,
                    fo.location_id,
                    reserved=-held,
                    reason="reservation_moved",
                    reference=ref,
                    now=now,
                )
            level = tx.change_stock(
                sku, source, on_hand=-units, reason="ship", reference=ref, now=now
            )
            if level.oversold:
                tx.emit(
                    [
                        Event(
                            ev.STOCK_OVERSOLD,
                            f"stock:{sku}@{source}",
                            {
                                "sku": sku,
                                "location_id": source,
                                "oversold": level.oversold,
                                "cause": ref,
                            },
                        )
                    ],
                    now,
                )
        htx.bump_fo_line(fo.id, line_no, shipped=units)
    after = htx.fo_lines(fo.id)
    status = status_after_shipment(fo.status, after)
    check_move(fo.id, fo.status, status)
    htx.set_fo_status(fo.id, status)
    htx.add_shipment(fo.id, shipment, source, now)
    htx.mark_fulfilled(fo.order_id, shipment.shipped_at, now)  # what left can be returned
    htx.refresh_order_counters(fo.order_id)
    tx.emit(
        [
            _event(
                ev.FULFILMENT_SHIPPED,
                fo,
                shipment=shipment.ref,
                shipped_from=source,
                items=dict(shipment.items),
                lines=units_by_line(parts),
                tracking_number=shipment.tracking_number,
                tracking_url=shipment.tracking_url,
                carrier=shipment.carrier,
                status=status.value,
            )
        ],
        now,
    )
    return Result(
        fo.id, status, True, f"{sum(shipment.items.values())} unit(s) shipped from {source}"
    )


# -- cancellation -------------------------------------------------------------------------------


def request_cancel(htx: HandoffTx, fo_id: int, now: datetime) -> Result:
    """Ask for an FO to be stopped. Not handed off yet: cancelled at once, its reservation
    released. Handed off: `cancel_requested` until the 3PL confirms (or refuses)."""
    fo = _load(htx, fo_id)
    if fo.status is S.CANCELLED:
        return _unchanged(fo, "already cancelled")
    if fo.status is S.CANCEL_REQUESTED:
        return _unchanged(fo, "cancellation already requested; waiting for the 3PL")
    if fo.status in TERMINAL:
        raise Conflict(
            f"fulfilment order {fo.id} is {fo.status.value}; nothing to cancel",
            field="fulfilment_order_id",
            status=fo.status.value,
        )
    if fo.status is S.OPEN:
        return _cancel_now(htx, fo, now, "cancelled before hand-off")
    check_move(fo.id, fo.status, S.CANCEL_REQUESTED)
    htx.set_fo_status(fo.id, S.CANCEL_REQUESTED)
    htx.save_handoff(
        fo.id,
        fo.location_id,
        now,
        cancel_from=fo.status.value,
        next_attempt_at=now,
        cancel_attempts=0,
        cancel_delivered_at=None,
    )
    htx.tx.emit([_event(ev.FULFILMENT_CANCEL_REQUESTED, fo, was=fo.status.value)], now)
    return Result(fo.id, S.CANCEL_REQUESTED, True, "cancellation requested from the 3PL")


def confirm_cancel(htx: HandoffTx, fo_id: int, now: datetime) -> Result:
    """The 3PL stopped the FO: what it had not shipped is released, exactly. One a hold on
    its order asked to stop (not a cancellation: the order still wants the units) has them
    routed and reserved again at once, in this transaction (`route_rest`); the new FOs are
    handed off as any others, once no hold is open."""
    fo = _load(htx, fo_id)
    if fo.status is S.CANCELLED:
        return _unchanged(fo, "already cancelled: nothing changed")
    result = _cancel_now(htx, fo, now, "cancelled by the 3PL")
    stored = htx.tx.get_order(fo.order_id)
    if stored is None or stored.status is OrderStatus.CANCELLED:
        return result
    if not htx.stopped_by_hold(fo.order_id, fo.id):
        return result
    before = {f.id for f in htx.order_fos(fo.order_id)}
    status = route_rest(htx, fo.order_id, now)
    new_ids = sorted({f.id for f in htx.order_fos(fo.order_id)} - before)
    detail = f"{result.detail}; held back by a hold: routed again"
    return replace(result, detail=detail, new_fo_ids=new_ids, order_status=status.value)


def _cancel_now(htx: HandoffTx, fo: Fo, now: datetime, detail: str) -> Result:
    check_move(fo.id, fo.status, S.CANCELLED)
    lines = adopt(htx, fo)
    htx.tx.lock_stock(remaining_by_sku(lines))
    released = _release_lines(htx, fo, lines, "release", now)
    htx.set_fo_status(fo.id, S.CANCELLED)
    htx.save_handoff(fo.id, fo.location_id, now, cancel_delivered_at=now)
    htx.refresh_order_counters(fo.order_id)
    htx.tx.emit([_event(ev.FULFILMENT_CANCELLED, fo, released=released)], now)
    return Result(fo.id, S.CANCELLED, True, f"{detail}; {sum(released.values())} unit(s) released")


def refuse_cancel(htx: HandoffTx, fo_id: int, now: datetime, note: str | None = None) -> Result:
    """The 3PL cannot stop it (already packed or shipped): back to where it was."""
    fo = _load(htx, fo_id)
    if fo.status is not S.CANCEL_REQUESTED:
        return _unchanged(fo, f"no cancellation pending (fulfilment order is {fo.status.value})")
    state = htx.handoff(fo.id)
    before = state.cancel_from if state and state.cancel_from else S.REQUESTED
    status = status_after_refused_cancel(htx.fo_lines(fo.id), before)
    check_move(fo.id, fo.status, status)
    htx.set_fo_status(fo.id, status)
    htx.save_handoff(fo.id, fo.location_id, now, cancel_delivered_at=now)
    htx.tx.emit([_event(ev.FULFILMENT_CANCEL_REFUSED, fo, note=note, status=status.value)], now)
    return Result(fo.id, status, True, f"the 3PL refused to cancel: {note or 'no reason given'}")


def record_cancel_failure(htx: HandoffTx, fo_id: int, error: str, *, now: datetime) -> Result:
    """A cancel request did not reach the 3PL: retried like a request (30 s, 2 min, then every
    10 min). After `MAX_ATTEMPTS` it is no longer sent by itself: the FO stays
    `cancel_requested` (nothing is released while the 3PL may still ship it) and a
    `fulfilment_order.handoff_failed` event asks a person to settle it with the 3PL."""
    fo = _load(htx, fo_id)
    state = htx.handoff(fo_id)
    attempts = (state.cancel_attempts if state else 0) + 1
    if attempts >= MAX_ATTEMPTS:
        htx.save_handoff(
            fo.id,
            fo.location_id,
            now,
            cancel_attempts=attempts,
            last_error=error,
            next_attempt_at=None,
        )
        htx.tx.emit(
            [
                _event(
                    ev.FULFILMENT_HANDOFF_FAILED,
                    fo,
                    error=error,
                    attempts=attempts,
                    step="cancel",
                    undo="none: settle with the 3PL",
                )
            ],
            now,
        )
        return Result(
            fo.id,
            fo.status,
            True,
            f"cancel request not delivered after {attempts} attempts; settle it with the 3PL",
        )
    wait = RETRY_AFTER[min(attempts - 1, len(RETRY_AFTER) - 1)]
    htx.save_handoff(
        fo.id,
        fo.location_id,
        now,
        cancel_attempts=attempts,
        last_error=error,
        next_attempt_at=now + wait,
    )
    return Result(fo.id, fo.status, True, f"cancel request failed ({error}); retry in {wait}")


def record_cancel_answer(htx: HandoffTx, fo_id: int, answer: Answer, now: datetime) -> Result:
    if answer.status == "cancelled":
        return confirm_cancel(htx, fo_id, now)
    if answer.status == "cancel_refused":
        return refuse_cancel(htx, fo_id, now, answer.note)
    fo = _load(htx, fo_id)
    htx.save_handoff(fo.id, fo.location_id, now, cancel_delivered_at=now)
    return Result(fo.id, fo.status, True, "the 3PL received the cancel request")


def cancel_rest_of_order(htx: HandoffTx, order_id: int, now: datetime) -> list[Result]:
    """Ask for every live FO of the order to be stopped (what already shipped stays shipped)."""
    if htx.tx.get_order(order_id) is None:
        raise NotFound(f"no order {order_id}", field="order_id")
    return [
        request_cancel(htx, fo.id, now)
        for fo in htx.order_fos(order_id)
        if fo.status not in TERMINAL
    ]


# -- split and merge ----------------------------------------------------------------------------


def split(htx: HandoffTx, fo_id: int, units: Mapping[str, int], now: datetime) -> Result:
    """Move some units of an FO not handed off yet into a new FO at the same location (to
    send them separately). The reservations stay where they are: they belong to the order's
    lines at the location, which both FOs share."""
    fo = _load(htx, fo_id)
    if fo.status is not S.OPEN:
        raise Conflict(
            f"fulfilment order {fo.id} is {fo.status.value}; only open ones split",
            field="fulfilment_order_id",
        )
    lines = adopt(htx, fo)
    parts = spread(lines, units)
    if sum(q for _, _, q in parts) == sum(ln.remaining for ln in lines):
        raise InvalidInput("a split must leave something in the original", field="lines")
    moved = [FoLine(line_no, sku, q) for line_no, sku, q in parts]
    new_id = htx.insert_fo(replace(fo, items=dict(units), shipping_minor=0, handling_minor=0), now)
    for line_no, _, q in parts:
        htx.bump_fo_line(fo.id, line_no, closed=q)
    # The original keeps what was not moved: its items say so too (labels are packed from them).
    htx.set_fo_items(fo.id, remaining_by_sku(htx.fo_lines(fo.id)))
    htx.add_fo_lines(new_id, moved)
    htx.refresh_order_counters(fo.order_id)
    htx.tx.emit([_event(ev.FULFILMENT_SPLIT, fo, into=new_id, items=dict(units))], now)
    return Result(
        fo.id,
        fo.status,
        True,
        f"split: {sum(units.values())} unit(s) now in fulfilment order {new_id}",
        [new_id],
    )


def merge(htx: HandoffTx, fo_ids: Sequence[int], now: datetime) -> Result:
    """Join open FOs of one order at one location into one (one parcel instead of several)."""
    if len(set(fo_ids)) < 2:
        raise InvalidInput(
            "give at least two fulfilment orders to merge", field="fulfilment_order_ids"
        )
    fos = [_load(htx, i) for i in sorted(set(fo_ids))]
    first = fos[0]
    if any(f.order_id != first.order_id or f.location_id != first.location_id for f in fos):
        raise InvalidInput(
            "only fulfilment orders of one order at one location merge",
            field="fulfilment_order_ids",
        )
    if any(f.status is not S.OPEN for f in fos):
        raise Conflict("only open fulfilment orders merge", field="fulfilment_order_ids")
    gathered: dict[int, FoLine] = {}
    for f in fos:
        for ln in adopt(htx, f):
            if ln.remaining:
                got = gathered.get(ln.line_no)
                q = ln.remaining + (got.quantity if got else 0)
                gathered[ln.line_no] = FoLine(ln.line_no, ln.sku, q)
            htx.bump_fo_line(f.id, ln.line_no, closed=ln.remaining)
        htx.set_fo_status(f.id, S.CANCELLED)
    items = remaining_by_sku(list(gathered.values()))
    merged = replace(
        first,
        items=items,
        shipping_minor=sum(f.shipping_minor for f in fos),
        handling_minor=sum(f.handling_minor for f in fos),
        weight_g=sum(f.weight_g for f in fos),
    )
    new_id = htx.insert_fo(merged, now)
    htx.add_fo_lines(new_id, sorted(gathered.values(), key=lambda x: x.line_no))
    htx.refresh_order_counters(first.order_id)
    htx.tx.emit(
        [_event(ev.FULFILMENT_MERGED, first, merged=[f.id for f in fos], into=new_id, items=items)],
        now,
    )
    return Result(new_id, S.OPEN, True, f"merged {len(fos)} fulfilment orders", [new_id])


# -- messages from a 3PL --------------------------------------------------------------------------


def apply_message(htx: HandoffTx, location_id: str, msg: Message, now: datetime) -> dict[str, Any]:
    """Apply a 3PL's message once: a repeat of its id returns the first outcome unchanged."""
    fo = htx.fulfilment_order(msg.fo_id)
    if fo is None or fo.location_id != location_id:
        raise NotFound(
            f"no fulfilment order {msg.fo_id} at {location_id}", field="fulfilment_order_id"
        )
    _load(htx, msg.fo_id)  # locked: a concurrent repeat of this message waits, then sees it
    earlier = htx.message_outcome(location_id, msg.message_id)
    if earlier is not None:
        return {**earlier, "duplicate": True}
    if msg.type == "accepted":
        result = accept(htx, msg.fo_id, now, external_ref=msg.external_ref)
    elif msg.type == "rejected":
        result = reject(
            htx, msg.fo_id, msg.reason or RejectReason.OTHER, now, note=msg.note, units=msg.units
        )
    elif msg.type == "shipped":
        if msg.shipment is None:
            raise InvalidInput("a shipped message needs its shipment", field="shipment")
        result = ship(htx, msg.fo_id, msg.shipment, now)
    elif msg.type == "cancelled":
        result = confirm_cancel(htx, msg.fo_id, now)
    elif msg.type == "cancel_refused":
        result = refuse_cancel(htx, msg.fo_id, now, msg.note)
    else:
        raise InvalidInput(f"unknown message type {msg.type!r}", field="type")
    outcome = {**result.as_dict(), "duplicate": False}
    htx.save_message(location_id, msg.message_id, msg.type, outcome, now)
    return outcome


# -- the chain, step by step ----------------------------------------------------------------


@dataclass
class SendReport:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    undone: int = 0
    cancels_sent: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "delivered": self.delivered,
            "retrying": self.retrying,
            "undone": self.undone,
            "cancels_sent": self.cancels_sent,
            "failed": self.failed,
        }


def send_pending(
    store: HandoffStore,
    channels: Mapping[str, FulfilmentChannel],
    *,
    clock: Clock,
    limit: int = 200,
) -> SendReport:
    """Claim the FOs ready to go, deliver each request, record each answer; deliver pending
    cancel requests. Each step is its own transaction, so a failure in one loses nothing."""
    report = SendReport()
    for fo_id in store.fos_to_claim(limit):
        try:
            with store.handoff_transaction() as htx:
                if claim(htx, fo_id, clock()) is not None:
                    report.claimed += 1
        except AomsError as exc:
            report.failed.append(f"fulfilment order {fo_id}: {exc.message}")
    for fo_id in store.fos_to_deliver(clock(), limit):
        _deliver(store, channels, fo_id, clock, report)
    for fo_id in store.cancels_to_deliver(clock(), limit):
        _deliver_cancel(store, channels, fo_id, clock, report)
    return report


def _deliver(
    store: HandoffStore,
    channels: Mapping[str, FulfilmentChannel],
    fo_id: int,
    clock: Clock,
    report: SendReport,
) -> None:
    with store.handoff_transaction() as htx:
        request = pending_request(htx, fo_id, clock())
        conn = htx.connection(request.location_id) if request else None
    if request is None or conn is None:
        return
    try:
        answer = channels[conn.kind].send_request(conn, request)
    except DeliveryFailed as exc:
        with store.handoff_transaction() as htx:
            result = record_failure(htx, fo_id, str(exc), permanent=exc.permanent, now=clock())
        if result.status is S.REJECTED:
            report.undone += 1
        else:
            report.retrying += 1
        return
    with store.handoff_transaction() as htx:
        record_answer(htx, fo_id, answer, clock())
    report.delivered += 1


def _deliver_cancel(
    store: HandoffStore,
    channels: Mapping[str, FulfilmentChannel],
    fo_id: int,
    clock: Clock,
    report: SendReport,
) -> None:
    with store.handoff_transaction() as htx:
        fo = htx.fulfilment_order(fo_id)
        conn = htx.connection(fo.location_id) if fo else None
    if fo is None or conn is None or fo.status is not S.CANCEL_REQUESTED:
        return
    try:
        answer = channels[conn.kind].send_cancel(conn, fo_id, clock())
    except DeliveryFailed as exc:
        with store.handoff_transaction() as htx:
            record_cancel_failure(htx, fo_id, str(exc), now=clock())
        report.failed.append(f"cancel of fulfilment order {fo_id}: {exc}")
        return
    with store.handoff_transaction() as htx:
        record_cancel_answer(htx, fo_id, answer, clock())
    report.cancels_sent += 1
