"""Telling Shopify what aoms did to its orders: fulfilments with tracking, holds and tags.

Each thing to tell is a *push*, queued in the database by the worker that relays aoms's
events (`pushes_for`), once per event, and sent later by `drain` — so a Shopify outage
delays what Shopify shows but loses nothing, and the order's state never waits on Shopify.
The pushes of one order go out one at a time, oldest first (a hold released before the
units ship is released on Shopify before they are fulfilled there). A push that fails is
tried again with a growing wait, up to `MAX_ATTEMPTS`, then marked failed with its error
for a person (`aoms shopify pushes --failed`). Every push is safe to send twice.

- **fulfilment** (a warehouse, 3PL or carrier shipped units): the units' line items are
  found on the order's Shopify fulfillment orders; those assigned to another location than
  the one the units left from are moved there first (`fulfillmentOrderMove`), then one
  fulfillment is made with the tracking (`fulfillmentCreate`). A fulfillment that Shopify
  already has with the same tracking number is not made again; units Shopify no longer has
  open (fulfilled in its admin meanwhile) are reported as `short`, not forced.
- **return** (aoms approved a return it opened, not one that came from Shopify): the units
  are found among the order's returnable fulfillment line items (`returnableFulfillments`)
  and one `returnCreate` is made with Shopify's reason for each; Shopify's return id is kept
  on aoms's return, so Shopify's `returns/*` webhooks find it.
- **hold** / **release** (aoms held an order, or released the hold): the tag
  `aoms-hold-<type>` is added to the order (removed on release), and each of its open
  fulfillment orders is held with the reason and `handle` of that type
  (services.shopify_holds), so nobody fulfils it from Shopify's admin meanwhile.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aoms.domain.errors import AomsError, ShopifyError, ShopifyNotConfigured
from aoms.services.shopify_holds import (
    HoldAdmin,
    handle_for,
    hold_on_shopify,
    hold_type_of,
    release_on_shopify,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
FULFILLABLE = ("OPEN", "IN_PROGRESS")  # FulfillmentOrderStatus values a fulfillment may take
HOLDABLE = ("OPEN", "IN_PROGRESS", "ON_HOLD", "SCHEDULED")
FULFILMENT, HOLD, RELEASE, RETURN = "fulfilment", "hold", "release", "return"
# aoms's return reasons (free words, see domain.returns) -> Shopify's ReturnReason
RETURN_REASONS = {
    "damaged": "DEFECTIVE", "defective": "DEFECTIVE", "wrong_item": "WRONG_ITEM",
    "not_as_described": "NOT_AS_DESCRIBED", "size_too_small": "SIZE_TOO_SMALL",
    "too_small": "SIZE_TOO_SMALL", "size_too_large": "SIZE_TOO_LARGE",
    "too_large": "SIZE_TOO_LARGE", "color": "COLOR", "colour": "COLOR", "style": "STYLE",
    "unwanted": "UNWANTED", "changed_mind": "UNWANTED", "no_longer_needed": "UNWANTED",
}  # fmt: skip


# -- Shopify's side of an order -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShopifyFoLine:
    id: str  # gid://shopify/FulfillmentOrderLineItem/…
    line_item_gid: str  # gid://shopify/LineItem/…
    remaining: int


@dataclass(frozen=True, slots=True)
class ShopifyFo:
    id: str  # gid://shopify/FulfillmentOrder/…
    status: str
    location_gid: str | None
    lines: tuple[ShopifyFoLine, ...]
    holds: tuple[tuple[str, str], ...] = ()  # (hold id, handle) of the holds on it


@dataclass(frozen=True, slots=True)
class ShopifyOrderState:
    fulfillment_orders: tuple[ShopifyFo, ...]
    tracked: Mapping[str, Mapping[str, int]]  # tracking number -> line item gid -> units
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Take:
    """Units to fulfil from one Shopify fulfillment order: its line item id -> units."""

    fo: ShopifyFo
    lines: dict[str, int]


@dataclass(frozen=True, slots=True)
class FulfilmentPlan:
    takes: tuple[Take, ...]
    short: dict[str, int] = field(default_factory=dict)  # line item gid -> units not open
    held: dict[str, int] = field(default_factory=dict)  # line item gid -> units on hold


def plan_fulfilment(
    state: ShopifyOrderState, wanted: Mapping[str, int], location_gid: str | None
) -> FulfilmentPlan:
    """Which fulfillment order line items carry the `wanted` units (line item gid -> units):
    those already at `location_gid` first, then the others in Shopify's order. Units open
    only on a held fulfillment order are `held` (Shopify refuses to fulfil them until the
    hold is released); units open nowhere are `short`."""
    need = {gid: units for gid, units in wanted.items() if units > 0}
    order = sorted(
        state.fulfillment_orders,
        key=lambda f: location_gid is None or f.location_gid != location_gid,
    )
    takes: list[Take] = []
    for fo in order:
        if fo.status not in FULFILLABLE:
            continue
        lines: dict[str, int] = {}
        for line in fo.lines:
            units = min(need.get(line.line_item_gid, 0), line.remaining)
            if units > 0:
                lines[line.id] = lines.get(line.id, 0) + units
                need[line.line_item_gid] -= units
        if lines:
            takes.append(Take(fo, lines))
    held: dict[str, int] = {}
    for fo in state.fulfillment_orders:
        if fo.status != "ON_HOLD":
            continue
        for line in fo.lines:
            units = min(need.get(line.line_item_gid, 0), line.remaining)
            if units > 0:
                held[line.line_item_gid] = held.get(line.line_item_gid, 0) + units
                need[line.line_item_gid] -= units
    short = {gid: units for gid, units in need.items() if units > 0}
    return FulfilmentPlan(tuple(takes), short, held)


# -- what sends them --------------------------------------------------------------------------


class PushAdmin(HoldAdmin, Protocol):
    """The Admin API calls a push makes (adapters.shopify)."""

    def read_order(self, order_gid: str) -> ShopifyOrderState: ...
    def move(self, fo_id: str, location_gid: str, lines: Mapping[str, int]) -> ShopifyFo: ...
    def fulfil(
        self, groups: Sequence[Take], tracking: Mapping[str, str | None], notify: bool
    ) -> str: ...
    def tags_add(self, order_gid: str, tags: Sequence[str]) -> Any: ...
    def tags_remove(self, order_gid: str, tags: Sequence[str]) -> None: ...
    def returnable(self, order_gid: str) -> list[tuple[str, str, int]]:
        """(fulfillment line item id, line item gid, units still returnable)."""
        ...

    def return_create(self, order_gid: str, lines: Sequence[Mapping[str, Any]]) -> str: ...


@dataclass(frozen=True, slots=True)
class Push:
    id: int
    shop: str
    order_id: int
    kind: str
    payload: dict[str, Any]
    attempts: int


class PushRepo(Protocol):
    def claim(self, shops: Sequence[str], now: datetime, limit: int) -> list[Push]: ...
    def done(self, push: Push, result: Mapping[str, Any], now: datetime) -> None: ...
    def failed(self, push: Push, error: str, retry_at: datetime | None, now: datetime) -> None: ...


class NotYet(ShopifyError):
    """Shopify is not ready for the push (its fulfillment orders are held): try later."""

    code = "shopify_not_ready"


def hold_tag(hold_type: str) -> str:
    """The order's tag while aoms holds it for `hold_type`: aoms-hold-awaiting-payment, …"""
    return "aoms-hold-" + handle_for(hold_type).removeprefix("aoms-")


def send(admin: PushAdmin, push: Push) -> dict[str, Any]:
    """Make the push's calls; what Shopify now holds, for the record."""
    p = push.payload
    order_gid = str(p["order_gid"])
    if push.kind == FULFILMENT:
        return _fulfil(admin, order_gid, p)
    if push.kind == RETURN:
        return _open_return(admin, order_gid, p)
    if push.kind == HOLD and p.get("superseded"):
        return {"superseded": "the hold was released since: nothing to hold on Shopify"}
    state = admin.read_order(order_gid)
    tag = hold_tag(str(p["hold_type"]))
    if push.kind == HOLD:
        admin.tags_add(order_gid, [tag])
        held = [
            hold_on_shopify(admin, fo.id, str(p["hold_type"]), notes=p.get("notes"))
            for fo in state.fulfillment_orders
            if fo.status in HOLDABLE and any(line.remaining for line in fo.lines)
        ]
        return {"tag": tag, "holds": held}
    if push.kind == RELEASE:
        if tag in state.tags:
            admin.tags_remove(order_gid, [tag])
        released = [
            fo.id
            for fo in state.fulfillment_orders
            if fo.status == "ON_HOLD" and release_on_shopify(admin, fo.id, str(p["hold_type"]))
        ]
        return {"tag_removed": tag, "released": released}
    raise ValueError(f"unknown push kind {push.kind!r}")


def already_there(
    state: ShopifyOrderState, number: str | None, wanted: Mapping[str, int],
    claimed: Mapping[str, int],
) -> dict[str, int]:  # fmt: skip
    """Of the `wanted` units, those Shopify already shows fulfilled under this tracking number
    that no other push of the order took (`claimed`): a retry of a push whose call went
    through (all of it, or the first of its fulfillments) sends only the rest, and a second
    shipment under the same number is not taken for the first."""
    under = state.tracked.get(number or "", {}) if number else {}
    return {
        gid: min(units, max(0, under.get(gid, 0) - claimed.get(gid, 0)))
        for gid, units in wanted.items()
    }


def _fulfil(admin: PushAdmin, order_gid: str, p: Mapping[str, Any]) -> dict[str, Any]:
    tracking = {k: v for k, v in dict(p.get("tracking") or {}).items() if v}
    state = admin.read_order(order_gid)
    number = tracking.get("number")
    asked = {str(k): int(v) for k, v in dict(p["lines"]).items()}
    there = already_there(state, number, asked, dict(p.get("claimed") or {}))
    wanted = {gid: units - there[gid] for gid, units in asked.items() if units > there[gid]}
    if not wanted:
        return {"already": f"Shopify has these units fulfilled with tracking {number}",
                "fulfilled": asked}  # fmt: skip
    location = p.get("location_gid")
    plan = plan_fulfilment(state, wanted, location)
    rehold = _lift_own_holds(admin, state, plan) if plan.held else {}
    if rehold:  # the parcel left under aoms's own hold: Shopify must hear of it all the same
        state = admin.read_order(order_gid)
        plan = plan_fulfilment(state, wanted, location)
    if plan.held:
        raise NotYet(
            f"{sum(plan.held.values())} unit(s) are on hold on Shopify; fulfilled once released"
        )
    by_location: dict[str | None, list[Take]] = defaultdict(list)
    moved: list[str] = []
    for take in plan.takes:
        if location is not None and take.fo.location_gid != location:
            fo = admin.move(take.fo.id, location, take.lines)
            moved.append(fo.id)
            # the moved fulfillment order's line items carry the same line items, afresh
            units = {ln.line_item_gid: 0 for ln in take.fo.lines}
            for ln in take.fo.lines:
                units[ln.line_item_gid] += take.lines.get(ln.id, 0)
            lines = {
                ln.id: units[ln.line_item_gid]
                for ln in fo.lines
                if units.get(ln.line_item_gid, 0) > 0
            }
            by_location[location].append(Take(fo, lines))
        else:
            by_location[take.fo.location_gid].append(take)
    made = [admin.fulfil(group, tracking, bool(p.get("notify_customer"))) for group in
            by_location.values()]  # fmt: skip
    for fo in admin.read_order(order_gid).fulfillment_orders if rehold else ():
        if fo.id in rehold and any(ln.remaining for ln in fo.lines):  # what is still held
            for hold_type in rehold[fo.id]:
                hold_on_shopify(admin, fo.id, hold_type)
    fulfilled = {gid: units - plan.short.get(gid, 0) for gid, units in asked.items()}
    result: dict[str, Any] = {"fulfillments": made, "moved": moved, "fulfilled": fulfilled}
    if plan.short:
        result["short"] = plan.short
    return result


def _lift_own_holds(
    admin: PushAdmin, state: ShopifyOrderState, plan: FulfilmentPlan
) -> dict[str, list[str]]:
    """Release aoms's own holds on the held fulfillment orders that carry the shipped units,
    when no one else holds them: fulfillment order id -> the aoms hold types released."""
    lifted: dict[str, list[str]] = {}
    for fo in state.fulfillment_orders:
        if fo.status != "ON_HOLD" or not any(ln.line_item_gid in plan.held for ln in fo.lines):
            continue
        if not fo.holds or not all(handle.startswith("aoms-") for _, handle in fo.holds):
            continue  # someone else's hold: theirs to release
        admin.fulfillment_order_release_hold(fo.id, hold_ids=[h for h, _ in fo.holds])
        lifted[fo.id] = [hold_type_of(handle) for _, handle in fo.holds]
    return lifted


def _open_return(admin: PushAdmin, order_gid: str, p: Mapping[str, Any]) -> dict[str, Any]:
    items = admin.returnable(order_gid)
    left = [n for _, _, n in items]  # units still returnable, by item
    lines: list[dict[str, Any]] = []
    short: dict[str, int] = {}
    for want in p["lines"]:
        need = int(want["quantity"])
        reason = str(want.get("reason") or "")
        for i, (fli, line_item, _) in enumerate(items):
            if line_item != want["line_item_gid"] or need == 0 or left[i] == 0:
                continue
            units = min(need, left[i])
            left[i] -= units
            need -= units
            why = RETURN_REASONS.get(reason, "OTHER")
            line: dict[str, Any] = {"fulfillmentLineItemId": fli, "quantity": units,
                                    "returnReason": why}  # fmt: skip
            if reason and reason not in RETURN_REASONS:
                line["returnReasonNote"] = reason
            lines.append(line)
        if need:
            short[str(want["line_item_gid"])] = short.get(str(want["line_item_gid"]), 0) + need
    if not lines:
        raise NotYet("Shopify has none of these units fulfilled and returnable yet")
    result: dict[str, Any] = {"return_gid": admin.return_create(order_gid, lines)}
    if short:
        result["short"] = short
    return result


def retry_wait(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … at most an hour, after the n-th failed attempt."""
    wait: timedelta = FIRST_WAIT * (2 ** max(attempts - 1, 0))
    return min(wait, LONGEST_WAIT)


def drain(
    repo: PushRepo,
    admin_for: Callable[[str], PushAdmin],
    shops: Sequence[str],
    *,
    now: datetime,
    limit: int = 50,
) -> dict[str, int]:
    """Send the pushes that are due for `shops` (at most `limit`), each order's oldest first:
    an order's next push is claimed once the one before it is answered."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    while sum(counts.values()) < limit:
        batch = repo.claim(shops, now, limit - sum(counts.values()))
        if not batch:
            return counts
        for push in batch:
            _send_one(repo, admin_for, push, now, counts)
    return counts


def _send_one(
    repo: PushRepo,
    admin_for: Callable[[str], PushAdmin],
    push: Push,
    now: datetime,
    counts: dict[str, int],
) -> None:
    try:
        result = send(admin_for(push.shop), push)
    except ShopifyNotConfigured as e:  # the token went from the settings: wait for it
        repo.failed(push, str(e), now + LONGEST_WAIT, now)
        counts["retry"] += 1
    except Exception as e:
        attempts = push.attempts + 1
        retry_at = None if attempts >= MAX_ATTEMPTS else now + retry_wait(attempts)
        code = e.code if isinstance(e, AomsError) else type(e).__name__
        log.warning("Shopify push %s (%s) failed: %s", push.id, push.kind, e)
        repo.failed(push, f"{code}: {e}", retry_at, now)
        counts["retry" if retry_at else "failed"] += 1
    else:
        repo.done(push, result, now)
        counts["sent"] += 1
