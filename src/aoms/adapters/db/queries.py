"""Read side: query functions that return plain data for the API, CLI and reports."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from aoms.adapters.db import schema as t
from aoms.adapters.db.schema import from_minor
from aoms.domain.errors import NotFound
from aoms.domain.experiments import ArmOutcome
from aoms.domain.inventory import StockLevel


def _money(units: int | None, currency: str) -> str | None:
    return None if units is None else str(from_minor(units, currency).amount)


def list_orders(
    conn: Connection,
    *,
    limit: int = 50,
    before: int | None = None,
    status: str | None = None,
    shop: str | None = None,
    sku: str | None = None,
    name: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first. Returns the page and the cursor for the next one (None at the end)."""
    o = t.orders.c
    query = (
        select(
            o.id,
            o.shop,
            o.channel,
            o.external_id,
            o.name,
            o.status,
            o.financial_status,
            o.currency,
            o.placed_at,
            o.received_at,
            o.units,
            o.backordered_units,
            o.shipments,
            o.total_minor,
            o.amounts_add_up,
        )
        .order_by(o.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(o.id < before)
    if status:
        query = query.where(o.status == status)
    if shop:
        query = query.where(o.shop == shop)
    if name:
        query = query.where(o.name == name)
    if sku:
        query = query.where(
            o.id.in_(select(t.order_lines.c.order_id).where(t.order_lines.c.sku == sku))
        )
    rows = conn.execute(query).all()
    page = [
        {
            "id": r.id,
            "shop": r.shop,
            "channel": r.channel,
            "external_id": r.external_id,
            "name": r.name,
            "status": r.status,
            "financial_status": r.financial_status,
            "currency": r.currency,
            "total": _money(r.total_minor, r.currency),
            "placed_at": r.placed_at,
            "received_at": r.received_at,
            "units": r.units,
            "backordered_units": r.backordered_units,
            "shipments": r.shipments,
            "amounts_add_up": r.amounts_add_up,
        }
        for r in rows[:limit]
    ]
    return page, (page[-1]["id"] if len(rows) > limit else None)


def order_detail(conn: Connection, order_id: int) -> dict[str, Any]:
    o = t.orders.c
    row = conn.execute(select(t.orders).where(o.id == order_id)).first()
    if row is None:
        raise NotFound(f"no order {order_id}", field="order_id")
    cur = row.currency
    lines = conn.execute(
        select(t.order_lines)
        .where(t.order_lines.c.order_id == order_id)
        .order_by(t.order_lines.c.line_no)
    ).all()
    res = conn.execute(
        select(t.reservations)
        .where(t.reservations.c.order_id == order_id)
        .order_by(t.reservations.c.id)
    ).all()
    fos = conn.execute(
        select(t.fulfilment_orders)
        .where(t.fulfilment_orders.c.order_id == order_id)
        .order_by(t.fulfilment_orders.c.id)
    ).all()
    decisions = conn.execute(
        select(t.routing_decisions)
        .where(t.routing_decisions.c.order_id == order_id)
        .order_by(t.routing_decisions.c.id)
    ).all()
    return {
        "id": row.id,
        "shop": row.shop,
        "channel": row.channel,
        "external_id": row.external_id,
        "name": row.name,
        "status": row.status,
        "financial_status": row.financial_status,
        "currency": cur,
        "placed_at": row.placed_at,
        "updated_at": row.source_updated_at,
        "received_at": row.received_at,
        "cancelled_at": row.cancelled_at,
        "shipping_address": row.ship_to,
        "shipping_method": row.shipping_method,  # the policy's delivery_days say how fast
        "destination": None
        if row.dest_lat is None
        else {"lat": row.dest_lat, "lng": row.dest_lng, "source": row.dest_source},
        "amounts": {
            "line_items": _money(row.line_items_minor, cur),
            "discounts": _money(row.discounts_minor, cur),
            "tax": _money(row.tax_minor, cur),
            "shipping": _money(row.shipping_minor, cur),
            "total": _money(row.total_minor, cur),
            "taxes_included": row.taxes_included,
            "adds_up": row.amounts_add_up,
        },
        "tags": [x for x in row.tags.split(",") if x],
        "units": row.units,
        "backordered_units": row.backordered_units,
        "lines": [
            {
                "line_no": ln.line_no,
                "external_id": ln.external_id,
                "sku": ln.sku,
                "variant_id": ln.variant_id,
                "title": ln.title,
                "quantity": ln.quantity,
                "unit_price": _money(ln.unit_price_minor, cur),
                "discount": _money(ln.discount_minor, cur),
                "tax": _money(ln.tax_minor, cur),
                "grams": ln.grams,
                "requires_shipping": ln.requires_shipping,
                "properties": [{"name": p[0], "value": p[1]} for p in ln.properties],
                "reserved": ln.reserved_qty,
                "backordered": ln.backordered_qty,
            }
            for ln in lines
        ],
        "reservations": [
            {
                "id": r.id,
                "line_no": r.line_no,
                "sku": r.sku,
                "location_id": r.location_id,
                "quantity": r.quantity,
                "status": r.status,
                "created_at": r.created_at,
                "released_at": r.released_at,
            }
            for r in res
        ],
        "fulfilment_orders": [
            {
                "id": f.id,
                "location_id": f.location_id,
                "status": f.status,
                "items": f.items,
                "shipping": _money(f.shipping_minor, cur),
                "handling": _money(f.handling_minor, cur),
                "distance_km": f.distance_km,
                "weight_g": f.weight_g,
                "created_at": f.created_at,
            }
            for f in fos
        ],
        "routing": [
            {
                "policy": d.policy,
                "policy_version": d.policy_version,
                "experiment_id": d.experiment_id,
                "arm": d.arm,
                "cost": _money(d.cost_minor, d.currency),
                "currency": d.currency,
                "explanation": d.explanation,
                "decided_at": d.decided_at,
                **d.detail,
            }
            for d in decisions
        ],
    }


def _level(r: Any) -> dict[str, Any]:
    lv = StockLevel(r.sku, r.location_id, r.on_hand, r.reserved, r.safety_stock)
    return {
        "sku": lv.sku,
        "location_id": lv.location_id,
        "on_hand": lv.on_hand,
        "reserved": lv.reserved,
        "safety_stock": lv.safety_stock,
        "available": lv.available,
        "updated_at": r.updated_at,
    }


def stock_levels(
    conn: Connection,
    *,
    sku: str | None = None,
    location_id: str | None = None,
    limit: int = 500,
    after: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    s = t.stock_levels.c
    query = select(t.stock_levels).order_by(s.sku, s.location_id).limit(limit)
    if sku:
        query = query.where(s.sku == sku)
    if location_id:
        query = query.where(s.location_id == location_id)
    if after:
        query = query.where(
            or_(s.sku > after[0], and_(s.sku == after[0], s.location_id > after[1]))
        )
    return [_level(r) for r in conn.execute(query)]


def stock_level(conn: Connection, sku: str, location_id: str) -> dict[str, Any] | None:
    rows = stock_levels(conn, sku=sku, location_id=location_id, limit=1)
    return rows[0] if rows else None


def routing_policies(conn: Connection, shop: str) -> list[dict[str, Any]]:
    """The shop's routing policy versions, newest first."""
    rp = t.routing_policies.c
    rows = conn.execute(
        select(t.routing_policies).where(rp.shop == shop).order_by(rp.version.desc())
    ).all()
    return [dict(r._mapping) for r in rows]


def routing_policy(conn: Connection, shop: str, version: int) -> dict[str, Any]:
    rp = t.routing_policies.c
    row = conn.execute(
        select(t.routing_policies).where(rp.shop == shop, rp.version == version)
    ).first()
    if row is None:
        raise NotFound(f"{shop} has no routing policy version {version}", field="version")
    return dict(row._mapping)


def experiments(conn: Connection, shop: str) -> list[dict[str, Any]]:
    e = t.routing_experiments.c
    rows = conn.execute(
        select(t.routing_experiments).where(e.shop == shop).order_by(e.id.desc())
    ).all()
    return [dict(r._mapping) for r in rows]


def experiment(conn: Connection, shop: str, experiment_id: int) -> dict[str, Any]:
    e = t.routing_experiments.c
    row = conn.execute(
        select(t.routing_experiments).where(e.shop == shop, e.id == experiment_id)
    ).first()
    if row is None:
        raise NotFound(f"{shop} has no experiment {experiment_id}", field="experiment_id")
    out = dict(row._mapping)
    rp = t.routing_policies.c
    out["currency"] = conn.execute(
        select(rp.document).where(rp.shop == shop, rp.version == row.arm_a)
    ).scalar_one()["currency"]
    return out


def experiment_outcomes(
    conn: Connection, experiment_id: int, currency: str
) -> tuple[dict[str, list[ArmOutcome]], int]:
    """Each order's latest decision in the experiment, by arm (orders since cancelled are
    left out), and how many were left out for being in another currency."""
    d, o = t.routing_decisions.c, t.orders.c
    rows = conn.execute(
        select(d.order_id, d.arm, d.cost_minor, d.currency, d.detail)
        .join(t.orders, o.id == d.order_id)
        .where(d.experiment_id == experiment_id, o.status != "cancelled")
        .order_by(d.id)
    ).all()
    latest = {r.order_id: r for r in rows}
    arms: dict[str, list[ArmOutcome]] = {"A": [], "B": []}
    other = 0
    for r in latest.values():
        if r.currency != currency:
            other += 1
            continue
        chosen = r.detail.get("chosen", {})
        arms[r.arm].append(
            ArmOutcome(
                cost_minor=int(r.cost_minor),
                shipments=len(chosen.get("shipments", [])),
                backordered_units=sum(int(q) for q in chosen.get("backordered", {}).values()),
            )
        )
    return arms, other


def list_locations(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(t.locations).order_by(t.locations.c.id)).all()
    return [
        {
            "id": r.id,
            "name": r.name,
            "lat": r.lat,
            "lng": r.lng,
            "country_code": r.country_code,
            "region": r.region,
            "handling_cost": _money(r.handling_minor, r.currency),
            "currency": r.currency,
            "active": r.active,
        }
        for r in rows
    ]


def deliveries(conn: Connection, *, status: str | None, limit: int) -> list[dict[str, Any]]:
    w = t.webhook_inbox.c
    query = (
        select(
            w.id,
            w.shop,
            w.topic,
            w.webhook_id,
            w.event_id,
            w.received_at,
            w.status,
            w.attempts,
            w.error_code,
            w.error,
            w.order_id,
            w.processed_at,
        )
        .order_by(w.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(w.status == status)
    return [dict(r._mapping) for r in conn.execute(query)]


def summary(conn: Connection) -> dict[str, Any]:
    """Counts an operator asks for first: orders by status, units, splits, oversells."""
    o = t.orders.c
    by_status: dict[str, int] = dict(
        conn.execute(select(o.status, func.count()).group_by(o.status)).all()
    )
    agg = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(o.units), 0),
            func.coalesce(func.sum(o.backordered_units), 0),
            func.coalesce(func.sum(case((o.shipments > 1, 1), else_=0)), 0),
            func.coalesce(func.sum(case((o.shipments > 0, 1), else_=0)), 0),
        ).where(o.status != "cancelled")
    ).one()
    s = t.stock_levels.c
    oversold = conn.execute(
        select(
            func.coalesce(
                func.sum(case((s.reserved > s.on_hand, s.reserved - s.on_hand), else_=0)), 0
            )
        )
    ).scalar_one()
    shipped_orders = int(agg[4])
    w = t.webhook_inbox.c
    inbox: dict[str, int] = dict(
        conn.execute(select(w.status, func.count()).group_by(w.status)).all()
    )
    return {
        "orders": sum(by_status.values()),
        "by_status": by_status,
        "units": int(agg[1]),
        "backordered_units": int(agg[2]),
        "split_orders": int(agg[3]),
        "split_shipment_rate": (int(agg[3]) / shipped_orders) if shipped_orders else 0.0,
        "oversold_units": int(oversold),
        "webhooks": inbox,
    }


def network_kpis(conn: Connection) -> dict[str, Any]:
    """Fulfilment KPIs over the open fulfilment orders: cost, distance, splits, oversells."""
    f = t.fulfilment_orders.c
    o = t.orders.c
    fo = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(f.shipping_minor + f.handling_minor), 0),
            func.coalesce(func.avg(f.distance_km), 0.0),
        ).where(f.status == "open")
    ).one()
    currency = conn.execute(select(o.currency).limit(1)).scalar() or "USD"
    lines = conn.execute(select(func.count()).select_from(t.order_lines)).scalar_one()
    base = summary(conn)
    shipped_orders = (
        base["orders"]
        - base["by_status"].get("cancelled", 0)
        - base["by_status"].get("unroutable", 0)
    )
    cost = from_minor(int(fo[1]), currency)
    return {
        "orders": base["orders"],
        "lines": int(lines),
        "units": base["units"],
        "routed": base["by_status"].get("routed", 0),
        "backordered_orders": base["by_status"].get("backordered", 0),
        "backordered_units": base["backordered_units"],
        "unroutable": base["by_status"].get("unroutable", 0),
        "shipments": int(fo[0]),
        "split_orders": base["split_orders"],
        "split_shipment_rate": round(base["split_shipment_rate"], 4),
        "mean_shipping_distance_km": round(float(fo[2]), 1),
        "estimated_shipping_cost": str(cost.amount),
        "cost_per_order": str(
            (cost.amount / shipped_orders).quantize(Decimal("0.01")) if shipped_orders else 0
        ),
        "currency": currency,
        "oversold_units": base["oversold_units"],
    }


def wave_schedules(conn: Connection) -> dict[str, int]:
    """Shop -> wave minutes, for the shops whose active routing policy runs a wave timer."""
    rp = t.routing_policies.c
    rows = conn.execute(select(rp.shop, rp.document).where(rp.status == "active")).all()
    return {
        r.shop: int(r.document["wave_minutes"])
        for r in rows
        if int(r.document.get("wave_minutes") or 0) > 0
    }
