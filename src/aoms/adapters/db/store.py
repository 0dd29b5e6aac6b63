"""The database behind the ports: SQLAlchemy Core on SQLite (default) or PostgreSQL.

Concurrency: every write transaction on SQLite starts with BEGIN IMMEDIATE (one writer at a
time, WAL lets readers go on); on PostgreSQL the stock rows an order needs are locked with
SELECT … FOR UPDATE in (sku, location) order, so racing reservations queue instead of
overselling, and never deadlock on each other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from aoms.adapters.db import ledger
from aoms.adapters.db import schema as t
from aoms.adapters.db.routing_tx import RoutingTx
from aoms.adapters.db.schema import from_minor, to_minor
from aoms.adapters.db.statements import SQL
from aoms.domain.errors import Conflict, Unavailable, UnknownLocation, ValueOutOfRange
from aoms.domain.events import Event
from aoms.domain.geo import Point
from aoms.domain.handoff import AT_WAREHOUSE
from aoms.domain.inventory import StockLevel
from aoms.domain.orders import Address, AmountCheck, LineAllocation, Order, OrderLine, OrderStatus
from aoms.domain.policies import PolicyRegistry
from aoms.domain.routing import Candidate, Policy, RoutingPlan
from aoms.services.ports import ActiveReservation, Delivery, StoredOrder

if TYPE_CHECKING:
    from aoms.adapters.db.handoff import SqlHandoffTx


class SqlStore:
    def __init__(
        self,
        engine: Engine,
        *,
        default_policy: Policy = Policy.LANDED_COST,
        policies: PolicyRegistry | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.default_policy = default_policy  # for shops that have not chosen one
        self.policies = policies or PolicyRegistry()  # built-ins and installed plug-ins
        # SQLite has one write lock per file, and a writer that finds it taken sleeps in the
        # busy handler (1, 2, 5 ms …) while a busy worker takes it again at once: webhook
        # acknowledgements starve. Threads of this process queue on this lock instead and are
        # woken the moment it is free. (Other processes still meet the busy handler.)
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    @contextmanager
    def writer(self) -> Iterator[Connection]:
        """A write transaction: commits on leaving, rolls back on an error."""
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[SqlTx]:
        try:
            with self.writer() as conn:
                tx = SqlTx(conn, self.dialect, self.default_policy, self.policies)
                yield tx
                tx.flush()
        except IntegrityError as exc:
            raise Conflict(f"a concurrent write got there first: {exc.orig}") from exc
        except DataError as exc:
            raise ValueOutOfRange(f"a value does not fit: {exc.orig}") from exc
        except OperationalError as exc:
            if "deadlock" in str(exc.orig).lower() or "could not serialize" in str(exc.orig):
                raise Conflict(f"a concurrent write got there first: {exc.orig}") from exc
            if "locked" in str(exc.orig).lower() or "connect" in str(exc.orig).lower():
                raise Unavailable(f"the database is unavailable: {exc.orig}") from exc
            raise

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def pause_between_writes(self) -> None:
        """Between two worker transactions on SQLite, leave the one write lock (and, in one
        process, the interpreter) free for a moment, so webhook acknowledgements waiting for
        it get in before the worker takes it again. PostgreSQL has no such single lock."""
        if self.dialect == "sqlite":
            time.sleep(0.0005)

    def available_units(self, sku: str) -> int:
        s = t.stock_levels.c
        free = func.greatest if self.dialect == "postgresql" else func.max
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.sum(free(s.on_hand - s.reserved - s.safety_stock, 0))).where(
                    s.sku == sku
                )
            ).scalar()
        return int(total or 0)

    def waiting_orders(self, status: OrderStatus, sku: str | None, limit: int) -> list[int]:
        o = t.orders.c
        query = select(o.id).where(o.status == status.value).order_by(o.id).limit(limit)
        if sku is not None:
            query = query.where(
                o.id.in_(select(t.order_lines.c.order_id).where(t.order_lines.c.sku == sku))
            )
        with self.engine.connect() as conn:
            return [int(i) for i in conn.execute(query).scalars()]

    def backorders_to_retry(self, routed_before: datetime, limit: int) -> list[int]:
        """Backordered orders, oldest first, last routed before `routed_before` (or never),
        some of whose backordered units have free stock somewhere — what a full day's
        capacity, not a missing SKU, may have held back. Those with none wait for stock to
        arrive (each receipt routes its SKU's backorders), and are not tried again daily."""
        o, ln, s, d = t.orders.c, t.order_lines.c, t.stock_levels.c, t.routing_decisions.c
        free = (
            select(ln.order_id)
            .join(t.stock_levels, s.sku == ln.sku)
            .where(
                ln.order_id == o.id,
                ln.backordered_qty > 0,
                s.on_hand - s.reserved - s.safety_stock > 0,
            )
            .exists()
        )
        last = select(func.max(d.decided_at)).where(d.order_id == o.id).scalar_subquery()
        query = (
            select(o.id)
            .where(
                o.status == OrderStatus.BACKORDERED.value,
                free,
                or_(last.is_(None), last < routed_before),
            )
            .order_by(o.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [int(i) for i in conn.execute(query).scalars()]

    def pending_deliveries(self, limit: int, lane: int = 0, lanes: int = 1) -> list[Delivery]:
        """Oldest pending deliveries; with several lanes, only those whose id falls in `lane`
        (concurrent workers then rarely meet on a row, and the claim settles it when they do)."""
        w = t.webhook_inbox.c
        query = select(w.id, w.shop, w.topic, w.body, w.attempts).where(w.status == "pending")
        if lanes > 1:
            query = query.where(w.id % lanes == lane)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(w.id).limit(limit)).all()
        return [Delivery(r.id, r.shop, r.topic, bytes(r.body), r.attempts) for r in rows]


class SqlTx(RoutingTx):
    def __init__(
        self,
        conn: Connection,
        dialect: str,
        default_policy: Policy = Policy.LANDED_COST,
        policies: PolicyRegistry | None = None,
    ) -> None:
        self.conn = conn
        self.dialect = dialect
        self.default_policy = default_policy
        self.policies = policies or PolicyRegistry()
        self._events: list[dict[str, Any]] = []
        self.ledger_queue: list[tuple[str, str | None, dict[str, Any]]] = []  # see ledger.py

    # -- orders ---------------------------------------------------------------------------
    def _stored(self, row: Any) -> StoredOrder:
        dest = Point(row.dest_lat, row.dest_lng) if row.dest_lat is not None else None
        return StoredOrder(
            row.id,
            OrderStatus(row.status),
            row.source_updated_at,
            row.routing_key,
            row.currency,
            dest,
            row.channel_key,
            row.shipping_method,
        )

    def find_order(self, shop: str, channel: str, external_id: str) -> StoredOrder | None:
        row = self.conn.execute(
            SQL.find_order[self.dialect],
            {"shop": shop, "channel": channel, "external_id": external_id},
        ).first()
        return self._stored(row) if row else None

    def get_order(self, order_id: int) -> StoredOrder | None:
        row = self.conn.execute(SQL.get_order[self.dialect], {"order_id": order_id}).first()
        return self._stored(row) if row else None

    def _order_values(
        self,
        order: Order,
        dest: Point | None,
        dest_source: str | None,
        amounts: AmountCheck,
        routing_key: str,
    ) -> dict[str, Any]:
        a = order.shipping_address
        return {
            "name": order.name,
            "financial_status": order.financial_status,
            "source_updated_at": order.source_updated_at,
            "ship_to": {
                "name": a.name,
                "address1": a.address1,
                "city": a.city,
                "zip": a.zip,
                "province_code": a.province_code,
                "country_code": a.country_code,
            },
            "dest_lat": dest.lat if dest else None,
            "dest_lng": dest.lng if dest else None,
            "dest_source": dest_source,
            "routing_key": routing_key,
            "line_items_minor": to_minor(amounts.line_items),
            "discounts_minor": to_minor(amounts.discounts),
            "tax_minor": to_minor(amounts.tax),
            "shipping_minor": to_minor(amounts.shipping),
            "total_minor": to_minor(amounts.stated_total or amounts.computed_total),
            "taxes_included": order.taxes_included,
            "amounts_add_up": amounts.adds_up,
            "tags": ",".join(order.tags),
            "shipping_method": order.shipping_method,
            "units": sum(ln.quantity for ln in order.lines),
        }

    def insert_order(
        self,
        order: Order,
        *,
        status: OrderStatus,
        dest: Point | None,
        dest_source: str | None,
        amounts: AmountCheck,
        routing_key: str,
        now: datetime,
        channel_key: str | None = None,
    ) -> int:
        values = self._order_values(order, dest, dest_source, amounts, routing_key)
        values["channel_key"] = channel_key
        order_id = self.conn.execute(
            SQL.insert_order,
            {
                "shop": order.shop,
                "channel": order.channel,
                "external_id": order.external_id,
                "status": status.value,
                "currency": order.currency,
                "placed_at": order.placed_at,
                "received_at": now,
                "cancelled_at": None,
                "backordered_units": 0,
                "shipments": 0,
                **values,
            },
        ).scalar_one()
        self._insert_lines(order_id, order)
        return int(order_id)

    def _insert_lines(self, order_id: int, order: Order) -> None:
        if not order.lines:
            return
        self.conn.execute(
            SQL.insert_lines,
            [
                {
                    "order_id": order_id,
                    "line_no": ln.line_no,
                    "external_id": ln.external_id,
                    "sku": ln.sku,
                    "variant_id": ln.variant_id,
                    "title": ln.title,
                    "quantity": ln.quantity,
                    "unit_price_minor": to_minor(ln.unit_price),
                    "discount_minor": to_minor(ln.discount),
                    "tax_minor": to_minor(ln.tax),
                    "grams": ln.grams,
                    "requires_shipping": ln.requires_shipping,
                    "properties": [list(p) for p in ln.properties],
                    "reserved_qty": 0,
                    "backordered_qty": 0,
                }
                for ln in order.lines
            ],
        )

    def update_order(
        self,
        order_id: int,
        order: Order,
        *,
        dest: Point | None,
        dest_source: str | None,
        amounts: AmountCheck,
        routing_key: str,
        replace_lines: bool,
        channel_key: str | None = None,
    ) -> None:
        values = self._order_values(order, dest, dest_source, amounts, routing_key)
        if channel_key is not None:
            values["channel_key"] = channel_key
        self.conn.execute(SQL.update_order, {"order_id_": order_id, **values})
        if replace_lines:  # else the lines, and what they hold, stay as they are
            self.conn.execute(SQL.delete_lines, {"order_id": order_id})
            self._insert_lines(order_id, order)

    def set_order_outcome(
        self,
        order_id: int,
        *,
        status: OrderStatus,
        backordered_units: int,
        shipments: int,
        line_reserved: dict[int, int],
        line_backordered: dict[int, int],
    ) -> None:
        self.conn.execute(SQL.order_outcome, {
            "order_id_": order_id, "status": status.value,
            "backordered_units": backordered_units, "shipments": shipments,
        })  # fmt: skip
        touched = sorted(set(line_reserved) | set(line_backordered))
        if touched:
            self.conn.execute(
                SQL.line_outcome,
                [
                    {
                        "order_id_": order_id,
                        "line_no_": n,
                        "reserved_qty": line_reserved.get(n, 0),
                        "backordered_qty": line_backordered.get(n, 0),
                    }
                    for n in touched
                ],
            )

    def set_cancelled(self, order_id: int, at: datetime) -> None:
        self.conn.execute(
            update(t.orders)
            .where(t.orders.c.id == order_id)
            .values(status=OrderStatus.CANCELLED.value, cancelled_at=at, backordered_units=0)
        )
        self.conn.execute(
            update(t.order_lines)
            .where(t.order_lines.c.order_id == order_id)
            .values(reserved_qty=0, backordered_qty=0)
        )

    def load_order(self, order_id: int) -> Order:
        """The order as the domain sees it, rebuilt from its rows."""
        row = self.conn.execute(select(t.orders).where(t.orders.c.id == order_id)).one()
        lines = self.conn.execute(
            select(t.order_lines)
            .where(t.order_lines.c.order_id == order_id)
            .order_by(t.order_lines.c.line_no)
        ).all()
        cur = row.currency
        ship = row.ship_to or {}
        return Order(
            shop=row.shop, channel=row.channel, external_id=row.external_id, name=row.name,
            currency=cur, placed_at=row.placed_at, source_updated_at=row.source_updated_at,
            lines=tuple(
                OrderLine(
                    line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity,
                    unit_price=from_minor(ln.unit_price_minor, cur),
                    discount=from_minor(ln.discount_minor, cur),
                    tax=from_minor(ln.tax_minor, cur), grams=ln.grams,
                    requires_shipping=ln.requires_shipping, external_id=ln.external_id,
                    variant_id=ln.variant_id, title=ln.title,
                )
                for ln in lines
            ),
            shipping_address=Address(
                country_code=ship.get("country_code"), province_code=ship.get("province_code"),
                city=ship.get("city"), zip=ship.get("zip"), address1=ship.get("address1"),
                name=ship.get("name"),
            ),
            financial_status=row.financial_status,
            cancelled_at=row.cancelled_at, shipping_method=row.shipping_method,
        )  # fmt: skip

    def handed_off(self, order_id: int) -> bool:
        """Whether a warehouse has (or had) some of the order: a fulfilment order of it went
        past `open` and was not cancelled or rejected."""
        f = t.fulfilment_orders.c
        found = self.conn.execute(
            select(f.id)
            .where(
                f.order_id == order_id,
                f.status.in_(sorted(s.value for s in AT_WAREHOUSE)),
            )
            .limit(1)
        ).first()
        return found is not None

    def handoff(self) -> SqlHandoffTx:
        """This transaction with the hand-off tables (`services.handoff.HandoffTx`)."""
        from aoms.adapters.db.handoff import SqlHandoffTx  # it builds on this module

        return SqlHandoffTx(self)

    def open_holds(self, order_id: int) -> list[str]:
        return open_hold_kinds(self.conn, order_id)

    def lock_stock(self, skus: Iterable[str]) -> list[StockLevel]:
        query = SQL.lock_stock.get(self.dialect, SQL.lock_stock["sqlite"])
        rows = self.conn.execute(query, {"skus": sorted(set(skus))})
        return [StockLevel(*row) for row in rows]

    def reserved_skus(self, order_id: int) -> list[str]:
        r = t.reservations.c
        rows = self.conn.execute(
            select(r.sku).where(r.order_id == order_id, r.status == "active").distinct()
        )
        return sorted(rows.scalars())

    def active_reservations(self, order_id: int) -> list[ActiveReservation]:
        r = t.reservations.c
        rows = self.conn.execute(
            select(r.id, r.line_no, r.sku, r.location_id, r.quantity)
            .where(r.order_id == order_id, r.status == "active")
            .order_by(r.id)
        )
        return [ActiveReservation(*row) for row in rows]

    def candidates(self, levels: Sequence[StockLevel]) -> list[Candidate]:
        by_location: dict[str, dict[str, int]] = {}
        for lv in levels:
            if lv.available > 0:
                by_location.setdefault(lv.location_id, {})[lv.sku] = lv.available
        if not by_location:
            return []
        rows = self.conn.execute(SQL.candidates, {"ids": sorted(by_location)}).all()
        return [
            Candidate(
                r.id,
                r.name,
                Point(r.lat, r.lng),
                from_minor(r.handling_minor, r.currency),
                by_location[r.id],
            )
            for r in rows
        ]

    def change_stock(
        self,
        sku: str,
        location_id: str,
        *,
        on_hand: int = 0,
        reserved: int = 0,
        reason: str,
        reference: str | None,
        now: datetime,
        idempotency_key: str | None = None,
        safety_stock: int | None = None,
    ) -> StockLevel:
        s = t.stock_levels.c
        if safety_stock is not None:
            self.conn.execute(
                update(t.stock_levels)
                .where(s.sku == sku, s.location_id == location_id)
                .values(safety_stock=safety_stock)
            )
        row = self.conn.execute(
            SQL.change_stock,
            {
                "sku_": sku,
                "location_id_": location_id,
                "d_on_hand": on_hand,
                "d_reserved": reserved,
                "now": now,
            },
        ).first()
        if row is None:
            known = self.conn.execute(SQL.location_known, {"location_id": location_id}).scalar()
            if known is None:
                raise UnknownLocation(f"no location {location_id!r}", field="location_id")
            row = self.conn.execute(
                SQL.insert_stock,
                {
                    "sku": sku,
                    "location_id": location_id,
                    "on_hand": on_hand,
                    "reserved": reserved,
                    "safety_stock": safety_stock or 0,
                    "updated_at": now,
                },
            ).one()
        ledger.record_movements(
            self,
            [
                {
                    "sku": sku,
                    "location_id": location_id,
                    "on_hand_delta": on_hand,
                    "reserved_delta": reserved,
                    "reason": reason,
                    "reference": reference,
                    "idempotency_key": idempotency_key,
                    "at": now,
                }
            ],
        )
        return StockLevel(sku, location_id, row.on_hand, row.reserved, row.safety_stock)

    def movement_for(self, idempotency_key: str) -> tuple[str, str] | None:
        """(sku, location) of the movement made under this key, if any."""
        m = t.stock_movements.c
        row = self.conn.execute(
            select(m.sku, m.location_id).where(m.idempotency_key == idempotency_key)
        ).first()
        return (row.sku, row.location_id) if row else None

    # -- reservations and fulfilment orders ---------------------------------------------------
    def reserve(self, order_id: int, allocations: Sequence[LineAllocation], now: datetime) -> None:
        """Record the reservations and add them to the (locked) stock rows, with movements."""
        if not allocations:
            return
        ref = f"order:{order_id}"
        self.conn.execute(SQL.insert_reservations, [
            {"order_id": order_id, "line_no": a.line_no, "sku": a.sku,
             "location_id": a.location_id, "quantity": a.quantity, "status": "active",
             "created_at": now}
            for a in allocations
        ])  # fmt: skip
        moves = sorted((a.sku, a.location_id, a.quantity) for a in allocations)
        self._move_reserved(moves, "reserve", ref, now)

    def _move_reserved(self, moves: list[tuple[str, str, int]], reason: str, reference: str,
                       now: datetime) -> None:  # fmt: skip
        self.conn.execute(SQL.bump_reserved, [
            {"sku_": sku, "location_id_": loc, "d_reserved": q, "now": now}
            for sku, loc, q in moves
        ])  # fmt: skip
        ledger.record_movements(self, [
            {"sku": sku, "location_id": loc, "on_hand_delta": 0, "reserved_delta": q,
             "reason": reason, "reference": reference, "idempotency_key": None, "at": now}
            for sku, loc, q in moves
        ])  # fmt: skip

    def release(self, order_id: int, now: datetime) -> list[ActiveReservation]:
        """Release the order's active reservations and give their units back to stock.

        Only rows this statement moved from active to released are given back, so a release
        that finds nothing active (a repeat) changes no stock.
        """
        rows = self.conn.execute(
            SQL.release_reservations, {"order_id_": order_id, "now": now}
        ).all()
        held = sorted((ActiveReservation(*row) for row in rows), key=lambda r: r.id)
        if held:
            moves = sorted((r.sku, r.location_id, -r.quantity) for r in held)  # lock order
            self._move_reserved(moves, "release", f"order:{order_id}", now)
        return held

    def replace_fulfilment_orders(
        self, order_id: int, plan: RoutingPlan | None, now: datetime
    ) -> None:
        self.conn.execute(SQL.close_fulfilment_orders, {"order_id_": order_id})
        if plan is None or not plan.chosen.shipments:
            return
        self.conn.execute(
            SQL.insert_fulfilment_orders,
            [
                {
                    "order_id": order_id,
                    "location_id": s.location_id,
                    "status": "open",
                    "items": dict(s.items),
                    "shipping_minor": to_minor(s.shipping),
                    "handling_minor": to_minor(s.handling),
                    "distance_km": s.distance_km,
                    "weight_g": s.weight_g,
                    "created_at": now,
                }
                for s in plan.chosen.shipments
            ],
        )

    def add_decision(
        self,
        order_id: int,
        plan: RoutingPlan,
        now: datetime,
        *,
        policy_version: int | None = None,
        experiment_id: int | None = None,
        arm: str | None = None,
    ) -> None:
        def option(o: Any) -> dict[str, Any]:
            return {
                "cost": str(o.cost.amount),
                "units": o.units,
                "backordered": dict(o.backordered),
                "shipments": [
                    {
                        "location_id": s.location_id,
                        "location": s.location_name,
                        "items": dict(s.items),
                        "distance_km": s.distance_km,
                        "weight_g": s.weight_g,
                        "shipping": str(s.shipping.amount),
                        "handling": str(s.handling.amount),
                        **({"service": s.service} if s.service else {}),
                        **({} if s.transit_days is None else {"transit_days": s.transit_days}),
                    }
                    for s in o.shipments
                ],
            }

        self.conn.execute(
            SQL.insert_decision,
            {
                "order_id": order_id,
                "policy": str(plan.policy),
                "policy_version": policy_version,
                "experiment_id": experiment_id,
                "arm": arm,
                "cost_minor": to_minor(plan.chosen.cost),
                "currency": plan.chosen.cost.currency,
                "explanation": plan.explanation,
                "detail": {
                    "chosen": option(plan.chosen),
                    "runners_up": [option(o) for o in plan.runners_up],
                    "options_considered": plan.options_considered,
                    **({} if plan.within_days is None else {"within_days": plan.within_days}),
                },
                "decided_at": now,
            },
        )
        ledger.append(self, "routing_decision", f"order:{order_id}", {
            "order_id": order_id, "policy": str(plan.policy), "policy_version": policy_version,
            "arm": arm, "cost_minor": to_minor(plan.chosen.cost),
            "currency": plan.chosen.cost.currency, "explanation": plan.explanation,
            "shipments": [{"location_id": s.location_id, "items": dict(s.items)}
                          for s in plan.chosen.shipments],
            "decided_at": ledger.stamp(now),
        })  # fmt: skip

    # -- events and the inbox ---------------------------------------------------------------
    def emit(self, events: Iterable[Event], now: datetime) -> None:
        """Queue events; they are written by flush(), in this transaction, before it commits."""
        self._events.extend(
            {"name": e.name, "aggregate": e.aggregate, "data": e.data, "created_at": now}
            for e in events
        )

    def flush(self) -> None:
        if self.ledger_queue:
            now = self._events[-1]["created_at"] if self._events else datetime.now(UTC)
            ledger.flush(self, now)
        if self._events:
            self.conn.execute(SQL.insert_events, self._events)
            self._events = []

    def claim_delivery(self, delivery_id: int) -> bool:
        """Lock a pending delivery for this transaction; False if another worker holds it or
        it is no longer pending. (SQLite transactions already run one writer at a time.)"""
        query = SQL.claim_delivery.get(self.dialect, SQL.claim_delivery["sqlite"])
        return self.conn.execute(query, {"delivery_id": delivery_id}).first() is not None

    def finish_delivery(
        self,
        delivery_id: int,
        *,
        status: str,
        now: datetime,
        order_id: int | None = None,
        error_code: str | None = None,
        error: str | None = None,
    ) -> None:
        self.conn.execute(SQL.finish_delivery, {
            "id_": delivery_id, "status": status, "processed_at": now, "order_id": order_id,
            "error_code": error_code, "error": error,
        })  # fmt: skip


def open_hold_kinds(conn: Connection, order_id: int) -> list[str]:
    """The kinds of the order's open holds (none: nothing holds it back)."""
    h = t.holds.c
    rows = conn.execute(
        select(h.kind).where(h.order_id == order_id, h.status == "open").order_by(h.id)
    )
    return list(rows.scalars())
