"""Returns, refunds, exchanges and return policies over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import Field

from aoms.adapters.db import queries
from aoms.adapters.db import returns as db
from aoms.adapters.db.returns import SqlReturnStore, SqlReturnsTx
from aoms.adapters.db.store import SqlTx
from aoms.adapters.return_labels import valid_tracking_number
from aoms.bootstrap import Runtime
from aoms.domain.errors import AomsError, InvalidInput, UnknownReturn
from aoms.domain.money import Money
from aoms.domain.refunds import Fee
from aoms.domain.returns import Disposition, RefundDestination, ReturnPolicy
from aoms.entrypoints.api.schemas import Amount, PaymentIn, Time, _Strict
from aoms.services import refunds
from aoms.services import returns as svc
from aoms.services.returns_ports import NewPayment

log = logging.getLogger("aoms.api.returns")
router = APIRouter(tags=["returns"])
OrderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ReturnId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Reason = Annotated[str, Field(min_length=1, max_length=64, examples=["too_small", "damaged"])]
T = TypeVar("T")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Rt = Annotated[Runtime, Depends(_runtime)]


def record_order_payments(
    tx: SqlTx, order_id: int, payments: Sequence[PaymentIn], now: datetime
) -> None:
    """Called by POST /v1/orders in its own transaction: the payments commit with the order."""
    rtx = SqlReturnsTx(tx)
    stored = rtx.core.get_order(order_id)
    assert stored is not None
    refunds.record_payments(
        rtx,
        order_id,
        [
            NewPayment(p.method, Money.of(p.amount, stored.currency), p.external_id)
            for p in payments
        ],
        source="channel",
        now=now,
    )


def _write(r: Runtime, work: Callable[[SqlReturnsTx], T]) -> T:
    with SqlReturnStore(r.store).writing() as rtx:
        return work(rtx)


def _publish(r: Runtime, refund_ids: Sequence[int | None]) -> None:
    """After commit: tell the channel of each new refund; its id is stored so the refunds/create
    webhook that follows is recognised. A failure is logged and never undoes the refund, which
    stays without an external id (the mark in its note still lets its echo be recognised)."""
    for refund_id in refund_ids:
        if refund_id is None:
            continue
        with r.store.read() as conn:
            push = db.refund_to_push(conn, refund_id)
        if push is None:
            continue
        try:
            external = r.refund_publisher.publish_refund(push)
        except AomsError as exc:
            log.warning("refund %s could not be pushed: %s", refund_id, exc.message)
            continue
        except Exception:  # the refund is committed: a failing channel must not undo the answer
            log.exception("refund %s could not be pushed", refund_id)
            continue
        if external is not None:
            with SqlReturnStore(r.store).writing() as rtx:
                rtx.set_refund_external_id(refund_id, external)


def _detail(r: Runtime, return_id: int) -> dict[str, Any]:
    with r.store.read() as conn:
        found = db.return_detail(conn, return_id)
        if found is None:
            raise UnknownReturn(f"no return {return_id}", field="return_id")
        if found["refund_id"] is not None:
            found["refund"] = next(
                (
                    x
                    for x in db.refunds_of_order(conn, found["order_id"])
                    if x["id"] == found["refund_id"]
                ),
                None,
            )
        return found


# -- policy ----------------------------------------------------------------------------------


Names = list[Annotated[str, Field(min_length=1, max_length=255)]]
Days = Annotated[int, Field(ge=0, le=3650, strict=True)]


class PolicyFieldsIn(_Strict):
    """Return policy fields. Left out: the default (in a market: the store's own value)."""

    window_days: Days | None = Field(None, description="days from delivery (default 30)")
    expected_transit_days: Days | None = Field(
        None, description="added to the fulfilment date when the delivery date is unknown (5)"
    )
    final_sale_tags: Names | None = Field(None, description='product tags (["final-sale"])')
    final_sale_skus: Names | None = None
    photo_reasons: Names | None = Field(None, description="reasons reviewed unless photos came")
    inspection_reasons: Names | None = Field(None, description="reasons always reviewed")
    fee_free_reasons: Names | None = Field(None, description="the merchant's fault: no fees")
    return_shipping_fee: Amount | None = Field(None, description="per return")
    restocking_fee_percent: Amount | None = Field(None, description="of the items refunded")
    restocking_fee_per_unit: Amount | None = None
    free_return_tags: Names | None = Field(None, description="customer tags that waive fees")
    refund_shipping: bool | None = None
    refund_timing: Literal["label_scan", "receipt", "inspection"] | None = None
    refund_to: RefundDestination | None = None
    store_credit_bonus_percent: Amount | None = None
    payment_order: Names | None = Field(None, description="methods refunded first, in order")
    exchange_deadline_days: Days | None = None


class ReturnPolicyIn(PolicyFieldsIn):
    markets: dict[Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")], PolicyFieldsIn] | None = Field(
        None, description="per country code (the shipping address's), fields that differ"
    )

    def as_document(self) -> dict[str, Any]:
        doc = self.model_dump(mode="json", exclude_none=True, exclude={"markets"})
        if self.markets:
            doc["markets"] = {
                k: v.model_dump(mode="json", exclude_none=True) for k, v in self.markets.items()
            }
        return doc


@router.put("/v1/shops/{domain}/return-policy")
def put_return_policy(
    domain: Annotated[str, Path(min_length=1, max_length=255)], body: ReturnPolicyIn, r: Rt
) -> dict[str, Any]:
    """Set the store's return policy (see docs/returns.md); fields left out take their
    defaults, and `markets` overrides any of them per country code."""
    policy = ReturnPolicy.from_dict(body.as_document())
    shop = domain.strip().lower().rstrip(".")
    _write(r, lambda rtx: rtx.set_return_policy(shop, policy, r.clock()))
    return {"shop": shop, **policy.as_dict()}


@router.get("/v1/shops/{domain}/return-policy")
def get_return_policy(
    domain: Annotated[str, Path(min_length=1, max_length=255)], r: Rt
) -> dict[str, Any]:
    shop = domain.strip().lower().rstrip(".")
    with r.store.read() as conn:
        policy = db.policy_of(conn, shop)
    return {"shop": shop, **policy.as_dict()}


# -- payments and delivery -------------------------------------------------------------------


class PaymentsIn(_Strict):
    payments: list[PaymentIn] = Field(min_length=1, max_length=50)


@router.post("/v1/orders/{order_id}/payments", tags=["orders"])
def post_payments(order_id: OrderId, body: PaymentsIn, r: Rt) -> dict[str, Any]:
    with r.store.transaction() as tx:
        record_order_payments(tx, order_id, body.payments, r.clock())
    with r.store.read() as conn:
        return {"items": db.payments_of_order(conn, order_id)}


class DeliveredIn(_Strict):
    delivered_at: Time | None = Field(None, description="when the customer got it (default: now)")
    fulfilled_at: Time | None = Field(None, description="when it left the location")


@router.post("/v1/orders/{order_id}/delivered", tags=["orders"])
def post_delivered(order_id: OrderId, body: DeliveredIn, r: Rt) -> dict[str, Any]:
    """Record that the order's units reached the customer: they can be returned from now."""
    _write(
        r,
        lambda rtx: refunds.mark_delivered(
            rtx,
            order_id,
            delivered_at=body.delivered_at,
            fulfilled_at=body.fulfilled_at,
            source="api",
            now=r.clock(),
        ),
    )
    return {"order_id": order_id, "delivered": True}


# -- refunds ---------------------------------------------------------------------------------


class RefundLineIn(_Strict):
    line_no: int = Field(ge=1, le=100_000)
    quantity: int = Field(ge=1, le=100_000)
    restock_location_id: str | None = Field(None, min_length=1, max_length=64)


class FeeIn(_Strict):
    kind: str = Field(min_length=1, max_length=32, examples=["restocking"])
    amount: Amount


class RefundIn(_Strict):
    lines: list[RefundLineIn] = Field(default_factory=list, max_length=500)
    refund_shipping: bool = False
    fees: list[FeeIn] = Field(default_factory=list, max_length=20)
    refund_to: RefundDestination = RefundDestination.ORIGINAL
    idempotency_key: str | None = Field(None, max_length=255)


@router.get("/v1/orders/{order_id}/refunds", tags=["orders"])
def get_refunds(order_id: OrderId, r: Rt) -> dict[str, Any]:
    """The order's refunds and payments, and what each line can still refund."""
    with r.store.read() as conn:
        queries.order_detail(conn, order_id)  # 404 for an unknown order
        refunds = db.refunds_of_order(conn, order_id)
        payments = db.payments_of_order(conn, order_id)
    return {"refunds": refunds, "payments": payments}


def _refund_command(r: Runtime, order_id: int, body: RefundIn) -> refunds.RefundOrder:
    with r.store.read() as conn:
        currency = queries.order_detail(conn, order_id)["currency"]
    return refunds.RefundOrder(
        order_id=order_id,
        lines=[
            refunds.RefundLineRequest(x.line_no, x.quantity, x.restock_location_id)
            for x in body.lines
        ],
        refund_shipping=body.refund_shipping,
        fees=[Fee(f.kind, Money.of(f.amount, currency)) for f in body.fees],
        refund_to=body.refund_to,
        idempotency_key=body.idempotency_key,
    )


@router.post("/v1/orders/{order_id}/refunds/preview", tags=["orders"])
def post_refund_preview(order_id: OrderId, body: RefundIn, r: Rt) -> dict[str, Any]:
    """What the same body would refund, line by line and per payment; nothing is refunded."""
    cmd = _refund_command(r, order_id, body)
    got = _write(r, lambda rtx: refunds.preview_refund(rtx, cmd))
    q = got.quote
    return {
        "currency": q.currency,
        "lines": [
            {
                "line_no": ln.line_no,
                "sku": ln.sku,
                "units": ln.units,
                "goods": str(ln.goods.amount),
                "tax": str(ln.tax.amount),
                "total": str(ln.total.amount),
            }
            for ln in q.lines
        ],
        "items": str(q.items.amount),
        "shipping": str(q.shipping.amount),
        "shipping_tax": str(q.shipping_tax.amount),
        "fee_lines": [{"kind": f.kind, "amount": str(f.amount.amount)} for f in q.fees],
        "total": str(q.total.amount),
        "payments": [
            {"payment_id": p.payment_id or None, "method": p.method, "amount": str(p.amount.amount)}
            for p in got.payments
        ],
        "store_credit_bonus": str(got.bonus.amount),
    }


@router.post("/v1/orders/{order_id}/refunds", tags=["orders"], status_code=201)
def post_refund(order_id: OrderId, body: RefundIn, r: Rt) -> dict[str, Any]:
    """Refund units (and the shipping) of an order directly, restocking them where named."""
    cmd = _refund_command(r, order_id, body)
    result = _write(r, lambda rtx: refunds.refund_order(rtx, cmd, now=r.clock()))
    _publish(r, [result.refund_id])
    with r.store.read() as conn:
        refund = next(x for x in db.refunds_of_order(conn, order_id) if x["id"] == result.refund_id)
    return {"applied": result.applied, "refund": refund}


# -- returns ---------------------------------------------------------------------------------


class ReturnItemIn(_Strict):
    line_no: int = Field(ge=1, le=100_000)
    quantity: int = Field(1, ge=1, le=100_000)
    reason: Reason
    photos: list[Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=20, description="links to the customer's photos"
    )


class ExchangeIn(_Strict):
    sku: str = Field(min_length=1, max_length=255)
    quantity: int = Field(1, ge=1, le=100_000)
    unit_price: Amount
    tax: Amount = "0"
    instant: bool = False
    title: str | None = Field(None, max_length=512)


class ReturnIn(_Strict):
    order_id: int = Field(ge=1, le=2**63 - 1)
    items: list[ReturnItemIn] = Field(min_length=1, max_length=500)
    customer_tags: list[Annotated[str, Field(max_length=255)]] = Field(
        default_factory=list, max_length=250
    )
    refund_to: RefundDestination | None = None
    refund_shipping: bool | None = Field(None, description="override the policy's rule")
    exchange: ExchangeIn | None = None
    external_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="the channel's return id (Shopify's), so its returns/* webhooks find it; "
        "a second request with the same id answers the first return",
    )


@router.post("/v1/returns", status_code=201)
def post_return(body: ReturnIn, r: Rt) -> dict[str, Any]:
    """Open a return; the store's policy approves it, rejects it with reasons, or sends it to
    review (the answer's `status`)."""
    with r.store.read() as conn:
        currency = queries.order_detail(conn, body.order_id)["currency"]
    x = body.exchange
    cmd = svc.RequestReturn(
        order_id=body.order_id,
        items=[
            svc.ItemRequest(i.line_no, i.quantity, i.reason, bool(i.photos)) for i in body.items
        ],
        customer_tags=body.customer_tags,
        refund_to=body.refund_to,
        refund_shipping=body.refund_shipping,
        exchange=svc.ExchangeRequest(
            x.sku,
            Money.of(x.unit_price, currency),
            Money.of(x.tax, currency),
            x.quantity,
            x.instant,
            x.title,
        )
        if x
        else None,
        external_id=body.external_id,
    )
    return_id = _write(
        r, lambda rtx: svc.request_return(rtx, cmd, geocode=r.geocode, now=r.clock())
    )
    return _detail(r, return_id)


@router.get("/v1/returns")
def get_returns(
    r: Rt,
    order_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    with r.store.read() as conn:
        return {"items": db.list_returns(conn, order_id=order_id, status=status, limit=limit)}


@router.get("/v1/returns/{return_id}")
def get_return(return_id: ReturnId, r: Rt) -> dict[str, Any]:
    return _detail(r, return_id)


class ReviewIn(_Strict):
    decision: Literal["approve", "reject"]
    note: str = Field("", max_length=2000)


@router.post("/v1/returns/{return_id}/review")
def post_review(return_id: ReturnId, body: ReviewIn, r: Rt) -> dict[str, Any]:
    _write(
        r,
        lambda rtx: svc.review_return(
            rtx,
            return_id,
            approve=body.decision == "approve",
            note=body.note,
            geocode=r.geocode,
            now=r.clock(),
        ),
    )
    return _detail(r, return_id)


@router.post("/v1/returns/{return_id}/cancel")
def post_cancel(return_id: ReturnId, r: Rt) -> dict[str, Any]:
    _write(r, lambda rtx: svc.cancel_return(rtx, return_id, now=r.clock()))
    return _detail(r, return_id)


@router.post("/v1/returns/{return_id}/label")
def post_label(return_id: ReturnId, r: Rt) -> dict[str, Any]:
    """Issue the return label (the built-in carrier makes a ZPL label and a tracking number)."""
    _write(r, lambda rtx: svc.issue_label(rtx, return_id, carrier=r.return_carrier, now=r.clock()))
    return _detail(r, return_id)


@router.get("/v1/returns/{return_id}/label", response_class=PlainTextResponse)
def get_label(return_id: ReturnId, r: Rt) -> PlainTextResponse:
    with r.store.read() as conn:
        label = db.label_of(conn, return_id)
    if label is None:
        raise UnknownReturn(f"return {return_id} has no label", field="return_id")
    return PlainTextResponse(label, media_type="application/zpl")


class ScanIn(_Strict):
    tracking_number: str = Field(min_length=1, max_length=64)


@router.post("/v1/returns/scans")
def post_scan(body: ScanIn, r: Rt) -> dict[str, Any]:
    """The carrier scanned a return parcel (by its tracking number): it is in transit."""
    if not valid_tracking_number(body.tracking_number):
        raise InvalidInput(
            "not a return tracking number (its check digit is wrong)", field="tracking_number"
        )
    with r.store.read() as conn:
        return_id = db.return_by_tracking(conn, body.tracking_number)
    if return_id is None:
        raise UnknownReturn(
            f"no return has tracking number {body.tracking_number}", field="tracking_number"
        )
    refund_id = _write(r, lambda rtx: svc.scan_label(rtx, return_id, now=r.clock()))
    _publish(r, [refund_id])
    return _detail(r, return_id)


class ReceiveIn(_Strict):
    location_id: str = Field(min_length=1, max_length=64)


@router.post("/v1/returns/{return_id}/receive")
def post_receive(return_id: ReturnId, body: ReceiveIn, r: Rt) -> dict[str, Any]:
    refund_id = _write(
        r,
        lambda rtx: svc.receive_return(
            rtx, return_id, location_id=body.location_id, geocode=r.geocode, now=r.clock()
        ),
    )
    _publish(r, [refund_id])
    return _detail(r, return_id)


class DispositionIn(_Strict):
    item_id: int = Field(ge=1, le=2**63 - 1)
    quantity: int = Field(1, ge=1, le=100_000)
    disposition: Disposition
    location_id: str | None = Field(None, min_length=1, max_length=64)


class InspectIn(_Strict):
    dispositions: list[DispositionIn] = Field(min_length=1, max_length=500)


@router.post("/v1/returns/{return_id}/inspect")
def post_inspect(return_id: ReturnId, body: InspectIn, r: Rt) -> dict[str, Any]:
    """Set each unit's disposition: restock (to the location's on_hand), refurbish or dispose."""
    cmd = [
        svc.DispositionRequest(d.item_id, d.quantity, d.disposition, d.location_id)
        for d in body.dispositions
    ]
    refund_id = _write(r, lambda rtx: svc.inspect_return(rtx, return_id, cmd, now=r.clock()))
    _publish(r, [refund_id])
    return _detail(r, return_id)


@router.post("/v1/returns/{return_id}/refund")
def post_return_refund(return_id: ReturnId, r: Rt) -> dict[str, Any]:
    """Refund the return now, before its timing rule would."""
    refund_id = _write(r, lambda rtx: svc.refund_return_now(rtx, return_id, now=r.clock()))
    _publish(r, [refund_id])
    return _detail(r, return_id)


@router.post("/v1/returns/exchanges/check-deadlines")
def post_check_deadlines(r: Rt) -> dict[str, Any]:
    """Instant exchanges whose return did not arrive in time: their replacement becomes due."""
    overdue = _write(r, lambda rtx: svc.check_exchange_deadlines(rtx, now=r.clock()))
    return {"overdue": overdue}
