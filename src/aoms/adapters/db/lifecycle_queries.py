"""Reads for the order lifecycle: the review queue, an order's holds, decisions and history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from aoms.adapters.db import schema as t
from aoms.domain.errors import NotFound
from aoms.domain.lifecycle import lifecycle_state


def _hold(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "order_id": r.order_id,
        "kind": r.kind,
        "reason": r.reason,
        "detail": r.detail,
        "status": r.status,
        "created_at": r.created_at,
        "resolved_at": r.resolved_at,
        "resolved_by": r.resolved_by,
        "note": r.note,
    }


def list_holds(
    conn: Connection,
    *,
    status: str | None,
    kind: str | None,
    shop: str | None,
    after: int | None,
    limit: int,
) -> tuple[list[dict[str, Any]], int | None]:
    """Holds oldest first (the review queue), `limit` at a time after the cursor."""
    h, o = t.holds.c, t.orders.c
    query = (
        select(t.holds, o.shop, o.name.label("order_name"), o.total_minor, o.currency)
        .join(t.orders, o.id == h.order_id)
        .order_by(h.id)
        .limit(limit + 1)
    )
    if status:
        query = query.where(h.status == status)
    if kind:
        query = query.where(h.kind == kind)
    if shop:
        query = query.where(o.shop == shop)
    if after is not None:
        query = query.where(h.id > after)
    rows = conn.execute(query).all()
    items = [
        {**_hold(r), "shop": r.shop, "order_name": r.order_name,
         "order_total": None if r.total_minor is None else
         str(t.from_minor(r.total_minor, r.currency).amount),
         "currency": r.currency}
        for r in rows[:limit]
    ]  # fmt: skip
    nxt = rows[limit - 1].id if len(rows) > limit else None
    return items, nxt


def hold(conn: Connection, hold_id: int) -> dict[str, Any]:
    row = conn.execute(select(t.holds).where(t.holds.c.id == hold_id)).first()
    if row is None:
        raise NotFound(f"no hold {hold_id}", field="hold_id")
    return _hold(row)


def shipping_progress(conn: Connection, order_id: int) -> tuple[int, int]:
    """The order's units that need shipping, and those of them that have left."""
    ln = t.order_lines.c
    rows = conn.execute(
        select(ln.quantity, ln.shipped_qty).where(
            ln.order_id == order_id, ln.requires_shipping.is_(True)
        )
    ).all()
    return sum(q for q, _ in rows), sum(min(q, s) for q, s in rows)


def order_lifecycle(conn: Connection, order_id: int) -> dict[str, Any]:
    """The order's lifecycle state, its holds and its fraud decisions."""
    o, h, f = t.orders.c, t.holds.c, t.fraud_decisions.c
    row = conn.execute(select(o.id, o.status, o.financial_status).where(o.id == order_id)).first()
    if row is None:
        raise NotFound(f"no order {order_id}", field="order_id")
    holds = [_hold(r) for r in conn.execute(
        select(t.holds).where(h.order_id == order_id).order_by(h.id))]  # fmt: skip
    open_count = sum(1 for x in holds if x["status"] == "open")
    released = conn.execute(
        select(t.order_lifecycle.c.released_at).where(t.order_lifecycle.c.order_id == order_id)
    ).scalar()
    to_ship, shipped = shipping_progress(conn, order_id)
    decisions = [
        {"id": r.id, "score": r.score, "action": r.action, "reasons": r.reasons,
         "signals": r.signals, "decided_at": r.decided_at}
        for r in conn.execute(select(t.fraud_decisions).where(f.order_id == order_id)
                              .order_by(f.id))
    ]  # fmt: skip
    return {
        "order_id": order_id,
        "state": lifecycle_state(row.status, open_count, to_ship=to_ship, shipped=shipped).value,
        "routing_status": row.status,
        "financial_status": row.financial_status,
        "released_for_fulfilment_at": released,
        "holds": holds,
        "fraud_decisions": decisions,
    }


def history(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    """Everything that happened to the order, oldest first, from its events."""
    if conn.execute(select(func.count()).where(t.orders.c.id == order_id)).scalar_one() == 0:
        raise NotFound(f"no order {order_id}", field="order_id")
    e = t.outbox.c
    rows = conn.execute(
        select(e.id, e.name, e.data, e.created_at)
        .where(e.aggregate == f"order:{order_id}")
        .order_by(e.id)
    ).all()
    return [{"id": r.id, "at": r.created_at, "event": r.name, "data": r.data} for r in rows]
