"""Storage for the warehouse / 3PL hand-off: FO lines and states, connections, shipments and
the messages already applied. Wraps `SqlStore`; state and its events commit together."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, select, update

from aoms.adapters.db import schema as t
from aoms.adapters.db.store import SqlStore, SqlTx
from aoms.domain.errors import UnknownLocation
from aoms.domain.handoff import TERMINAL, WONT_SHIP, FoLine, FoStatus
from aoms.domain.orders import OrderStatus
from aoms.services.handoff_ports import Fo, Handoff, HandoffRequest, Shipment, TplConnection

LIVE = [s.value for s in FoStatus if s not in TERMINAL]
NOT_PLANNED = sorted(s.value for s in WONT_SHIP)


class SqlHandoffStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    @contextmanager
    def handoff_transaction(self) -> Iterator[SqlHandoffTx]:
        with self.store.transaction() as tx:
            yield SqlHandoffTx(tx)

    def fos_to_claim(self, limit: int) -> list[int]:
        f, o, c, h = t.fulfilment_orders.c, t.orders.c, t.tpl_connections.c, t.holds.c
        query = (
            select(f.id)
            .join(t.orders, o.id == f.order_id)
            .join(t.tpl_connections, c.location_id == f.location_id)
            .where(
                f.status == FoStatus.OPEN.value,
                o.status == OrderStatus.ROUTED.value,
                ~exists(select(h.id).where(h.order_id == f.order_id, h.status == "open")),
            )
            .order_by(f.id)
            .limit(limit)
        )
        with self.store.read() as conn:
            return [int(i) for i in conn.execute(query).scalars()]

    def fos_to_deliver(self, now: datetime, limit: int) -> list[int]:
        f, h = t.fulfilment_orders.c, t.fulfilment_handoffs.c
        query = (
            select(f.id)
            .join(t.fulfilment_handoffs, h.fo_id == f.id)
            .where(
                f.status == FoStatus.REQUESTED.value,
                h.delivered_at.is_(None),
                h.next_attempt_at.is_not(None),
                h.next_attempt_at <= now,
            )
            .order_by(f.id)
            .limit(limit)
        )
        with self.store.read() as conn:
            return [int(i) for i in conn.execute(query).scalars()]

    def cancels_to_deliver(self, now: datetime, limit: int) -> list[int]:
        f, h = t.fulfilment_orders.c, t.fulfilment_handoffs.c
        query = (
            select(f.id)
            .join(t.fulfilment_handoffs, h.fo_id == f.id)
            .where(
                f.status == FoStatus.CANCEL_REQUESTED.value,
                h.cancel_delivered_at.is_(None),
                h.next_attempt_at.is_not(None),
                h.next_attempt_at <= now,
            )
            .order_by(f.id)
            .limit(limit)
        )
        with self.store.read() as conn:
            return [int(i) for i in conn.execute(query).scalars()]

    # -- connections and reads, for the API and the CLI ---------------------------------------
    def set_connection(
        self,
        location_id: str,
        *,
        kind: str,
        secret: str,
        now: datetime,
        base_url: str | None = None,
        directory: str | None = None,
    ) -> None:
        c = t.tpl_connections.c
        with self.store.writer() as conn:
            if not conn.execute(
                select(t.locations.c.id).where(t.locations.c.id == location_id)
            ).first():
                raise UnknownLocation(f"no location {location_id!r}", field="location_id")
            values = {
                "kind": kind,
                "secret": secret,
                "base_url": base_url,
                "directory": directory,
                "updated_at": now,
            }
            done = conn.execute(
                update(t.tpl_connections).where(c.location_id == location_id).values(**values)
            ).rowcount
            if not done:
                conn.execute(
                    insert(t.tpl_connections).values(
                        location_id=location_id, created_at=now, **values
                    )
                )

    def connection(self, location_id: str) -> TplConnection | None:
        with self.store.read() as conn:
            return _connection(conn, location_id)

    def connections(self) -> list[TplConnection]:
        c = t.tpl_connections.c
        with self.store.read() as conn:
            rows = conn.execute(select(t.tpl_connections).order_by(c.location_id)).all()
        return [
            TplConnection(r.location_id, r.kind, r.secret, r.base_url, r.directory) for r in rows
        ]

    def fulfilment_order(self, fo_id: int) -> dict[str, Any] | None:
        f, h = t.fulfilment_orders.c, t.fulfilment_handoffs.c
        with self.store.read() as conn:
            row = conn.execute(select(t.fulfilment_orders).where(f.id == fo_id)).first()
            if row is None:
                return None
            state = conn.execute(select(t.fulfilment_handoffs).where(h.fo_id == fo_id)).first()
            lines = _lines(conn, fo_id)
            ships = conn.execute(
                select(t.fulfilment_shipments)
                .where(t.fulfilment_shipments.c.fo_id == fo_id)
                .order_by(t.fulfilment_shipments.c.id)
            ).all()
        return {
            "id": row.id,
            "order_id": row.order_id,
            "location_id": row.location_id,
            "status": row.status,
            "items": row.items,
            "created_at": row.created_at,
            "lines": [
                {
                    "line_no": ln.line_no,
                    "sku": ln.sku,
                    "quantity": ln.quantity,
                    "shipped": ln.shipped,
                    "closed": ln.closed,
                    "remaining": ln.remaining,
                }
                for ln in lines
            ],
            "handoff": None
            if state is None
            else {
                "attempts": state.attempts,
                "delivered_at": state.delivered_at,
                "next_attempt_at": state.next_attempt_at,
                "last_error": state.last_error,
                "external_ref": state.external_ref,
                "reject_reason": state.reject_reason,
                "reject_note": state.reject_note,
            },
            "shipments": [
                {
                    "shipment_ref": s.shipment_ref,
                    "location_id": s.location_id,
                    "items": s.items,
                    "tracking_number": s.tracking_number,
                    "carrier": s.carrier,
                    "tracking_url": s.tracking_url,
                    "shipped_at": s.shipped_at,
                }
                for s in ships
            ],
        }


def _connection(conn: Connection, location_id: str) -> TplConnection | None:
    c = t.tpl_connections.c
    r = conn.execute(select(t.tpl_connections).where(c.location_id == location_id)).first()
    if r is None:
        return None
    return TplConnection(r.location_id, r.kind, r.secret, r.base_url, r.directory)


def _lines(conn: Connection, fo_id: int) -> list[FoLine]:
    ln = t.fulfilment_order_lines.c
    rows = conn.execute(
        select(ln.line_no, ln.sku, ln.quantity, ln.shipped, ln.closed)
        .where(ln.fo_id == fo_id)
        .order_by(ln.line_no)
    ).all()
    return [FoLine(*r) for r in rows]


class SqlHandoffTx:
    def __init__(self, tx: SqlTx) -> None:
        self._tx = tx
        self.conn = tx.conn
        self.dialect = tx.dialect

    @property
    def tx(self) -> SqlTx:
        return self._tx

    def _fo(self, row: Any) -> Fo:
        return Fo(
            row.id,
            row.order_id,
            row.location_id,
            FoStatus(row.status),
            dict(row.items),
            row.shipping_minor,
            row.handling_minor,
            row.distance_km,
            row.weight_g,
        )

    def fulfilment_order(self, fo_id: int, *, lock: bool = False) -> Fo | None:
        query = select(t.fulfilment_orders).where(t.fulfilment_orders.c.id == fo_id)
        if lock and self.dialect == "postgresql":
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return self._fo(row) if row else None

    def order_fos(self, order_id: int) -> list[Fo]:
        f = t.fulfilment_orders.c
        rows = self.conn.execute(
            select(t.fulfilment_orders).where(f.order_id == order_id).order_by(f.id)
        ).all()
        return [self._fo(r) for r in rows]

    def fo_lines(self, fo_id: int) -> list[FoLine]:
        return _lines(self.conn, fo_id)

    def unclaimed(self, order_id: int, location_id: str) -> list[tuple[int, str, int]]:
        r, f, ln = t.reservations.c, t.fulfilment_orders.c, t.fulfilment_order_lines.c
        held = self.conn.execute(
            select(r.line_no, r.sku, func.sum(r.quantity))
            .where(r.order_id == order_id, r.location_id == location_id, r.status == "active")
            .group_by(r.line_no, r.sku)
        ).all()
        claimed = self.conn.execute(
            select(ln.line_no, func.sum(ln.quantity - ln.shipped - ln.closed))
            .join(t.fulfilment_orders, f.id == ln.fo_id)
            .where(f.order_id == order_id, f.location_id == location_id, f.status.in_(LIVE))
            .group_by(ln.line_no)
        ).all()
        taken = {int(n): int(q) for n, q in claimed}
        out = [(int(n), sku, int(q) - taken.get(int(n), 0)) for n, sku, q in held]
        return [x for x in out if x[2] > 0]

    def add_fo_lines(self, fo_id: int, lines: Sequence[FoLine]) -> None:
        if lines:
            self.conn.execute(
                insert(t.fulfilment_order_lines),
                [
                    {
                        "fo_id": fo_id,
                        "line_no": x.line_no,
                        "sku": x.sku,
                        "quantity": x.quantity,
                        "shipped": x.shipped,
                        "closed": x.closed,
                    }
                    for x in lines
                ],
            )

    def bump_fo_line(self, fo_id: int, line_no: int, *, shipped: int = 0, closed: int = 0) -> None:
        """Count units of the FO's line shipped or closed; shipped units count on the order's
        line too (`order_lines.shipped_qty`: an edit may never go below it)."""
        ln, ol, f = t.fulfilment_order_lines.c, t.order_lines.c, t.fulfilment_orders.c
        self.conn.execute(
            update(t.fulfilment_order_lines)
            .where(ln.fo_id == fo_id, ln.line_no == line_no)
            .values(shipped=ln.shipped + shipped, closed=ln.closed + closed)
        )
        if shipped:
            order_id = select(f.order_id).where(f.id == fo_id).scalar_subquery()
            self.conn.execute(
                update(t.order_lines)
                .where(ol.order_id == order_id, ol.line_no == line_no)
                .values(shipped_qty=ol.shipped_qty + shipped)
            )

    def set_fo_items(self, fo_id: int, items: Mapping[str, int]) -> None:
        self.conn.execute(
            update(t.fulfilment_orders)
            .where(t.fulfilment_orders.c.id == fo_id)
            .values(items=dict(items))
        )

    def set_fo_status(self, fo_id: int, status: FoStatus) -> None:
        self.conn.execute(
            update(t.fulfilment_orders)
            .where(t.fulfilment_orders.c.id == fo_id)
            .values(status=status.value)
        )

    def insert_fo(self, fo: Fo, now: datetime) -> int:
        return int(
            self.conn.execute(
                insert(t.fulfilment_orders)
                .values(
                    order_id=fo.order_id,
                    location_id=fo.location_id,
                    status=FoStatus.OPEN.value,
                    items=fo.items,
                    shipping_minor=fo.shipping_minor,
                    handling_minor=fo.handling_minor,
                    distance_km=fo.distance_km,
                    weight_g=fo.weight_g,
                    created_at=now,
                )
                .returning(t.fulfilment_orders.c.id)
            ).scalar_one()
        )

    def take_reservations(
        self,
        order_id: int,
        line_no: int,
        location_id: str,
        units: int,
        status: str,
        now: datetime,
    ) -> int:
        """Move up to `units` of the line's active reservations at the location to `status`
        (splitting a row when only part of it is taken); returns the units taken."""
        r = t.reservations.c
        query = (
            select(r.id, r.sku, r.quantity, r.created_at)
            .where(
                r.order_id == order_id,
                r.line_no == line_no,
                r.location_id == location_id,
                r.status == "active",
            )
            .order_by(r.id)
        )
        if self.dialect == "postgresql":
            query = query.with_for_update()
        left = units
        for row in self.conn.execute(query).all():
            if left == 0:
                break
            take = min(left, row.quantity)
            if take == row.quantity:
                self.conn.execute(
                    update(t.reservations)
                    .where(r.id == row.id)
                    .values(status=status, released_at=now)
                )
            else:
                self.conn.execute(
                    update(t.reservations)
                    .where(r.id == row.id)
                    .values(quantity=row.quantity - take)
                )
                self.conn.execute(
                    insert(t.reservations).values(
                        order_id=order_id,
                        line_no=line_no,
                        sku=row.sku,
                        location_id=location_id,
                        quantity=take,
                        status=status,
                        created_at=row.created_at,
                        released_at=now,
                    )
                )
            left -= take
        return units - left

    def handoff(self, fo_id: int) -> Handoff | None:
        h = t.fulfilment_handoffs.c
        row = self.conn.execute(select(t.fulfilment_handoffs).where(h.fo_id == fo_id)).first()
        if row is None:
            return None
        return Handoff(
            row.fo_id,
            row.attempts,
            row.delivered_at is not None,
            FoStatus(row.cancel_from) if row.cancel_from else None,
            row.cancel_attempts,
            row.cancel_delivered_at is not None,
        )

    def save_handoff(self, fo_id: int, location_id: str, now: datetime, **values: Any) -> None:
        h = t.fulfilment_handoffs.c
        done = self.conn.execute(
            update(t.fulfilment_handoffs).where(h.fo_id == fo_id).values(updated_at=now, **values)
        ).rowcount
        if not done:
            row = {"attempts": 0, "cancel_attempts": 0, **values}
            self.conn.execute(
                insert(t.fulfilment_handoffs).values(
                    fo_id=fo_id, location_id=location_id, updated_at=now, **row
                )
            )

    def connection(self, location_id: str) -> TplConnection | None:
        return _connection(self.conn, location_id)

    def shipment_known(self, fo_id: int, ref: str) -> bool:
        s = t.fulfilment_shipments.c
        found = self.conn.execute(
            select(s.id).where(s.fo_id == fo_id, s.shipment_ref == ref)
        ).first()
        return found is not None

    def tracking_known(self, fo_id: int, tracking_number: str) -> bool:
        s = t.fulfilment_shipments.c
        found = self.conn.execute(
            select(s.id).where(s.fo_id == fo_id, s.tracking_number == tracking_number)
        ).first()
        return found is not None

    def add_shipment(self, fo_id: int, shipment: Shipment, location_id: str, now: datetime) -> None:
        self.conn.execute(
            insert(t.fulfilment_shipments).values(
                fo_id=fo_id,
                shipment_ref=shipment.ref,
                location_id=location_id,
                items=dict(shipment.items),
                tracking_number=shipment.tracking_number,
                carrier=shipment.carrier,
                tracking_url=shipment.tracking_url,
                shipped_at=shipment.shipped_at,
                recorded_at=now,
            )
        )

    def mark_fulfilled(self, order_id: int, at: datetime, now: datetime) -> None:
        """Units of the order left at `at`: it is returnable (`order_deliveries.fulfilled_at`,
        the latest shipment's; a delivery recorded by another source stays)."""
        d = t.order_deliveries.c
        row = self.conn.execute(select(d.fulfilled_at).where(d.order_id == order_id)).first()
        if row is None:
            self.conn.execute(
                insert(t.order_deliveries).values(
                    order_id=order_id, fulfilled_at=at, source="shipment", updated_at=now
                )
            )
        elif row.fulfilled_at is None or row.fulfilled_at < at:
            self.conn.execute(
                update(t.order_deliveries)
                .where(d.order_id == order_id)
                .values(fulfilled_at=at, updated_at=now)
            )

    def message_outcome(self, location_id: str, message_id: str) -> dict[str, Any] | None:
        m = t.tpl_messages.c
        row = self.conn.execute(
            select(m.outcome).where(m.location_id == location_id, m.message_id == message_id)
        ).first()
        return dict(row.outcome) if row else None

    def save_message(
        self,
        location_id: str,
        message_id: str,
        kind: str,
        outcome: dict[str, Any],
        now: datetime,
    ) -> None:
        self.conn.execute(
            insert(t.tpl_messages).values(
                location_id=location_id,
                message_id=message_id,
                kind=kind,
                outcome=outcome,
                received_at=now,
            )
        )

    def refresh_order_counters(self, order_id: int) -> None:
        """Lines' reserved units from their active reservations; the order's shipments from
        its planned FOs; its backordered units from its lines."""
        r, ol, o, f = t.reservations.c, t.order_lines.c, t.orders.c, t.fulfilment_orders.c
        held = dict(
            self.conn.execute(
                select(r.line_no, func.sum(r.quantity))
                .where(r.order_id == order_id, r.status == "active")
                .group_by(r.line_no)
            ).all()
        )
        lines = self.conn.execute(
            select(ol.line_no, ol.backordered_qty).where(ol.order_id == order_id)
        ).all()
        for line_no, _ in lines:
            self.conn.execute(
                update(t.order_lines)
                .where(ol.order_id == order_id, ol.line_no == line_no)
                .values(reserved_qty=int(held.get(line_no, 0)))
            )
        backordered = sum(int(b) for _, b in lines)
        planned = self.conn.execute(
            select(func.count()).where(f.order_id == order_id, f.status.not_in(NOT_PLANNED))
        ).scalar_one()
        values: dict[str, Any] = {"backordered_units": backordered, "shipments": int(planned)}
        status = self.conn.execute(select(o.status).where(o.id == order_id)).scalar_one()
        if status in (OrderStatus.ROUTED.value, OrderStatus.BACKORDERED.value):
            values["status"] = (
                OrderStatus.BACKORDERED if backordered else OrderStatus.ROUTED
            ).value
        self.conn.execute(update(t.orders).where(o.id == order_id).values(**values))

    def stopped_by_hold(self, order_id: int, fo_id: int) -> bool:
        """Whether a hold on the order asked the FO's warehouse to stop (its detail lists it:
        `services.holds.place_hold`)."""
        h = t.holds.c
        details = self.conn.execute(select(h.detail).where(h.order_id == order_id)).scalars()
        return any(fo_id in (d or {}).get("stopped_fulfilment_orders", ()) for d in details)

    def request_for(self, fo: Fo, lines: Sequence[FoLine], now: datetime) -> HandoffRequest:
        o, ol = t.orders.c, t.order_lines.c
        order = self.conn.execute(
            select(o.name, o.shop, o.ship_to).where(o.id == fo.order_id)
        ).one()
        titles = dict(
            self.conn.execute(
                select(ol.line_no, ol.title).where(
                    and_(ol.order_id == fo.order_id, ol.line_no.in_([x.line_no for x in lines]))
                )
            ).all()
        )
        return HandoffRequest(
            fo_id=fo.id,
            order_id=fo.order_id,
            order_name=order.name,
            shop=order.shop,
            location_id=fo.location_id,
            ship_to={k: v for k, v in dict(order.ship_to).items() if v is not None},
            lines=[
                {
                    "line_no": x.line_no,
                    "sku": x.sku,
                    "quantity": x.remaining,
                    **({"title": titles[x.line_no]} if titles.get(x.line_no) else {}),
                }
                for x in lines
                if x.remaining
            ],
            requested_at=now,
        )
