"""Statements built once and executed with parameters (SQLAlchemy compiles each once per
dialect, which is most of the cost of a small transaction)."""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, select, update

from aoms.adapters.db import schema as t


class _Statements:
    def __init__(self) -> None:
        o, s, r, f, loc = (
            t.orders.c,
            t.stock_levels.c,
            t.reservations.c,
            t.fulfilment_orders.c,
            t.locations.c,
        )
        order_cols = (
            o.id,
            o.status,
            o.source_updated_at,
            o.routing_key,
            o.currency,
            o.dest_lat,
            o.dest_lng,
            o.channel_key,
            o.shipping_method,
        )
        find = select(*order_cols).where(
            o.shop == bindparam("shop"),
            o.channel == bindparam("channel"),
            o.external_id == bindparam("external_id"),
        )
        get = select(*order_cols).where(o.id == bindparam("order_id"))
        # Every write to an order starts by locking its row (PostgreSQL; SQLite transactions
        # already hold the one write lock), so two writers never act on the same old state.
        self.find_order = {"sqlite": find, "postgresql": find.with_for_update()}
        self.get_order = {"sqlite": get, "postgresql": get.with_for_update()}
        self.insert_order = insert(t.orders).returning(o.id)
        self.update_order = update(t.orders).where(o.id == bindparam("order_id_"))
        self.insert_lines = insert(t.order_lines)
        self.delete_lines = t.order_lines.delete().where(
            t.order_lines.c.order_id == bindparam("order_id")
        )
        self.line_outcome = (
            update(t.order_lines)
            .where(
                t.order_lines.c.order_id == bindparam("order_id_"),
                t.order_lines.c.line_no == bindparam("line_no_"),
            )
            .values(
                reserved_qty=bindparam("reserved_qty"), backordered_qty=bindparam("backordered_qty")
            )
        )
        rp, ex = t.routing_policies.c, t.routing_experiments.c
        # The shop's policy name, and whether it has an active version or a running experiment,
        # in one round trip (most shops have neither, and then nothing more is read).
        self.policy = select(
            t.shops.c.routing_policy,
            select(rp.version)
            .where(rp.shop == t.shops.c.domain, rp.status == "active")
            .scalar_subquery()
            .label("active_version"),
            select(ex.id)
            .where(ex.shop == t.shops.c.domain, ex.status == "running")
            .scalar_subquery()
            .label("experiment_id"),
        ).where(t.shops.c.domain == bindparam("shop"))
        self.rate_card = select(t.rate_cards.c.card, t.rate_cards.c.updated_at).where(
            t.rate_cards.c.currency == bindparam("currency")
        )
        self.active_policy = select(t.routing_policies).where(
            rp.shop == bindparam("shop"), rp.status == "active"
        )
        self.running_experiment = select(
            t.routing_experiments.c.id,
            t.routing_experiments.c.arm_a,
            t.routing_experiments.c.arm_b,
            t.routing_experiments.c.share_b,
        ).where(
            t.routing_experiments.c.shop == bindparam("shop"),
            t.routing_experiments.c.status == "running",
        )
        self.lock_locations = (
            select(loc.id)
            .where(loc.id.in_(bindparam("ids", expanding=True)))
            .order_by(loc.id)
            .with_for_update()
        )
        self.shipped_since = (
            select(f.location_id, func.count().label("n"))
            .where(
                f.location_id.in_(bindparam("ids", expanding=True)),
                f.created_at >= bindparam("since"),
                f.created_at < bindparam("until"),
                f.status != "cancelled",
            )
            .group_by(f.location_id)
        )
        levels = (
            select(s.sku, s.location_id, s.on_hand, s.reserved, s.safety_stock)
            .where(s.sku.in_(bindparam("skus", expanding=True)))
            .order_by(s.sku, s.location_id)
        )
        self.lock_stock = {"sqlite": levels, "postgresql": levels.with_for_update()}
        self.candidates = (
            select(loc.id, loc.name, loc.lat, loc.lng, loc.handling_minor, loc.currency)
            .where(loc.id.in_(bindparam("ids", expanding=True)), loc.active.is_(True))
            .order_by(loc.id)
        )
        self.change_stock = (
            update(t.stock_levels)
            .where(s.sku == bindparam("sku_"), s.location_id == bindparam("location_id_"))
            .values(
                on_hand=s.on_hand + bindparam("d_on_hand"),
                reserved=s.reserved + bindparam("d_reserved"),
                updated_at=bindparam("now"),
            )
            .returning(s.on_hand, s.reserved, s.safety_stock)
        )
        self.insert_movement = insert(t.stock_movements)
        self.bump_reserved = (
            update(t.stock_levels)
            .where(s.sku == bindparam("sku_"), s.location_id == bindparam("location_id_"))
            .values(reserved=s.reserved + bindparam("d_reserved"), updated_at=bindparam("now"))
        )
        self.release_reservations = (
            update(t.reservations)
            .where(r.order_id == bindparam("order_id_"), r.status == "active")
            .values(status="released", released_at=bindparam("now"))
            .returning(r.id, r.line_no, r.sku, r.location_id, r.quantity)
        )
        self.insert_stock = insert(t.stock_levels).returning(s.on_hand, s.reserved, s.safety_stock)
        self.location_known = select(loc.id).where(loc.id == bindparam("location_id"))
        self.order_outcome = update(t.orders).where(o.id == bindparam("order_id_"))
        self.insert_reservations = insert(t.reservations)
        self.close_fulfilment_orders = (
            update(t.fulfilment_orders)
            .where(f.order_id == bindparam("order_id_"), f.status == "open")
            .values(status="cancelled")
        )
        self.insert_fulfilment_orders = insert(t.fulfilment_orders)
        self.insert_decision = insert(t.routing_decisions)
        self.insert_events = insert(t.outbox)
        w = t.webhook_inbox.c
        self.finish_delivery = (
            update(t.webhook_inbox).where(w.id == bindparam("id_")).values(attempts=w.attempts + 1)
        )
        claim = select(t.webhook_inbox.c.id).where(
            t.webhook_inbox.c.id == bindparam("delivery_id"), t.webhook_inbox.c.status == "pending"
        )
        self.claim_delivery = {
            "sqlite": claim,
            "postgresql": claim.with_for_update(skip_locked=True),
        }


SQL = _Statements()
