"""Read side of the dashboard: one query function per page, each returning plain data.

Every query reads through an index (see migration 0010) or a bounded window of days, so a
page costs the same with 100 orders as with 100,000: keyset paging, never OFFSET.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from aoms.adapters.db import queries
from aoms.adapters.db import schema as t
from aoms.adapters.db.schema import from_minor
from aoms.domain.handoff import WONT_SHIP
from aoms.domain.inventory import StockLevel
from aoms.domain.orders import OrderStatus

ORDER_STATUSES = tuple(s.value for s in OrderStatus)
SCAN_WINDOW = 20_000  # orders read per page when a search must read rows (a customer's name)


def _day(conn: Connection, column: Any) -> ColumnElement[str]:
    """The UTC calendar day of a stored time, as YYYY-MM-DD."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS…'


def _days(today: datetime, days: int) -> list[str]:
    return [(today - timedelta(days=days - 1 - i)).strftime("%Y-%m-%d") for i in range(days)]


# -- overview -------------------------------------------------------------------------------


def overview(conn: Connection, *, now: datetime, days: int = 14) -> dict[str, Any]:
    """Today's counts, the totals an operator asks for first, and daily trends over `days`.

    The totals are counted on the index (placed_at, status, shipments) alone, and the trends
    read only the window's days from it, so the page does not read every order's row."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days - 1)
    o, f = t.orders.c, t.fulfilment_orders.c
    day = _day(conn, o.placed_at).label("day")
    rows = conn.execute(
        select(day, o.status, o.shipments, func.count())
        .where(o.placed_at >= start)
        .group_by(day, o.status, o.shipments)
    ).all()
    by_day: dict[str, list[int]] = {}
    for d, status, shipments, n in rows:
        c = by_day.setdefault(d, [0, 0, 0, 0, 0])  # orders, routed, backordered, split, shipped
        c[0] += n
        c[1] += n if status == "routed" else 0
        c[2] += n if status == "backordered" else 0
        if status != "cancelled":
            c[3] += n if shipments > 1 else 0
            c[4] += n if shipments > 0 else 0
    currency = _main_currency(conn)
    # Cost per order by the day the order was placed (shipping + handling of its live
    # fulfilment orders: open, at a warehouse or shipped; not the ones cancelled by a re-route
    # or rejected by their warehouse). An order's fulfilment orders are made after it is
    # placed, so both sides are read as a range of the window (orders by placed_at, fulfilment
    # orders by created_at) and joined: neither table is read whole.
    cost_rows = conn.execute(
        select(
            day,
            func.sum(f.shipping_minor + f.handling_minor),
            func.count(func.distinct(f.order_id)),
        )
        .select_from(t.orders.join(t.fulfilment_orders, f.order_id == o.id))
        .where(
            o.placed_at >= start,
            o.shipments > 0,
            o.currency == currency,
            f.created_at >= start,
            f.status.not_in(sorted(s.value for s in WONT_SHIP)),
        )
        .group_by(day)
    ).all()
    cost_by_day = {d: (int(minor or 0), int(n)) for d, minor, n in cost_rows}
    labels = _days(today, days)
    trend: dict[str, list[Any]] = {
        k: [] for k in ("orders", "routed", "backordered", "split_rate", "cost_per_order")
    }
    for d in labels:
        n, routed, back, split, shipped = by_day.get(d, [0, 0, 0, 0, 0])
        trend["orders"].append(n)
        trend["routed"].append(routed)
        trend["backordered"].append(back)
        trend["split_rate"].append(round(split / shipped, 4) if shipped else None)
        minor, costed = cost_by_day.get(d, (0, 0))
        trend["cost_per_order"].append(str(_per_order(minor, costed, currency)) if costed else None)
    window_minor = sum(m for m, _ in cost_by_day.values())
    window_orders = sum(n for _, n in cost_by_day.values())
    totals = totals_by_status(conn)
    today_row = by_day.get(labels[-1], [0, 0, 0, 0, 0])
    return {
        "today": {"orders": today_row[0], "routed": today_row[1], "backordered": today_row[2]},
        **totals,
        "routed": totals["by_status"].get("routed", 0),
        "backordered": totals["by_status"].get("backordered", 0),
        "unroutable": totals["by_status"].get("unroutable", 0),
        "currency": currency,
        "cost_per_order": str(_per_order(window_minor, window_orders, currency))
        if window_orders
        else None,
        "on_time_rate": on_time_rate(conn, now=now),
        "days": labels,
        "trend": trend,
    }


def totals_by_status(conn: Connection) -> dict[str, Any]:
    """The all-time counts of `queries.summary` that the overview shows (orders by status,
    split-shipment rate, oversold units, webhooks waiting or failed), each from an index."""
    o, s, w = t.orders.c, t.stock_levels.c, t.webhook_inbox.c
    by_status: dict[str, int] = {}
    split = shipped = 0
    for status, shipments, n in conn.execute(
        select(o.status, o.shipments, func.count()).group_by(o.status, o.shipments)
    ):
        by_status[status] = by_status.get(status, 0) + n
        if status != "cancelled":
            split += n if shipments > 1 else 0
            shipped += n if shipments > 0 else 0
    oversold = conn.execute(
        select(
            func.coalesce(
                func.sum(case((s.reserved > s.on_hand, s.reserved - s.on_hand), else_=0)), 0
            )
        )
    ).scalar_one()
    # The deliveries that need a look (waiting or failed): few, and counted on their index;
    # the processed ones are most of the table and are not counted per request.
    webhooks = {
        status: int(conn.execute(select(func.count()).where(w.status == status)).scalar_one())
        for status in ("pending", "failed")
    }
    return {
        "orders": sum(by_status.values()),
        "by_status": by_status,
        "split_shipment_rate": split / shipped if shipped else 0.0,
        "oversold_units": int(oversold),
        "webhooks": webhooks,
    }


def _main_currency(conn: Connection) -> str:
    """The currency most shops sell in (the overview's money is in it)."""
    s = t.shops.c
    row = conn.execute(
        select(s.currency, func.count()).group_by(s.currency).order_by(func.count().desc())
    ).first()
    return str(row[0]) if row else "USD"


def _per_order(minor: int, orders: int, currency: str) -> Decimal:
    total = from_minor(minor, currency).amount
    return (total / orders).quantize(Decimal("0.01"))


def on_time_rate(conn: Connection, *, now: datetime, days: int = 90) -> float | None:
    """Share of deliveries of the last `days` that arrived by their promise; None when the
    stored history holds no promises to compare with."""
    h = t.delivery_history.c
    row = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((h.delivered_at <= h.promised_at, 1), else_=0)), 0),
        ).where(h.ordered_at >= now - timedelta(days=days), h.promised_at.is_not(None))
    ).one()
    return round(int(row[1]) / int(row[0]), 4) if row[0] else None


# -- orders ---------------------------------------------------------------------------------


def order_list(
    conn: Connection,
    *,
    status: str | None = None,
    q: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first, by keyset on the id. `q` matches an order name (with or without #), a SKU
    exactly, or part of the customer's name on the shipping address."""
    o = t.orders.c
    query = (
        select(
            o.id,
            o.shop,
            o.name,
            o.status,
            o.currency,
            o.total_minor,
            o.placed_at,
            o.units,
            o.backordered_units,
            o.shipments,
            o.ship_to,
        )
        .order_by(o.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(o.id < before)
    if status:
        query = query.where(o.status == status)
    floor = 0
    if q and q.strip():
        term = q.strip()
        names = {term, term.lstrip("#"), "#" + term.lstrip("#")}
        by_name = conn.execute(query.where(o.name.in_(names))).all()
        if by_name:  # an order's name is what people search by most: answered on its index
            return _order_rows(by_name, limit)
        ln = t.order_lines.c
        if conn.execute(select(ln.order_id).where(ln.sku == term).limit(1)).first():
            # A SKU: the orders with a line of it, from the lines' index.
            query = query.where(o.id.in_(select(ln.order_id).where(ln.sku == term)))
        else:
            # Part of a customer's name: matched by reading rows, at most SCAN_WINDOW ids a
            # page below the cursor; a page that finds fewer still hands on a cursor.
            esc = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            top = before
            if top is None:
                top = (conn.execute(select(func.max(o.id))).scalar() or 0) + 1
            floor = max(0, top - SCAN_WINDOW - 1)
            customer = func.lower(o.ship_to["name"].as_string())
            query = query.where(o.id > floor, customer.like(f"%{esc}%", escape="\\"))
    rows = conn.execute(query).all()
    page, nxt = _order_rows(rows, limit)
    if nxt is None and floor > 0:
        nxt = floor + 1  # nothing more in this window: the next page reads the one below
    return page, nxt


def _order_rows(rows: Any, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    page = [
        {
            "id": r.id,
            "shop": r.shop,
            "name": r.name,
            "status": r.status,
            "customer": (r.ship_to or {}).get("name") or "",
            "city": (r.ship_to or {}).get("city") or "",
            "total": None if r.total_minor is None else from_minor(r.total_minor, r.currency),
            "placed_at": r.placed_at,
            "units": r.units,
            "backordered_units": r.backordered_units,
            "shipments": r.shipments,
        }
        for r in rows[:limit]
    ]
    return page, (page[-1]["id"] if len(rows) > limit else None)


def order_page(conn: Connection, order_id: int) -> dict[str, Any]:
    """The API's order detail (lines, reservations, fulfilment orders, routing decisions and
    their explanations), with its timeline and the locations for the map."""
    detail = queries.order_detail(conn, order_id)
    ob, w = t.outbox.c, t.webhook_inbox.c
    events = conn.execute(
        select(ob.id, ob.name, ob.data, ob.created_at)
        .where(ob.aggregate == f"order:{order_id}")
        .order_by(ob.id)
        .limit(500)
    ).all()
    deliveries = conn.execute(
        select(w.id, w.topic, w.received_at, w.status, w.error_code)
        .where(w.order_id == order_id)
        .order_by(w.id)
        .limit(200)
    ).all()
    timeline: list[dict[str, Any]] = [
        {
            "at": d.received_at,
            "what": f"webhook {d.topic}",
            "detail": d.status + (f" ({d.error_code})" if d.error_code else ""),
        }
        for d in deliveries
    ]
    timeline += [
        {"at": e.created_at, "what": e.name, "detail": _event_text(e.data)} for e in events
    ]
    timeline.sort(key=lambda x: x["at"])
    detail["timeline"] = timeline
    detail["locations"] = queries.list_locations(conn)
    return detail


def _event_text(data: Any) -> str:
    """An event's data in a line: its plain values, and its shipments as `location: items`."""
    if not isinstance(data, dict):
        return ""
    keep = (
        "status",
        "policy",
        "cost",
        "currency",
        "units",
        "backordered_units",
        "reason",
        "on_hand",
        "available",
        "released",
    )
    parts = [
        f"{k} {data[k]}"
        for k in keep
        if k in data and isinstance(data[k], str | int | float) and data[k] != ""
    ]
    for s in data.get("shipments") or []:
        if isinstance(s, dict) and isinstance(s.get("items"), dict):
            items = ", ".join(f"{n} × {sku}" for sku, n in sorted(s["items"].items()))
            parts.append(f"{s.get('location_id')}: {items}")
    return "; ".join(parts)


# -- stock ----------------------------------------------------------------------------------


def stock(
    conn: Connection,
    *,
    sku: str | None = None,
    location_id: str | None = None,
    low_only: bool = False,
    after: tuple[str, str] | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    """Stock by (SKU, location) in key order; `sku` is a prefix. Low = available at or below
    the safety stock, or nothing available."""
    s, p = t.stock_levels.c, t.products.c
    free = s.on_hand - s.reserved - s.safety_stock
    query = (
        select(s.sku, s.location_id, s.on_hand, s.reserved, s.safety_stock, s.updated_at, p.title)
        .select_from(t.stock_levels.outerjoin(t.products, p.sku == s.sku))
        .order_by(s.sku, s.location_id)
        .limit(limit + 1)
    )
    if sku:
        esc = sku.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(s.sku.like(esc + "%", escape="\\"))
    if location_id:
        query = query.where(s.location_id == location_id)
    if low_only:
        query = query.where(or_(free <= s.safety_stock, free <= 0))
    if after:
        query = query.where(
            or_(s.sku > after[0], and_(s.sku == after[0], s.location_id > after[1]))
        )
    rows = conn.execute(query).all()
    items = []
    for r in rows[:limit]:
        lv = StockLevel(r.sku, r.location_id, r.on_hand, r.reserved, r.safety_stock)
        items.append(
            {
                "sku": r.sku,
                "title": r.title or "",
                "location_id": r.location_id,
                "on_hand": lv.on_hand,
                "reserved": lv.reserved,
                "safety_stock": lv.safety_stock,
                "available": lv.available,
                "low": lv.available <= 0 or lv.available <= lv.safety_stock,
                "oversold": lv.reserved > lv.on_hand,
                "updated_at": r.updated_at,
            }
        )
    nxt = (items[-1]["sku"], items[-1]["location_id"]) if len(rows) > limit else None
    return items, nxt


# -- policy lab -----------------------------------------------------------------------------


def lab(conn: Connection) -> list[dict[str, Any]]:
    """Each shop with its routing policy versions and A/B experiments, newest first."""
    shops = conn.execute(select(t.shops).order_by(t.shops.c.domain)).all()
    return [
        {
            "domain": s.domain,
            "routing_policy": s.routing_policy,
            "currency": s.currency,
            "versions": queries.routing_policies(conn, s.domain),
            "experiments": queries.experiments(conn, s.domain),
        }
        for s in shops
    ]


# -- holds ----------------------------------------------------------------------------------


def on_hold(conn: Connection) -> int:
    """Orders with at least one open hold (the lifecycle's `on_hold` state: a cancelled order
    is cancelled, whatever holds it), read from the open holds on `ix_holds_status_id`."""
    h, o = t.holds.c, t.orders.c
    return int(
        conn.execute(
            select(func.count(func.distinct(h.order_id)))
            .select_from(t.holds.join(t.orders, o.id == h.order_id))
            .where(h.status == "open", o.status != "cancelled")
        ).scalar_one()
    )


# -- returns --------------------------------------------------------------------------------


def return_list(
    conn: Connection, *, status: str | None = None, before: int | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], int | None]:
    """Returns newest first, by keyset on the id (`ix_returns_status` when filtered), each
    with its order's name, its units and its refund's total."""
    r, o, i, f = t.returns.c, t.orders.c, t.return_items.c, t.refunds.c
    units = (
        select(func.coalesce(func.sum(i.quantity), 0))
        .where(i.return_id == r.id)
        .scalar_subquery()
        .label("units")
    )
    query = (
        select(
            r.id,
            r.order_id,
            r.shop,
            r.status,
            r.decision,
            r.refund_to,
            r.tracking_number,
            r.created_at,
            r.updated_at,
            o.name.label("order_name"),
            units,
            f.total_minor.label("refund_minor"),
            f.currency.label("refund_currency"),
        )
        .select_from(
            t.returns.join(t.orders, o.id == r.order_id).outerjoin(t.refunds, f.id == r.refund_id)
        )
        .order_by(r.id.desc())
        .limit(limit + 1)
    )
    if status:
        query = query.where(r.status == status)
    if before is not None:
        query = query.where(r.id < before)
    rows = conn.execute(query).all()
    items = [
        {
            "id": x.id,
            "order_id": x.order_id,
            "order_name": x.order_name,
            "shop": x.shop,
            "status": x.status,
            "decision": x.decision,
            "refund_to": x.refund_to,
            "tracking_number": x.tracking_number,
            "units": int(x.units),
            "refund": None
            if x.refund_minor is None
            else from_minor(x.refund_minor, x.refund_currency),
            "created_at": x.created_at,
            "updated_at": x.updated_at,
        }
        for x in rows[:limit]
    ]
    return items, (items[-1]["id"] if len(rows) > limit else None)


def return_history(conn: Connection, return_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The return's events, oldest first (its states as they happened), on the outbox's
    (aggregate, id) index."""
    ob = t.outbox.c
    rows = conn.execute(
        select(ob.id, ob.name, ob.data, ob.created_at)
        .where(ob.aggregate == f"return:{return_id}")
        .order_by(ob.id)
        .limit(limit)
    ).all()
    return [{"at": e.created_at, "what": e.name, "detail": _return_text(e.data)} for e in rows]


def _return_text(data: Any) -> str:
    """A return event's data in a line: the decision and why, the parcel, the dispositions."""
    if not isinstance(data, dict):
        return ""
    parts = [
        f"{label} {data[k]}"
        for k, label in (
            ("units", "units"),
            ("decision", "decision"),
            ("carrier", "carrier"),
            ("tracking_number", "tracking"),
            ("location_id", "at"),
        )
        if isinstance(data.get(k), str | int) and data[k] != ""
    ]
    reasons = data.get("reasons")
    if isinstance(reasons, list) and reasons:
        parts.append("; ".join(str(r) for r in reasons))
    for d in data.get("dispositions") or []:
        if isinstance(d, dict):
            parts.append(f"{d.get('quantity')} × {d.get('disposition')}")
    return ", ".join(parts)


def order_name(conn: Connection, order_id: int) -> str | None:
    found = conn.execute(select(t.orders.c.name).where(t.orders.c.id == order_id)).scalar()
    return None if found is None else str(found)
