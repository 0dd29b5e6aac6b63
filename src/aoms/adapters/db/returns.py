"""Storage for returns, refunds, payments and deliveries (the ReturnsTx port)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from aoms.adapters.db import schema as t
from aoms.adapters.db.lifecycle import SqlLifecycleRepo
from aoms.adapters.db.schema import from_minor
from aoms.adapters.db.store import SqlStore, SqlTx
from aoms.domain.geo import Point
from aoms.domain.money import Money
from aoms.domain.orders import OrderStatus
from aoms.domain.refunds import LineRefunded, Payment, PaymentRefund, Refunded, RefundQuote
from aoms.domain.returns import (
    OPEN,
    Disposition,
    RefundDestination,
    ReturnPolicy,
    ReturnStatus,
)
from aoms.services.ports import RefundToPush
from aoms.services.returns_ports import NewPayment, OrderFacts, ReturnItem, ReturnRecord


class SqlReturnStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    @contextmanager
    def writing(self) -> Iterator[SqlReturnsTx]:
        with self.store.transaction() as tx:
            yield SqlReturnsTx(tx)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.store.read() as conn:
            yield conn


class SqlReturnsTx:
    def __init__(self, tx: SqlTx) -> None:
        self._tx = tx
        self.conn = tx.conn

    @property
    def core(self) -> SqlTx:
        return self._tx

    def lifecycle(self) -> SqlLifecycleRepo:
        return SqlLifecycleRepo(self._tx)

    # -- orders -------------------------------------------------------------------------
    def lock_order(self, order_id: int) -> OrderFacts | None:
        stored = self._tx.get_order(order_id)  # FOR UPDATE on PostgreSQL
        if stored is None:
            return None
        row = self.conn.execute(select(t.orders).where(t.orders.c.id == order_id)).one()
        base = self._tx.load_order(order_id)
        cur = row.currency
        line_discounts = sum(ln.discount.in_minor() for ln in base.lines)
        line_tax = sum(ln.tax.in_minor() for ln in base.lines)
        # The orders row keeps totals: the order-level discount and the shipping tax are what
        # the totals hold beyond the lines'.
        order_discount = max(row.discounts_minor - line_discounts, 0)
        shipping_tax = max(row.tax_minor - line_tax, 0)
        address = base.shipping_address
        if row.dest_lat is not None:
            address = replace(address, point=Point(row.dest_lat, row.dest_lng))
        order = replace(
            base,
            shipping_address=address,
            shipping=from_minor(row.shipping_minor, cur),
            shipping_tax=from_minor(shipping_tax, cur),
            order_discount=from_minor(order_discount, cur),
            total_tax=from_minor(row.tax_minor, cur),
            total_price=from_minor(row.total_minor, cur) if row.total_minor is not None else None,
            taxes_included=row.taxes_included,
            tags=tuple(x for x in (row.tags or "").split(",") if x),
        )
        return OrderFacts(
            id=row.id,
            shop=row.shop,
            channel=row.channel,
            external_id=row.external_id,
            status=OrderStatus(row.status),
            country=(row.ship_to or {}).get("country_code"),
            tags=order.tags,
            order=order,
        )

    def find_order(self, shop: str, channel: str, external_id: str) -> int | None:
        found = self._tx.find_order(shop, channel, external_id)
        return found.id if found else None

    # -- payments ---------------------------------------------------------------------------
    def payments(self, order_id: int) -> list[Payment]:
        p, rp = t.order_payments.c, t.refund_payments.c
        refunded = (
            select(rp.payment_id, func.sum(rp.amount_minor).label("refunded"))
            .group_by(rp.payment_id)
            .subquery()
        )
        rows = self.conn.execute(
            select(p.id, p.method, p.captured_minor, p.currency, refunded.c.refunded)
            .outerjoin(refunded, refunded.c.payment_id == p.id)
            .where(p.order_id == order_id)
            .order_by(p.id)
        ).all()
        return [
            Payment(
                r.id,
                r.method,
                from_minor(r.captured_minor, r.currency),
                from_minor(int(r.refunded or 0), r.currency),
            )
            for r in rows
        ]

    def channel_gateways(self, order_id: int) -> list[str]:
        """The payment gateways named by the newest order payload stored for the order."""
        w = t.webhook_inbox.c
        body = self.conn.execute(
            select(w.body)
            .where(w.order_id == order_id, w.status == "processed", w.topic.like("orders/%"))
            .order_by(w.id.desc())
            .limit(1)
        ).scalar()
        if body is None:
            return []
        try:
            names = json.loads(bytes(body)).get("payment_gateway_names") or []
        except (ValueError, AttributeError, RecursionError):
            return []
        return [str(n) for n in names if isinstance(n, str) and n][:5]

    def payment_by_external(self, order_id: int, external_id: str) -> int | None:
        p = t.order_payments.c
        found = self.conn.execute(
            select(p.id).where(p.order_id == order_id, p.external_id == external_id)
        ).scalar()
        return int(found) if found is not None else None

    def add_payments(
        self, order_id: int, payments: Sequence[NewPayment], source: str, now: datetime
    ) -> None:
        if not payments:
            return
        self.conn.execute(
            insert(t.order_payments),
            [
                {
                    "order_id": order_id,
                    "method": p.method,
                    "captured_minor": p.captured.in_minor(),
                    "currency": p.captured.currency,
                    "external_id": p.external_id,
                    "source": source,
                    "created_at": now,
                }
                for p in payments
            ],
        )

    # -- refunds ------------------------------------------------------------------------------
    def refunded(self, order_id: int) -> Refunded:
        r, rl = t.refunds.c, t.refund_lines.c
        cur = self.conn.execute(select(t.orders.c.currency).where(t.orders.c.id == order_id))
        currency = str(cur.scalar_one())
        lines = self.conn.execute(
            select(rl.line_no, func.sum(rl.units), func.sum(rl.goods_minor), func.sum(rl.tax_minor))
            .join(t.refunds, r.id == rl.refund_id)
            .where(r.order_id == order_id)
            .group_by(rl.line_no)
        ).all()
        ship = self.conn.execute(
            select(func.sum(r.shipping_minor), func.sum(r.shipping_tax_minor)).where(
                r.order_id == order_id
            )
        ).one()
        return Refunded(
            {
                int(n): LineRefunded(
                    int(u), from_minor(int(g), currency), from_minor(int(x), currency)
                )
                for n, u, g, x in lines
            },
            from_minor(int(ship[0] or 0), currency),
            from_minor(int(ship[1] or 0), currency),
        )

    def insert_refund(
        self,
        order_id: int,
        *,
        return_id: int | None,
        quote: RefundQuote,
        parts: Sequence[PaymentRefund],
        destination: RefundDestination,
        bonus: Money,
        exchange: Money,
        source: str,
        idempotency_key: str | None,
        external_id: str | None,
        restock: Mapping[int, str],
        now: datetime,
    ) -> int:
        detail = {
            "lines": [
                {
                    "line_no": ln.line_no,
                    "sku": ln.sku,
                    "units": ln.units,
                    "goods": str(ln.goods.amount),
                    "tax": str(ln.tax.amount),
                    "total": str(ln.total.amount),
                }
                for ln in quote.lines
            ],
            "fees": [
                {"kind": f.kind, "amount": str(f.amount.amount), "description": f.description}
                for f in quote.fees
            ],
        }
        refund_id = self.conn.execute(
            insert(t.refunds)
            .values(
                order_id=order_id,
                return_id=return_id,
                source=source,
                destination=destination.value,
                currency=quote.currency,
                items_minor=quote.items.in_minor(),
                shipping_minor=quote.shipping.in_minor(),
                shipping_tax_minor=quote.shipping_tax.in_minor(),
                fees_minor=quote.fees_total.in_minor(),
                total_minor=(quote.total - exchange).in_minor(),
                bonus_minor=bonus.in_minor(),
                exchange_minor=exchange.in_minor(),
                detail=detail,
                idempotency_key=idempotency_key,
                external_id=external_id,
                created_at=now,
            )
            .returning(t.refunds.c.id)
        ).scalar_one()
        if quote.lines:
            self.conn.execute(
                insert(t.refund_lines),
                [
                    {
                        "refund_id": refund_id,
                        "line_no": ln.line_no,
                        "units": ln.units,
                        "goods_minor": ln.goods.in_minor(),
                        "tax_minor": ln.tax.in_minor(),
                        "restock_location_id": restock.get(ln.line_no),
                    }
                    for ln in quote.lines
                ],
            )
        if parts:
            self.conn.execute(
                insert(t.refund_payments),
                [
                    {
                        "refund_id": refund_id,
                        "payment_id": p.payment_id,
                        "amount_minor": p.amount.in_minor(),
                    }
                    for p in parts
                ],
            )
        return int(refund_id)

    def refund_by_key(self, idempotency_key: str) -> int | None:
        r = t.refunds.c
        found = self.conn.execute(select(r.id).where(r.idempotency_key == idempotency_key))
        value = found.scalar()
        return int(value) if value is not None else None

    def refund_by_external(self, order_id: int, external_id: str) -> int | None:
        r = t.refunds.c
        found = self.conn.execute(
            select(r.id).where(r.order_id == order_id, r.external_id == external_id)
        ).scalar()
        return int(found) if found is not None else None

    def set_refund_external_id(self, refund_id: int, external_id: str) -> bool:
        r = t.refunds.c
        done = self.conn.execute(
            update(t.refunds)
            .where(r.id == refund_id, r.external_id.is_(None))
            .values(external_id=external_id)
        )
        return bool(done.rowcount)

    # -- deliveries and policy --------------------------------------------------------------
    def delivery(self, order_id: int) -> tuple[datetime | None, datetime | None] | None:
        d = t.order_deliveries.c
        row = self.conn.execute(
            select(d.fulfilled_at, d.delivered_at).where(d.order_id == order_id)
        ).first()
        return (row.fulfilled_at, row.delivered_at) if row else None

    def set_delivery(
        self,
        order_id: int,
        fulfilled_at: datetime | None,
        delivered_at: datetime | None,
        source: str,
        now: datetime,
    ) -> None:
        d = t.order_deliveries.c
        values = {
            "fulfilled_at": fulfilled_at,
            "delivered_at": delivered_at,
            "source": source,
            "updated_at": now,
        }
        if self.delivery(order_id) is None:
            self.conn.execute(insert(t.order_deliveries).values(order_id=order_id, **values))
        else:
            known = {k: v for k, v in values.items() if v is not None}
            self.conn.execute(
                update(t.order_deliveries).where(d.order_id == order_id).values(**known)
            )

    def return_policy(self, shop: str) -> ReturnPolicy:
        return policy_of(self.conn, shop)

    def set_return_policy(self, shop: str, policy: ReturnPolicy, now: datetime) -> None:
        p = t.return_policies.c
        doc = policy.as_dict()
        done = self.conn.execute(
            update(t.return_policies).where(p.shop == shop).values(document=doc, updated_at=now)
        )
        if not done.rowcount:
            self.conn.execute(
                insert(t.return_policies).values(shop=shop, document=doc, updated_at=now)
            )

    # -- returns ------------------------------------------------------------------------------
    def insert_return(self, values: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> int:
        return_id = int(
            self.conn.execute(
                insert(t.returns).values(**values).returning(t.returns.c.id)
            ).scalar_one()
        )
        self.conn.execute(insert(t.return_items), [{**i, "return_id": return_id} for i in items])
        return return_id

    def get_return(self, return_id: int) -> ReturnRecord | None:
        row = self.conn.execute(select(t.returns).where(t.returns.c.id == return_id)).first()
        if row is None:
            return None
        i = t.return_items.c
        items = self.conn.execute(
            select(t.return_items).where(i.return_id == return_id).order_by(i.id)
        ).all()
        return ReturnRecord(
            id=row.id,
            order_id=row.order_id,
            shop=row.shop,
            status=ReturnStatus(row.status),
            policy=ReturnPolicy.from_dict(row.policy),
            customer_tags=tuple(row.customer_tags),
            refund_to=RefundDestination(row.refund_to),
            refund_shipping=row.refund_shipping,
            fees_waived=row.fees_waived,
            refund_id=row.refund_id,
            location_id=row.location_id,
            tracking_number=row.tracking_number,
            exchange=row.exchange,
            exchange_order_id=row.exchange_order_id,
            exchange_deadline=row.exchange_deadline,
            exchange_status=row.exchange_status,
            items=tuple(
                ReturnItem(x.id, x.line_no, x.sku, x.quantity, x.reason, x.has_photos)
                for x in items
            ),
        )

    def update_return(self, return_id: int, values: Mapping[str, Any]) -> None:
        self.conn.execute(
            update(t.returns).where(t.returns.c.id == return_id).values(**dict(values))
        )

    def find_return(self, shop: str, external_id: str) -> int | None:
        r = t.returns.c
        found = self.conn.execute(
            select(r.id).where(r.shop == shop, r.external_id == external_id)
        ).scalar()
        return int(found) if found is not None else None

    def shipped_units(self, order_id: int) -> dict[int, int]:
        ln = t.order_lines.c
        rows = self.conn.execute(
            select(ln.line_no, ln.shipped_qty).where(ln.order_id == order_id)
        ).all()
        return {int(r.line_no): int(r.shipped_qty) for r in rows}

    def units_in_open_returns(self, order_id: int, *, unrefunded_only: bool) -> dict[int, int]:
        r, i = t.returns.c, t.return_items.c
        query = (
            select(i.line_no, func.sum(i.quantity))
            .join(t.returns, r.id == i.return_id)
            .where(r.order_id == order_id, r.status.in_(sorted(s.value for s in OPEN)))
            .group_by(i.line_no)
        )
        if unrefunded_only:
            query = query.where(r.refund_id.is_(None))
        return {int(n): int(q) for n, q in self.conn.execute(query).all()}

    def dispositioned(self, return_id: int) -> dict[int, int]:
        d = t.return_dispositions.c
        rows = self.conn.execute(
            select(d.item_id, func.sum(d.quantity))
            .where(d.return_id == return_id)
            .group_by(d.item_id)
        ).all()
        out: dict[int, int] = defaultdict(int)
        for item_id, q in rows:
            out[int(item_id)] += int(q)
        return dict(out)

    def add_disposition(
        self,
        return_id: int,
        item_id: int,
        quantity: int,
        disposition: Disposition,
        location_id: str,
        now: datetime,
    ) -> int:
        return int(
            self.conn.execute(
                insert(t.return_dispositions)
                .values(
                    return_id=return_id,
                    item_id=item_id,
                    quantity=quantity,
                    disposition=disposition.value,
                    location_id=location_id,
                    at=now,
                )
                .returning(t.return_dispositions.c.id)
            ).scalar_one()
        )

    def overdue_exchanges(self, now: datetime) -> list[int]:
        r = t.returns.c
        rows = self.conn.execute(
            select(r.id)
            .where(r.exchange_status == "open", r.exchange_deadline < now)
            .order_by(r.id)
        )
        return [int(x) for x in rows.scalars()]


# -- reads for the API ------------------------------------------------------------------------


def _money(minor: int | None, currency: str) -> str | None:
    return None if minor is None else str(from_minor(minor, currency).amount)


def refunds_of_order(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    r, rp, p = t.refunds.c, t.refund_payments.c, t.order_payments.c
    rows = conn.execute(select(t.refunds).where(r.order_id == order_id).order_by(r.id)).all()
    out = []
    for row in rows:
        cur = row.currency
        parts = conn.execute(
            select(rp.payment_id, p.method, rp.amount_minor)
            .join(t.order_payments, p.id == rp.payment_id)
            .where(rp.refund_id == row.id)
            .order_by(rp.payment_id)
        ).all()
        out.append(
            {
                "id": row.id,
                "return_id": row.return_id,
                "source": row.source,
                "destination": row.destination,
                "currency": cur,
                "items": _money(row.items_minor, cur),
                "shipping": _money(row.shipping_minor, cur),
                "shipping_tax": _money(row.shipping_tax_minor, cur),
                "fees": _money(row.fees_minor, cur),
                "exchange": _money(row.exchange_minor, cur),
                "total": _money(row.total_minor, cur),
                "store_credit_bonus": _money(row.bonus_minor, cur),
                "lines": row.detail.get("lines", []),
                "fee_lines": row.detail.get("fees", []),
                "payments": [
                    {
                        "payment_id": x.payment_id,
                        "method": x.method,
                        "amount": _money(x.amount_minor, cur),
                    }
                    for x in parts
                ],
                "external_id": row.external_id,
                "created_at": row.created_at,
            }
        )
    return out


def payments_of_order(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    p, rp = t.order_payments.c, t.refund_payments.c
    rows = conn.execute(select(t.order_payments).where(p.order_id == order_id).order_by(p.id)).all()
    out = []
    for row in rows:
        refunded = conn.execute(
            select(func.coalesce(func.sum(rp.amount_minor), 0)).where(rp.payment_id == row.id)
        ).scalar_one()
        out.append(
            {
                "id": row.id,
                "method": row.method,
                "captured": _money(row.captured_minor, row.currency),
                "refunded": _money(int(refunded), row.currency),
                "currency": row.currency,
                "source": row.source,
                "external_id": row.external_id,
            }
        )
    return out


def return_detail(conn: Connection, return_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(t.returns).where(t.returns.c.id == return_id)).first()
    if row is None:
        return None
    i, d = t.return_items.c, t.return_dispositions.c
    items = conn.execute(
        select(t.return_items).where(i.return_id == return_id).order_by(i.id)
    ).all()
    disps = conn.execute(
        select(t.return_dispositions).where(d.return_id == return_id).order_by(d.id)
    ).all()
    return {
        "id": row.id,
        "order_id": row.order_id,
        "shop": row.shop,
        "status": row.status,
        "decision": row.decision,
        "decision_reasons": row.decision_reasons,
        "refund_to": row.refund_to,
        "refund_shipping": row.refund_shipping,
        "refund_timing": row.policy.get("refund_timing"),
        "fees_waived": row.fees_waived,
        "carrier": row.carrier,
        "tracking_number": row.tracking_number,
        "location_id": row.location_id,
        "refund_id": row.refund_id,
        "exchange": row.exchange,
        "exchange_order_id": row.exchange_order_id,
        "exchange_deadline": row.exchange_deadline,
        "exchange_status": row.exchange_status,
        "external_id": row.external_id,
        "items": [
            {
                "id": x.id,
                "line_no": x.line_no,
                "sku": x.sku,
                "quantity": x.quantity,
                "reason": x.reason,
                "has_photos": x.has_photos,
            }
            for x in items
        ],
        "dispositions": [
            {
                "item_id": x.item_id,
                "quantity": x.quantity,
                "disposition": x.disposition,
                "location_id": x.location_id,
                "at": x.at,
            }
            for x in disps
        ],
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def list_returns(
    conn: Connection, *, order_id: int | None, status: str | None, limit: int
) -> list[dict[str, Any]]:
    r = t.returns.c
    query = select(r.id).order_by(r.id.desc()).limit(limit)
    if order_id is not None:
        query = query.where(r.order_id == order_id)
    if status is not None:
        query = query.where(r.status == status)
    ids = list(conn.execute(query).scalars())
    return [x for x in (return_detail(conn, i) for i in ids) if x is not None]


def policy_of(conn: Connection, shop: str) -> ReturnPolicy:
    p = t.return_policies.c
    doc = conn.execute(select(p.document).where(p.shop == shop)).scalar()
    return ReturnPolicy.from_dict(doc) if doc else ReturnPolicy()


def return_by_tracking(conn: Connection, tracking_number: str) -> int | None:
    r = t.returns.c
    found = conn.execute(select(r.id).where(r.tracking_number == tracking_number)).scalar()
    return int(found) if found is not None else None


def label_of(conn: Connection, return_id: int) -> str | None:
    r = t.returns.c
    found = conn.execute(select(r.label).where(r.id == return_id)).scalar()
    return str(found) if found is not None else None


def refund_to_push(conn: Connection, refund_id: int) -> RefundToPush | None:
    """A refund aoms made that the channel has not been told of yet."""
    r, o, rl, ln = t.refunds.c, t.orders.c, t.refund_lines.c, t.order_lines.c
    row = conn.execute(
        select(
            r.id,
            r.order_id,
            r.currency,
            r.total_minor,
            r.shipping_minor,
            r.shipping_tax_minor,
            o.shop,
            o.channel,
            o.external_id,
        )
        .join(t.orders, o.id == r.order_id)
        .where(r.id == refund_id, r.source == "aoms", r.external_id.is_(None))
    ).first()
    if row is None:
        return None
    lines = conn.execute(
        select(ln.external_id, rl.units, rl.restock_location_id)
        .join(t.order_lines, (ln.order_id == row.order_id) & (ln.line_no == rl.line_no))
        .where(rl.refund_id == refund_id)
        .order_by(rl.line_no)
    ).all()
    rp, op = t.refund_payments.c, t.order_payments.c
    paid = conn.execute(
        select(op.method, rp.amount_minor, op.external_id)
        .join(t.order_payments, op.id == rp.payment_id)
        .where(rp.refund_id == refund_id, rp.amount_minor > 0)
        .order_by(op.id)
    ).all()
    cur = row.currency
    return RefundToPush(
        refund_id=row.id,
        shop=row.shop,
        channel=row.channel,
        order_external_id=row.external_id,
        currency=cur,
        amount=str(from_minor(row.total_minor, cur).amount),
        lines=tuple((x.external_id, x.units, x.restock_location_id) for x in lines),
        shipping=str(from_minor(row.shipping_minor + row.shipping_tax_minor, cur).amount),
        note=f"aoms-refund:{row.id}",
        payments=tuple(
            (p.method, str(from_minor(p.amount_minor, cur).amount), p.external_id) for p in paid
        ),
    )
