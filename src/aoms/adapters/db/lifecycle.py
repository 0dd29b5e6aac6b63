"""Storage for the order lifecycle: holds, the release for fulfilment, the signals and
decisions of fraud checks, and each store's settings. Works inside a `SqlTx`, so what it
writes commits with the order change and its events."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, select, update

from aoms.adapters.db import ledger
from aoms.adapters.db import schema as t
from aoms.adapters.db.engine import upsert_insert
from aoms.adapters.db.lifecycle_queries import shipping_progress
from aoms.adapters.db.schema import from_minor
from aoms.adapters.db.store import SqlStore, SqlTx
from aoms.domain.events import Event
from aoms.domain.handoff import WONT_SHIP
from aoms.domain.lifecycle import (
    FraudDecision,
    HoldKind,
    HoldStatus,
    LifecycleSettings,
    LineState,
)
from aoms.domain.orders import OrderLine, OrderStatus
from aoms.domain.routing import RoutingPlan
from aoms.services.holds import Hold, OrderFacts
from aoms.services.order_edits import Cut
from aoms.services.stock_checks import StockRow


class SqlLifecycleStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    @contextmanager
    def transaction(self) -> Iterator[SqlLifecycleRepo]:
        with self.store.transaction() as tx:
            yield SqlLifecycleRepo(tx)


class SqlLifecycleRepo:
    def __init__(self, tx: SqlTx) -> None:
        self._tx = tx
        self.conn = tx.conn

    @property
    def tx(self) -> SqlTx:
        return self._tx

    def ledger(self, kind: str, ref: str | None, body: Mapping[str, Any]) -> None:
        ledger.append(self._tx, kind, ref, body)

    # -- settings -------------------------------------------------------------------------
    def settings(self, shop: str) -> LifecycleSettings:
        c = t.shop_lifecycle_settings.c
        raw = self.conn.execute(select(c.settings).where(c.shop == shop)).scalar()
        return LifecycleSettings.from_dict(raw) if raw else LifecycleSettings()

    def put_settings(self, shop: str, settings: LifecycleSettings, now: datetime) -> None:
        c = t.shop_lifecycle_settings.c
        values = {"settings": settings.as_dict(), "updated_at": now}
        done = self.conn.execute(
            update(t.shop_lifecycle_settings).where(c.shop == shop).values(**values)
        ).rowcount
        if not done:
            self.conn.execute(insert(t.shop_lifecycle_settings).values(shop=shop, **values))

    # -- orders -----------------------------------------------------------------------------
    def order_facts(self, order_id: int) -> OrderFacts | None:
        o = t.orders.c
        row = self.conn.execute(
            select(o.id, o.shop, o.status, o.financial_status, o.total_minor, o.currency,
                   o.ship_to, o.dest_lat, o.placed_at, o.tags).where(o.id == order_id)
        ).first()  # fmt: skip
        if row is None:
            return None
        to_ship, shipped = shipping_progress(self.conn, order_id)
        return OrderFacts(
            id=row.id,
            shop=row.shop,
            status=OrderStatus(row.status),
            financial_status=row.financial_status,
            total=from_minor(row.total_minor or 0, row.currency),
            shipping_country=(row.ship_to or {}).get("country_code"),
            located=row.dest_lat is not None,
            placed_at=row.placed_at,
            tags=tuple(x for x in (row.tags or "").split(",") if x),
            shipped_in_full=to_ship > 0 and shipped >= to_ship,
        )

    # -- holds ------------------------------------------------------------------------------
    @staticmethod
    def _hold(row: Any) -> Hold:
        return Hold(row.id, row.order_id, HoldKind(row.kind), row.reason, HoldStatus(row.status))

    def holds_of(self, order_id: int, status: HoldStatus | None = None) -> list[Hold]:
        h = t.holds.c
        query = select(h.id, h.order_id, h.kind, h.reason, h.status).where(h.order_id == order_id)
        if status is not None:
            query = query.where(h.status == status.value)
        return [self._hold(r) for r in self.conn.execute(query.order_by(h.id))]

    def hold(self, hold_id: int) -> Hold | None:
        h = t.holds.c
        row = self.conn.execute(
            select(h.id, h.order_id, h.kind, h.reason, h.status).where(h.id == hold_id)
        ).first()
        return self._hold(row) if row else None

    def lock_hold(self, hold_id: int) -> Hold | None:
        h = t.holds.c
        query = select(h.id, h.order_id, h.kind, h.reason, h.status).where(h.id == hold_id)
        if self._tx.dialect == "postgresql":
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return self._hold(row) if row else None

    def add_hold(
        self, order_id: int, kind: HoldKind, reason: str, detail: Mapping[str, Any], now: datetime
    ) -> int:
        return int(
            self.conn.execute(
                insert(t.holds)
                .values(order_id=order_id, kind=kind.value, reason=reason, detail=dict(detail),
                        status=HoldStatus.OPEN.value, created_at=now)
                .returning(t.holds.c.id)
            ).scalar_one()
        )  # fmt: skip

    def resolve_hold(
        self, hold_id: int, status: HoldStatus, actor: str, note: str | None, now: datetime
    ) -> None:
        h = t.holds.c
        self.conn.execute(
            update(t.holds)
            .where(h.id == hold_id, h.status == HoldStatus.OPEN.value)
            .values(status=status.value, resolved_at=now, resolved_by=actor, note=note)
        )

    # -- release and signals --------------------------------------------------------------------
    def _lifecycle_row(self, order_id: int) -> Any:
        c = t.order_lifecycle.c
        return self.conn.execute(select(t.order_lifecycle).where(c.order_id == order_id)).first()

    def released_at(self, order_id: int) -> datetime | None:
        row = self._lifecycle_row(order_id)
        return row.released_at if row else None

    def _upsert(self, order_id: int, values: dict[str, Any], placed_at: datetime) -> None:
        c = t.order_lifecycle.c
        done = self.conn.execute(
            update(t.order_lifecycle).where(c.order_id == order_id).values(**values)
        ).rowcount
        if not done:
            self.conn.execute(
                insert(t.order_lifecycle).values(
                    {"order_id": order_id, "placed_at": placed_at, **values}
                )
            )

    def mark_released(self, order_id: int, now: datetime) -> None:
        self._upsert(order_id, {"released_at": now}, now)

    def remember_signals(
        self,
        order_id: int,
        *,
        customer_key: str | None,
        address_key: str | None,
        billing_country: str | None,
        placed_at: datetime,
    ) -> None:
        values = {"customer_key": customer_key, "address_key": address_key,
                  "billing_country": billing_country, "placed_at": placed_at}  # fmt: skip
        stmt = upsert_insert(self.conn, t.order_lifecycle).values(order_id=order_id, **values)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["order_id"], set_=values))

    def signals_of(self, order_id: int) -> dict[str, Any] | None:
        row = self._lifecycle_row(order_id)
        if row is None:
            return None
        return {"customer_key": row.customer_key, "address_key": row.address_key,
                "billing_country": row.billing_country}  # fmt: skip

    def orders_since(
        self, customer_key: str | None, address_key: str | None, since: datetime
    ) -> tuple[int, int]:
        c = t.order_lifecycle.c

        def count(column: Any, key: str | None) -> Any:
            if key is None:
                return literal(0)
            # each count on its own (key, placed_at) index
            return select(func.count()).where(column == key, c.placed_at >= since).scalar_subquery()

        keys = (count(c.customer_key, customer_key), count(c.address_key, address_key))
        if customer_key is None and address_key is None:
            return 0, 0
        by_customer, to_address = self.conn.execute(select(*keys)).one()
        return int(by_customer), int(to_address)

    def add_fraud_decision(
        self, order_id: int, decision: FraudDecision, signals: Mapping[str, Any], now: datetime
    ) -> int:
        return int(
            self.conn.execute(
                insert(t.fraud_decisions)
                .values(order_id=order_id, score=decision.score, action=decision.action.value,
                        reasons=list(decision.reasons), signals=dict(signals), decided_at=now)
                .returning(t.fraud_decisions.c.id)
            ).scalar_one()
        )  # fmt: skip

    # -- edits ------------------------------------------------------------------------------
    def line_states(self, order_id: int) -> list[LineState]:
        c = t.order_lines.c
        rows = self.conn.execute(
            select(c.line_no, c.sku, c.quantity, c.shipped_qty, c.reserved_qty, c.backordered_qty)
            .where(c.order_id == order_id)
            .order_by(c.line_no)
        ).all()
        return [LineState(*r) for r in rows]

    def cut_reservations(
        self, order_id: int, cuts: Sequence[tuple[int, int]], now: datetime
    ) -> Cut:
        """Take units off reservations: a whole one is released, part of one is split into
        the active rest and a released part. The stock rows get the units back through the
        movement path (chained in the ledger), and the open fulfilment orders at the
        reservation's location ship that many fewer (newest first)."""
        r = t.reservations.c
        moves: dict[tuple[str, str], int] = {}
        taken: dict[int, tuple[str, dict[str, int]]] = {}
        emptied: list[int] = []
        for rid, units in cuts:
            row = self.conn.execute(
                select(t.reservations).where(r.id == rid, r.order_id == order_id,
                                             r.status == "active")
            ).one()  # fmt: skip
            if units >= row.quantity:
                self.conn.execute(update(t.reservations).where(r.id == rid)
                                  .values(status="released", released_at=now))  # fmt: skip
            else:
                self.conn.execute(update(t.reservations).where(r.id == rid)
                                  .values(quantity=row.quantity - units))  # fmt: skip
                self.conn.execute(insert(t.reservations).values(
                    order_id=order_id, line_no=row.line_no, sku=row.sku,
                    location_id=row.location_id, quantity=units, status="released",
                    created_at=row.created_at, released_at=now))  # fmt: skip
            key = (row.sku, row.location_id)
            moves[key] = moves.get(key, 0) - units
            for fo_id, take, empty in self._reduce_fulfilment_items(
                order_id, row.location_id, row.line_no, row.sku, units
            ):
                got = taken.setdefault(fo_id, (row.location_id, {}))[1]
                got[row.sku] = got.get(row.sku, 0) + take
                if empty:
                    emptied.append(fo_id)
        ordered = sorted((sku, loc, q) for (sku, loc), q in moves.items())
        self._tx._move_reserved(ordered, "edit", f"order:{order_id}", now)
        return Cut(ordered, [(i, taken[i][0], taken[i][1]) for i in sorted(emptied)])

    def _reduce_fulfilment_items(
        self, order_id: int, location_id: str, line_no: int, sku: str, units: int
    ) -> list[tuple[int, int, bool]]:
        """Take `units` of the SKU off the order's open fulfilment orders at the location,
        newest first (their items, and the line's share if they recorded their lines); one
        left with nothing is cancelled. Returns (fo id, units taken, whether it was emptied)."""
        f, ln = t.fulfilment_orders.c, t.fulfilment_order_lines.c
        rows = self.conn.execute(
            select(f.id, f["items"]).where(f.order_id == order_id, f.location_id == location_id,
                                        f.status == "open").order_by(f.id.desc())
        ).all()  # fmt: skip
        out: list[tuple[int, int, bool]] = []
        for fo in rows:
            items = dict(fo.items)
            take = min(units, int(items.get(sku, 0)))
            if not take:
                continue
            items[sku] = int(items[sku]) - take
            items = {k: v for k, v in items.items() if v}
            values: dict[str, Any] = {"items": items}
            if not items:
                values["status"] = "cancelled"
            self.conn.execute(update(t.fulfilment_orders).where(f.id == fo.id).values(**values))
            share = self.conn.execute(
                select(ln.quantity - ln.shipped - ln.closed).where(
                    ln.fo_id == fo.id, ln.line_no == line_no
                )
            ).scalar()
            if share:  # it recorded its lines (split, merged): they say so too
                self.conn.execute(
                    update(t.fulfilment_order_lines)
                    .where(ln.fo_id == fo.id, ln.line_no == line_no)
                    .values(closed=ln.closed + min(take, int(share)))
                )
            out.append((fo.id, take, not items))
            units -= take
            if not units:
                break
        return out

    def set_line_quantity(self, order_id: int, line_no: int, quantity: int) -> None:
        c = t.order_lines.c
        self.conn.execute(
            update(t.order_lines)
            .where(c.order_id == order_id, c.line_no == line_no)
            .values(quantity=quantity)
        )

    def insert_line(self, order_id: int, line: OrderLine) -> None:
        self.conn.execute(insert(t.order_lines).values(
            order_id=order_id, line_no=line.line_no, external_id=None, sku=line.sku,
            variant_id=None, title=line.title, quantity=line.quantity,
            unit_price_minor=line.unit_price.in_minor(), discount_minor=line.discount.in_minor(),
            tax_minor=line.tax.in_minor(), grams=line.grams,
            requires_shipping=line.requires_shipping, properties=[], reserved_qty=0,
            backordered_qty=0, shipped_qty=0))  # fmt: skip

    def add_fulfilment_orders(self, order_id: int, plan: RoutingPlan, now: datetime) -> None:
        if not plan.chosen.shipments:
            return
        self.conn.execute(insert(t.fulfilment_orders), [
            {"order_id": order_id, "location_id": s.location_id, "status": "open",
             "items": dict(s.items), "shipping_minor": s.shipping.in_minor(),
             "handling_minor": s.handling.in_minor(), "distance_km": s.distance_km,
             "weight_g": s.weight_g, "created_at": now}
            for s in plan.chosen.shipments
        ])  # fmt: skip

    def planned_fulfilment_orders(self, order_id: int) -> int:
        """The order's shipments, counted as the hand-off counts them: every fulfilment
        order that will ship (open, at a warehouse or shipped), not cancelled or rejected."""
        f = t.fulfilment_orders.c
        return int(self.conn.execute(
            select(func.count()).where(f.order_id == order_id,
                                       f.status.not_in(sorted(s.value for s in WONT_SHIP)))
        ).scalar_one())  # fmt: skip

    def set_routing_key(self, order_id: int, key: str, units: int) -> None:
        self.conn.execute(
            update(t.orders).where(t.orders.c.id == order_id).values(routing_key=key, units=units)
        )


def ready_for_fulfilment(tx_or_store: SqlTx | SqlStore, order_id: int) -> bool:
    """For the hand-off code: may this order go to a warehouse now? Given a transaction it
    reads inside it; given the store it reads in a transaction of its own."""
    from aoms.services.holds import ready_for_fulfilment as ready

    if isinstance(tx_or_store, SqlTx):
        return ready(SqlLifecycleRepo(tx_or_store), order_id)
    return ready(SqlLifecycleStore(tx_or_store), order_id)


class SqlStockCheck:
    """The stock rows with what their counters are derived from, in one read each."""

    def __init__(self, tx: SqlTx) -> None:
        self.tx = tx

    def emit(self, events: Iterable[Event], now: datetime) -> None:
        self.tx.emit(events, now)

    def stock_rows(self) -> list[StockRow]:
        s, r, m = t.stock_levels.c, t.reservations.c, t.stock_movements.c
        conn = self.tx.conn
        held = {
            (x.sku, x.location_id): int(x.n)
            for x in conn.execute(
                select(r.sku, r.location_id, func.sum(r.quantity).label("n"))
                .where(r.status == "active")
                .group_by(r.sku, r.location_id)
            )
        }
        moved = {
            (x.sku, x.location_id): (int(x.on_hand), int(x.reserved))
            for x in conn.execute(
                select(m.sku, m.location_id, func.sum(m.on_hand_delta).label("on_hand"),
                       func.sum(m.reserved_delta).label("reserved"))
                .group_by(m.sku, m.location_id)
            )
        }  # fmt: skip
        latest = select(func.max(m.id)).where(m.on_hand_delta != 0).group_by(m.sku, m.location_id)
        last_reason = {
            (x.sku, x.location_id): x.reason
            for x in conn.execute(select(m.sku, m.location_id, m.reason).where(m.id.in_(latest)))
        }
        rows = conn.execute(
            select(s.sku, s.location_id, s.on_hand, s.reserved, s.safety_stock).order_by(
                s.sku, s.location_id
            )
        )
        return [
            StockRow(x.sku, x.location_id, x.on_hand, x.reserved, x.safety_stock,
                     held.get((x.sku, x.location_id), 0),
                     *moved.get((x.sku, x.location_id), (0, 0)),
                     last_reason.get((x.sku, x.location_id)))
            for x in rows
        ]  # fmt: skip
