"""The order lifecycle over HTTP: the review queue of holds, releasing a hold, an order's
state and history, risk assessments, store settings, and order edits."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from aoms.adapters.db import lifecycle_queries as lq
from aoms.adapters.db import queries
from aoms.adapters.db.lifecycle import SqlLifecycleStore
from aoms.bootstrap import Runtime
from aoms.domain.errors import InvalidInput, NotFound
from aoms.domain.lifecycle import (
    HoldKind,
    HoldStatus,
    LifecycleSettings,
    PaymentGate,
    RiskAssessment,
)
from aoms.domain.money import Money
from aoms.domain.orders import OrderStatus
from aoms.entrypoints.api.schemas import _Strict
from aoms.services import holds, order_edits, orders, stock_changes

router = APIRouter(tags=["lifecycle"])
CURSOR = re.compile(r"[0-9]{1,18}")
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Actor = Annotated[str, Field(min_length=1, max_length=255, description="who does it")]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Rt = Annotated[Runtime, Depends(_runtime)]


class ReleaseIn(_Strict):
    actor: Actor
    note: str | None = Field(None, max_length=2000)


class HoldIn(_Strict):
    kind: HoldKind = HoldKind.MANUAL_REVIEW
    reason: str = Field(min_length=1, max_length=2000)
    actor: Actor


class CancelIn(_Strict):
    actor: Actor
    note: str | None = Field(None, max_length=2000)


class FraudIn(_Strict):
    review_at: int = Field(50, ge=1, le=100)
    cancel_at: int = Field(90, ge=1, le=100)
    high_value: Decimal | None = Field(None, gt=0, description="in high_value_currency")
    high_value_currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    high_value_points: int = Field(20, ge=0, le=100)
    velocity_window_hours: int = Field(24, ge=1, le=24 * 90)
    velocity_limit: int = Field(3, ge=1, le=10_000)
    velocity_points: int = Field(25, ge=0, le=100)
    mismatch_points: int = Field(15, ge=0, le=100)
    risky_countries: list[str] = Field(default_factory=list, max_length=250)
    country_points: int = Field(20, ge=0, le=100)


class SettingsIn(_Strict):
    payment_gate: PaymentGate = PaymentGate.PAID
    fraud: FraudIn = Field(default_factory=FraudIn)
    hold_tags: list[str] = Field(default_factory=list, max_length=250)


class FactIn(_Strict):
    description: str = Field(max_length=2000)
    sentiment: Literal["NEGATIVE", "NEUTRAL", "POSITIVE"] = "NEUTRAL"


class ProviderIn(_Strict):
    title: str | None = Field(None, max_length=255)


class AssessmentIn(_Strict):
    """Shopify's OrderRiskAssessment (GraphQL): riskLevel, facts, provider."""

    riskLevel: Literal["HIGH", "MEDIUM", "LOW", "NONE", "PENDING"]
    facts: list[FactIn] = Field(default_factory=list, max_length=100)
    provider: ProviderIn | None = None


class AssessmentsIn(_Strict):
    assessments: list[AssessmentIn] = Field(min_length=1, max_length=50)


class LineQuantityIn(_Strict):
    line_no: int = Field(ge=0, le=2**31 - 1)
    quantity: int = Field(ge=0, le=1_000_000, description="0 removes the line")


class NewLineIn(_Strict):
    sku: str = Field(min_length=1, max_length=255)
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Decimal = Field(ge=0, max_digits=18, decimal_places=6)
    grams: int = Field(0, ge=0, le=10_000_000)
    title: str | None = Field(None, max_length=512)


class EditIn(_Strict):
    actor: Actor
    lines: list[LineQuantityIn] = Field(default_factory=list, max_length=1000)
    add: list[NewLineIn] = Field(default_factory=list, max_length=1000)


class StockChangeIn(_Strict):
    kind: stock_changes.ChangeKind
    sku: str = Field(min_length=1, max_length=255)
    location_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(
        ge=-1_000_000_000, le=1_000_000_000, description="units received, the change, or the count"
    )
    idempotency_key: str = Field(min_length=1, max_length=255)
    reason: str | None = Field(None, min_length=1, max_length=64)
    reference: str | None = Field(None, max_length=255)


class StockChangesIn(_Strict):
    changes: list[StockChangeIn] = Field(min_length=1, max_length=5000)


def _lifecycle(r: Runtime) -> SqlLifecycleStore:
    return SqlLifecycleStore(r.store)


@router.get("/v1/holds")
def list_holds(
    r: Rt,
    status: HoldStatus | None = HoldStatus.OPEN,
    kind: HoldKind | None = None,
    shop: str | None = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The review queue: holds oldest first (open ones unless `status` says otherwise)."""
    after = None
    if cursor is not None:
        if not CURSOR.fullmatch(cursor):
            raise InvalidInput("cursor is not one this API returned", field="cursor")
        after = int(cursor)
    with r.store.read() as conn:
        items, nxt = lq.list_holds(
            conn,
            status=status.value if status else None,
            kind=kind.value if kind else None,
            shop=shop,
            after=after,
            limit=limit,
        )
    return {"items": items, "next_cursor": str(nxt) if nxt is not None else None}


@router.get("/v1/holds/{hold_id}")
def get_hold(hold_id: Id, r: Rt) -> dict[str, Any]:
    with r.store.read() as conn:
        return lq.hold(conn, hold_id)


@router.post("/v1/holds/{hold_id}/release")
def release_hold(hold_id: Id, body: ReleaseIn, r: Rt) -> dict[str, Any]:
    """Release a hold; the order goes on to fulfilment when no other hold is open."""
    with _lifecycle(r).transaction() as repo:
        hold = holds.release_hold(repo, hold_id, actor=body.actor, note=body.note, now=r.clock())
    with r.store.read() as conn:
        return {"hold": lq.hold(conn, hold_id), "order": lq.order_lifecycle(conn, hold.order_id)}


@router.post("/v1/orders/{order_id}/holds", status_code=201)
def place_hold(order_id: Id, body: HoldIn, r: Rt) -> dict[str, Any]:
    """Hold an order by hand (manual review, or any other kind)."""
    with _lifecycle(r).transaction() as repo:
        if repo.tx.get_order(order_id) is None:
            raise NotFound(f"no order {order_id}", field="order_id")
        hold_id = holds.place_hold(
            repo, order_id, body.kind, body.reason, now=r.clock(), detail={"actor": body.actor}
        )
    assert hold_id is not None  # placed by hand: never skipped
    with r.store.read() as conn:
        return lq.hold(conn, hold_id)


@router.post("/v1/orders/{order_id}/review/cancel")
def cancel_from_review(order_id: Id, body: CancelIn, r: Rt) -> dict[str, Any]:
    """Cancel an order from the review queue: its stock is released, its holds closed."""
    with _lifecycle(r).transaction() as repo:
        if repo.tx.get_order(order_id) is None:
            raise NotFound(f"no order {order_id}", field="order_id")
        holds.cancel_with_holds(repo, order_id, now=r.clock(), actor=body.actor, note=body.note)
    with r.store.read() as conn:
        return lq.order_lifecycle(conn, order_id)


@router.get("/v1/orders/{order_id}/lifecycle")
def order_lifecycle(order_id: Id, r: Rt) -> dict[str, Any]:
    """The order's state (on hold, ready for fulfilment …), holds and fraud decisions."""
    with r.store.read() as conn:
        return lq.order_lifecycle(conn, order_id)


@router.get("/v1/orders/{order_id}/history")
def order_history(order_id: Id, r: Rt) -> dict[str, Any]:
    """Everything that happened to the order, oldest first."""
    with r.store.read() as conn:
        return {"order_id": order_id, "items": lq.history(conn, order_id)}


@router.post("/v1/orders/{order_id}/risk-assessments")
def add_risk_assessments(order_id: Id, body: AssessmentsIn, r: Rt) -> dict[str, Any]:
    """Score the order again with Shopify's risk assessments (as GraphQL returns them)."""
    assessments = [RiskAssessment.from_shopify(a.model_dump()) for a in body.assessments]
    with _lifecycle(r).transaction() as repo:
        if repo.tx.get_order(order_id) is None:
            raise NotFound(f"no order {order_id}", field="order_id")
        order = repo.tx.load_order(order_id)
        holds.check_order(
            repo, order_id, order, now=r.clock(), created=False, assessments=assessments
        )
    with r.store.read() as conn:
        return lq.order_lifecycle(conn, order_id)


@router.get("/v1/shops/{domain}/lifecycle")
def get_settings(domain: Annotated[str, Path(min_length=1, max_length=255)], r: Rt) -> Any:
    with _lifecycle(r).transaction() as repo:
        return repo.settings(domain.strip().lower()).as_dict()


@router.put("/v1/shops/{domain}/lifecycle")
def put_settings(
    domain: Annotated[str, Path(min_length=1, max_length=255)], body: SettingsIn, r: Rt
) -> Any:
    """The store's payment gate, fraud thresholds and hold tags."""
    raw = body.model_dump(mode="json")
    fraud = raw["fraud"]
    if (fraud["high_value"] is None) != (fraud["high_value_currency"] is None):
        raise InvalidInput(
            "give high_value and high_value_currency together", field="fraud.high_value"
        )
    settings = LifecycleSettings.from_dict(raw)
    with _lifecycle(r).transaction() as repo:
        repo.put_settings(domain.strip().lower(), settings, r.clock())
    return settings.as_dict()


@router.post("/v1/orders/{order_id}/edit")
def edit_order(order_id: Id, body: EditIn, r: Rt) -> dict[str, Any]:
    """Reduce or remove lines (never below what has shipped) and add lines."""
    quantities: dict[int, int] = {}
    for ln in body.lines:
        if ln.line_no in quantities:
            raise InvalidInput(f"line {ln.line_no} is given twice", field="lines")
        quantities[ln.line_no] = ln.quantity
    with _lifecycle(r).transaction() as repo:
        currency = repo.order_facts(order_id)
        if currency is None:
            raise NotFound(f"no order {order_id}", field="order_id")
        add = [
            order_edits.NewLine(
                n.sku, n.quantity, Money.of(n.unit_price, currency.total.currency), n.grams,
                n.title,
            )
            for n in body.add
        ]  # fmt: skip
        result = order_edits.edit_order(
            repo, order_id, quantities=quantities, add=add, actor=body.actor, now=r.clock()
        )
    with r.store.read() as conn:
        return {
            "released_units": result.released_units,
            "reserved_units": result.reserved_units,
            "backordered_units": result.backordered_units,
            "added_lines": list(result.added_lines),
            "order": queries.order_detail(conn, order_id),
        }


@router.post("/v1/inventory/changes", tags=["inventory"])
def stock_changes_in(body: StockChangesIn, r: Rt) -> dict[str, Any]:
    """A warehouse's receipts, deltas and counts, all or none; a key seen before is skipped.
    Orders waiting for a SKU that gained stock are routed again, oldest first."""
    changes = [stock_changes.StockChange(**c.model_dump()) for c in body.changes]
    with r.store.transaction() as tx:
        done = stock_changes.apply_changes(tx, changes, now=r.clock())
    rerouted: dict[str, int] = {}
    for sku in sorted({a.level.sku for a in done if a.applied and a.level.available > 0}):
        for k, v in orders.retry_waiting(
            r.store,
            geocode=r.geocode,
            clock=r.clock,
            status=OrderStatus.BACKORDERED,
            sku=sku,
            after_route=r.after_route,
        ).items():
            rerouted[k] = rerouted.get(k, 0) + v
    return {
        "items": [
            {
                "sku": a.level.sku,
                "location_id": a.level.location_id,
                "applied": a.applied,
                "on_hand": a.level.on_hand,
                "reserved": a.level.reserved,
                "available": a.level.available,
            }
            for a in done
        ],
        "rerouted": rerouted,
    }
