"""Storage for shipping: boxes, ship-from addresses, store rules, shipments with their parcels,
labels, quotes and tracking events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from aoms.adapters.db import schema as t
from aoms.adapters.db.handoff import SqlHandoffTx
from aoms.adapters.db.returns import SqlReturnsTx
from aoms.adapters.db.schema import from_minor
from aoms.adapters.db.setup import _upsert
from aoms.adapters.db.store import SqlStore, SqlTx, open_hold_kinds
from aoms.domain.cartonise import Box
from aoms.domain.events import Event
from aoms.domain.handoff import WONT_SHIP
from aoms.domain.money import Money
from aoms.domain.routing_policy import PolicyDocument
from aoms.domain.shipping import (
    CommercialInvoice,
    Dimensions,
    Duties,
    OnTimeRecord,
    Rule,
    ShippingRule,
    TrackingStatus,
    on_time,
)
from aoms.services.carriers import Label, TrackingUpdate
from aoms.services.shipping import (
    SHIPMENT_LABELLED,
    SHIPMENT_PLANNED,
    FulfilmentToShip,
    ParcelLabel,
    PlannedParcel,
    ProductInfo,
    StoreRule,
)

OPEN = ("planned", "labelled")
POLLABLE = ("label_created", "in_transit", "out_for_delivery", "exception")


class SqlShippingStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    @contextmanager
    def reading(self) -> Iterator[SqlShippingRepo]:
        with self.store.read() as conn:
            yield SqlShippingRepo(conn)

    @contextmanager
    def writing(self) -> Iterator[SqlShippingRepo]:
        with self.store.transaction() as tx:
            yield SqlShippingRepo(tx.conn, tx)


def _utc_day(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


class SqlShippingRepo:
    def __init__(self, conn: Connection, tx: SqlTx | None = None) -> None:
        self.conn = conn
        self.tx = tx

    def emit(self, events: Iterable[Event], now: datetime) -> None:
        self._writing().emit(events, now)

    def handoff(self) -> SqlHandoffTx:
        return self._writing().handoff()

    def returns(self) -> SqlReturnsTx:
        return SqlReturnsTx(self._writing())

    def _writing(self) -> SqlTx:
        if self.tx is None:
            raise RuntimeError("only in a write transaction")
        return self.tx

    # -- setup ---------------------------------------------------------------------------------
    def replace_boxes(self, boxes: Sequence[Box]) -> None:
        self.conn.execute(delete(t.shipping_boxes))
        if boxes:
            self.conn.execute(
                insert(t.shipping_boxes),
                [
                    {"code": b.code, "length_mm": b.inner.length_mm, "width_mm": b.inner.width_mm,
                     "height_mm": b.inner.height_mm, "max_grams": b.max_grams,
                     "tare_grams": b.tare_grams, "fill_pct": b.fill_pct, "active": True}
                    for b in boxes
                ],
            )  # fmt: skip

    def boxes(self) -> list[Box]:
        c = t.shipping_boxes.c
        rows = self.conn.execute(
            select(t.shipping_boxes).where(c.active.is_(True)).order_by(c.code)
        ).all()
        return [
            Box(r.code, Dimensions(r.length_mm, r.width_mm, r.height_mm), r.max_grams,
                r.tare_grams, fill_pct=r.fill_pct)
            for r in rows
        ]  # fmt: skip

    def set_origin(self, location_id: str, address: Mapping[str, Any]) -> None:
        _upsert(
            self.conn, t.shipping_origins, {"location_id": location_id, "address": dict(address)},
            ["location_id"],
        )  # fmt: skip

    def origin(self, location_id: str) -> Mapping[str, Any] | None:
        c = t.shipping_origins.c
        found: Mapping[str, Any] | None = self.conn.execute(
            select(c.address).where(c.location_id == location_id)
        ).scalar_one_or_none()
        return found

    def known_location(self, location_id: str) -> bool:
        c = t.locations.c
        return self.conn.execute(select(c.id).where(c.id == location_id)).first() is not None

    def set_store_rule(self, shop: str, rule: StoreRule, now: datetime) -> None:
        cap = rule.rule.cost_cap
        _upsert(
            self.conn,
            t.shipping_rules,
            {
                "shop": shop,
                "rule": rule.rule.rule.value,
                "min_on_time": rule.rule.min_on_time,
                "cost_cap_minor": None if cap is None else cap.in_minor(),
                "currency": None if cap is None else cap.currency,
                "duties": rule.duties.value,
                "label_format": rule.label_format,
                "updated_at": now,
            },
            ["shop"],
        )

    def store_rule(self, shop: str) -> StoreRule:
        c = t.shipping_rules.c
        r = self.conn.execute(select(t.shipping_rules).where(c.shop == shop)).first()
        if r is None:
            return StoreRule(ShippingRule())
        cap = None if r.cost_cap_minor is None else from_minor(r.cost_cap_minor, r.currency)
        return StoreRule(
            ShippingRule(Rule(r.rule), min_on_time=r.min_on_time, cost_cap=cap),
            Duties(r.duties),
            r.label_format,
        )

    # -- what a shipment is planned from ---------------------------------------------------------
    def open_holds(self, order_id: int) -> list[str]:
        return open_hold_kinds(self.conn, order_id)

    def routing_promise(self, order_id: int) -> date | None:
        """By the order's shipping method now (it may have changed since a warehouse took the
        order) and the policy version its latest routing was made under."""
        d, o, rp = t.routing_decisions.c, t.orders.c, t.routing_policies.c
        version = (
            select(d.policy_version)
            .where(d.order_id == order_id, d.policy_version.is_not(None))
            .order_by(d.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        row = self.conn.execute(
            select(o.placed_at, o.shipping_method, rp.document)
            .join(t.routing_policies, rp.shop == o.shop)
            .where(o.id == order_id, rp.version == version)
        ).first()
        if row is None:
            return None
        days = PolicyDocument.from_dict(row.document).days_for(row.shipping_method)
        if days is None:
            return None
        placed: datetime = row.placed_at
        return placed.astimezone(UTC).date() + timedelta(days=days)

    def fulfilment_order(self, fo_id: int) -> FulfilmentToShip | None:
        f, o = t.fulfilment_orders.c, t.orders.c
        row = self.conn.execute(
            select(f.id, f.order_id, f.status, f.location_id, f["items"], o.shop, o.currency,
                   o.ship_to)
            .join(t.orders, o.id == f.order_id)
            .where(f.id == fo_id)
        ).first()  # fmt: skip
        if row is None:
            return None
        ln = t.order_lines.c
        prices: dict[str, Money] = {}
        for sku, qty, unit, discount in self.conn.execute(
            select(ln.sku, ln.quantity, ln.unit_price_minor, ln.discount_minor).where(
                ln.order_id == row.order_id
            )
        ):
            if qty > 0 and sku not in prices:
                net = unit - discount // qty  # the order's price of one unit after discounts
                prices[sku] = from_minor(max(net, 0), row.currency)
        return FulfilmentToShip(
            id=row.id,
            order_id=row.order_id,
            shop=row.shop,
            status=row.status,
            location_id=row.location_id,
            currency=row.currency,
            items={k: int(v) for k, v in (row.items or {}).items()},
            ship_to=row.ship_to or {},
            unit_prices=prices,
        )

    def products(self, skus: Iterable[str]) -> dict[str, ProductInfo]:
        p = t.products.c
        rows = self.conn.execute(select(t.products).where(p.sku.in_(sorted(set(skus))))).all()
        out = {}
        for r in rows:
            dims = None
            if r.length_mm and r.width_mm and r.height_mm:
                dims = Dimensions(r.length_mm, r.width_mm, r.height_mm)
            out[r.sku] = ProductInfo(r.title, r.grams, dims, r.hs_code, r.country_of_origin)
        return out

    def on_time_records(self) -> dict[tuple[str, str], OnTimeRecord]:
        """Per carrier service: delivered parcels, and those delivered within the service's
        promised days of leaving (the first scan after the label; else the ship date)."""
        p, s = t.parcels.c, t.shipments.c
        rows = self.conn.execute(
            select(p.carrier, p.service, p.promised_days, p.shipped_at, p.delivered_at, s.ship_on)
            .join(t.shipments, s.id == p.shipment_id)
            .where(p.delivered_at.is_not(None))
        ).all()
        counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            left = (r.shipped_at or r.ship_on).date()
            c = counts[r.carrier, r.service]
            c[0] += 1
            c[1] += on_time(left, r.delivered_at.date(), r.promised_days)
        return {k: OnTimeRecord(n, k_on) for k, (n, k_on) in counts.items()}

    def lock_fulfilment_order(self, fo_id: int) -> str | None:
        """The fulfilment order's status, its row locked (PostgreSQL; SQLite's write lock is
        already held): two shipments of one fulfilment order cannot both be written, nor a
        shipment of one being cancelled."""
        f = t.fulfilment_orders.c
        query = select(f.status).where(f.id == fo_id)
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        found: str | None = self.conn.execute(query).scalar_one_or_none()
        return found

    def open_shipment(self, fo_id: int) -> int | None:
        s = t.shipments.c
        found: int | None = self.conn.execute(
            select(s.id).where(s.fulfilment_order_id == fo_id, s.status.in_(OPEN)).limit(1)
        ).scalar_one_or_none()
        return found

    # -- writing a shipment -----------------------------------------------------------------
    def save_shipment(
        self,
        fo: FulfilmentToShip,
        planned: Sequence[PlannedParcel],
        *,
        rule: StoreRule,
        ship_on: datetime,
        deliver_by: date | None,
        customs: CommercialInvoice | None,
        now: datetime,
    ) -> int:
        labelled = all(p.label is not None for p in planned)
        r = rule.rule
        rule_doc = {
            "rule": r.rule.value, "min_on_time": r.min_on_time,
            "cost_cap": None if r.cost_cap is None else str(r.cost_cap),
            "prior_on_time": r.prior_on_time, "prior_weight": r.prior_weight,
            "duties": rule.duties.value, "label_format": rule.label_format,
        }  # fmt: skip
        shipment_id = int(
            self.conn.execute(
                insert(t.shipments)
                .values(
                    fulfilment_order_id=fo.id,
                    order_id=fo.order_id,
                    status="labelled" if labelled else "planned",
                    rule=rule_doc,
                    ship_on=ship_on,
                    deliver_by=None if deliver_by is None else _utc_day(deliver_by),
                    currency=fo.currency,
                    customs=None if customs is None else _customs_doc(customs),
                    created_at=now,
                    updated_at=now,
                )
                .returning(t.shipments.c.id)
            ).scalar_one()
        )
        summary = []
        for seq, p in enumerate(planned, start=1):
            chosen = p.choice.chosen
            q = chosen.quote
            label = p.label
            parcel_id = int(
                self.conn.execute(
                    insert(t.parcels)
                    .values(
                        shipment_id=shipment_id, seq=seq, box=p.parcel.box,
                        length_mm=p.parcel.dims.length_mm, width_mm=p.parcel.dims.width_mm,
                        height_mm=p.parcel.dims.height_mm, grams=p.parcel.grams,
                        items=dict(p.parcel.items), carrier=q.carrier, service=q.service,
                        amount_minor=q.amount.in_minor(), currency=q.amount.currency,
                        promised_days=q.days, quote_ref=dict(q.ref), adapter=q.ref["adapter"],
                        tracking_number=label.tracking_number if label else None,
                        label_id=label.label_id if label else None,
                        label_format=label.file_format if label else None,
                        label=label.content if label else None,
                        label_url=label.url if label else None,
                        status="label_created" if label else "planned",
                        status_at=now if label else None,
                    )
                    .returning(t.parcels.c.id)
                ).scalar_one()
            )  # fmt: skip
            rows = [
                {"parcel_id": parcel_id, "carrier": q.carrier, "service": q.service,
                 "amount_minor": q.amount.in_minor(), "currency": q.amount.currency,
                 "days": q.days, "on_time_rate": chosen.on_time_rate, "chosen": True,
                 "reason": p.choice.why}
            ]  # fmt: skip
            rows += [
                {"parcel_id": parcel_id, "carrier": c.quote.carrier, "service": c.quote.service,
                 "amount_minor": c.quote.amount.in_minor(), "currency": c.quote.amount.currency,
                 "days": c.quote.days, "on_time_rate": c.on_time_rate, "chosen": False,
                 "reason": c.reason}
                for c in p.choice.rejected
            ]  # fmt: skip
            rows += [
                {"parcel_id": parcel_id, "carrier": f.carrier, "service": "", "amount_minor": None,
                 "currency": None, "days": None, "on_time_rate": None, "chosen": False,
                 "reason": f"no quote: {f.reason}"}
                for f in p.failures
            ]  # fmt: skip
            self.conn.execute(insert(t.shipment_quotes), rows)
            summary.append(
                {"parcel_id": parcel_id, "carrier": q.carrier, "service": q.service,
                 "amount": str(q.amount.amount), "tracking_number": label.tracking_number
                 if label else None}
            )  # fmt: skip
        aggregate = f"shipment:{shipment_id}"
        data = {"shipment_id": shipment_id, "fulfilment_order_id": fo.id,
                "order_id": fo.order_id, "currency": fo.currency, "parcels": summary}  # fmt: skip
        events = [Event(SHIPMENT_PLANNED, aggregate, data)]
        if labelled:
            events.append(Event(SHIPMENT_LABELLED, aggregate, data))
        self.emit(events, now)
        return shipment_id

    def lock_shipment(self, shipment_id: int) -> str | None:
        s = t.shipments.c
        query = select(s.status).where(s.id == shipment_id)
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        found: str | None = self.conn.execute(query).scalar_one_or_none()
        return found

    def labels(self, shipment_id: int) -> list[ParcelLabel]:
        p = t.parcels.c
        rows = self.conn.execute(
            select(t.parcels).where(
                p.shipment_id == shipment_id, p.tracking_number.is_not(None), p.voided_at.is_(None)
            ).order_by(p.seq)
        ).all()  # fmt: skip
        return [
            ParcelLabel(
                r.id,
                r.adapter,
                Label(r.carrier, r.service, r.tracking_number, r.label_id or "",
                      r.label_format or "", None, r.label_url),
            )
            for r in rows
        ]  # fmt: skip

    def mark_voided(
        self, shipment_id: int, parcel_ids: Sequence[int], now: datetime, *, whole: bool
    ) -> None:
        p, s = t.parcels.c, t.shipments.c
        if parcel_ids:
            self.conn.execute(
                update(t.parcels)
                .where(p.id.in_(list(parcel_ids)))
                .values(status="voided", status_at=now, voided_at=now)
            )
        if whole:
            self.conn.execute(
                update(t.parcels)
                .where(p.shipment_id == shipment_id, p.tracking_number.is_(None))
                .values(status="voided", status_at=now, voided_at=now)
            )
            self.conn.execute(
                update(t.shipments)
                .where(s.id == shipment_id)
                .values(status="voided", updated_at=now)
            )

    def shipments_to_void(self) -> list[int]:
        """Open shipments whose fulfilment order will not ship: cancelled (the order was, or it
        was routed again) or rejected by its warehouse."""
        s, f = t.shipments.c, t.fulfilment_orders.c
        return list(
            self.conn.execute(
                select(s.id)
                .join(t.fulfilment_orders, f.id == s.fulfilment_order_id)
                .where(s.status.in_(OPEN), f.status.in_(sorted(s.value for s in WONT_SHIP)))
                .order_by(s.id)
            ).scalars()
        )

    # -- tracking -----------------------------------------------------------------------------
    def parcel_by_tracking(self, tracking_number: str) -> dict[str, Any] | None:
        p, s = t.parcels.c, t.shipments.c
        query = (
            select(p.id, p.shipment_id, p.status, p.status_at, p["items"], p.carrier,
                   s.deliver_by, s.fulfilment_order_id, s.order_id)
            .join(t.shipments, s.id == p.shipment_id)
            .where(p.tracking_number == tracking_number)
        )  # fmt: skip
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return None if row is None else dict(row._mapping)

    def add_tracking_event(
        self, parcel_id: int, update: TrackingUpdate, source: str, now: datetime
    ) -> bool:
        e = t.tracking_events.c
        seen = self.conn.execute(
            select(e.id).where(
                and_(e.parcel_id == parcel_id, e.provider_status == update.provider_status,
                     e.occurred_at == update.occurred_at)
            )
        ).first()  # fmt: skip
        if seen is not None:
            return False
        self.conn.execute(
            insert(t.tracking_events).values(
                parcel_id=parcel_id, source=source, provider_status=update.provider_status,
                status=update.status.value, occurred_at=update.occurred_at,
                description=update.description[:2000], received_at=now,
            )
        )  # fmt: skip
        return True

    def set_parcel_status(
        self, parcel_id: int, status: TrackingStatus, at: datetime, *, shipped: bool
    ) -> None:
        p = t.parcels.c
        values: dict[str, Any] = {"status": status.value, "status_at": at}
        if status is TrackingStatus.DELIVERED:
            values["delivered_at"] = at
        self.conn.execute(update(t.parcels).where(p.id == parcel_id).values(**values))
        if shipped:
            self.conn.execute(
                update(t.parcels)
                .where(p.id == parcel_id, p.shipped_at.is_(None))
                .values(shipped_at=at)
            )

    def parcels_to_poll(self, limit: int) -> list[tuple[str, str, str]]:
        p = t.parcels.c
        rows = self.conn.execute(
            select(p.adapter, p.tracking_number, p.service)
            .where(p.status.in_(POLLABLE), p.tracking_number.is_not(None))
            .order_by(p.status_at, p.id)
            .limit(limit)
        ).all()
        return [(r.adapter, r.tracking_number, r.service) for r in rows]

    def flag_late(self, today: date, now: datetime) -> list[dict[str, Any]]:
        """Parcels past their shipment's promise date, not delivered, not flagged before:
        flag them now and return them."""
        p, s = t.parcels.c, t.shipments.c
        query = (
            select(p.id, p.shipment_id, p.tracking_number, p.status, s.deliver_by)
            .join(t.shipments, s.id == p.shipment_id)
            .where(
                s.deliver_by < _utc_day(today), p.delivered_at.is_(None), p.voided_at.is_(None),
                p.late_at.is_(None), p.tracking_number.is_not(None),
                p.status.not_in(("returned", "voided")),
            )
            .order_by(p.id)
        )  # fmt: skip
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update(of=t.parcels, skip_locked=True)
        rows = [dict(r._mapping) for r in self.conn.execute(query)]
        if rows:
            self.conn.execute(
                update(t.parcels).where(p.id.in_([r["id"] for r in rows])).values(late_at=now)
            )
        return rows

    def quoted(self, tracking_numbers: Sequence[str]) -> dict[str, Money]:
        p = t.parcels.c
        out: dict[str, Money] = {}
        for start in range(0, len(tracking_numbers), 500):
            chunk = list(tracking_numbers[start : start + 500])
            for tn, minor, cur in self.conn.execute(
                select(p.tracking_number, p.amount_minor, p.currency).where(
                    p.tracking_number.in_(chunk)
                )
            ):
                out[tn] = from_minor(minor, cur)
        return out

    # -- reading a shipment -------------------------------------------------------------------
    def shipment(self, shipment_id: int) -> dict[str, Any] | None:
        s, p, q, e = t.shipments.c, t.parcels.c, t.shipment_quotes.c, t.tracking_events.c
        row = self.conn.execute(select(t.shipments).where(s.id == shipment_id)).first()
        if row is None:
            return None
        parcels = self.conn.execute(
            select(t.parcels).where(p.shipment_id == shipment_id).order_by(p.seq)
        ).all()
        ids = [x.id for x in parcels]
        quotes: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for x in self.conn.execute(
            select(t.shipment_quotes).where(q.parcel_id.in_(ids)).order_by(q.id)
        ):
            quotes[x.parcel_id].append(
                {"carrier": x.carrier, "service": x.service,
                 "amount": None if x.amount_minor is None
                 else str(from_minor(x.amount_minor, x.currency).amount),
                 "currency": x.currency, "days": x.days,
                 "on_time_rate": None if x.on_time_rate is None else round(x.on_time_rate, 4),
                 "chosen": x.chosen, "reason": x.reason}
            )  # fmt: skip
        events: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for x in self.conn.execute(
            select(t.tracking_events).where(e.parcel_id.in_(ids)).order_by(e.occurred_at, e.id)
        ):
            events[x.parcel_id].append(
                {"status": x.status, "provider_status": x.provider_status, "source": x.source,
                 "occurred_at": x.occurred_at.isoformat(), "description": x.description}
            )  # fmt: skip
        return {
            "id": row.id,
            "fulfilment_order_id": row.fulfilment_order_id,
            "order_id": row.order_id,
            "status": row.status,
            "rule": row.rule,
            "ship_on": row.ship_on.date().isoformat(),
            "deliver_by": None if row.deliver_by is None else row.deliver_by.date().isoformat(),
            "currency": row.currency,
            "customs": row.customs,
            "parcels": [
                {
                    "id": x.id, "seq": x.seq, "box": x.box,
                    "dimensions_mm": [x.length_mm, x.width_mm, x.height_mm], "grams": x.grams,
                    "items": x.items, "carrier": x.carrier, "service": x.service,
                    "amount": str(from_minor(x.amount_minor, x.currency).amount),
                    "currency": x.currency, "promised_days": x.promised_days,
                    "tracking_number": x.tracking_number, "label_format": x.label_format,
                    "label_url": x.label_url, "has_label": x.label is not None,
                    "status": x.status,
                    "status_at": None if x.status_at is None else x.status_at.isoformat(),
                    "delivered_at": None if x.delivered_at is None
                    else x.delivered_at.isoformat(),
                    "quotes": quotes[x.id], "tracking": events[x.id],
                }
                for x in parcels
            ],
        }  # fmt: skip

    def label(self, shipment_id: int, seq: int) -> tuple[bytes, str] | None:
        p = t.parcels.c
        row = self.conn.execute(
            select(p.label, p.label_format).where(p.shipment_id == shipment_id, p.seq == seq)
        ).first()
        if row is None or row.label is None:
            return None
        return bytes(row.label), row.label_format or ""


def _customs_doc(inv: CommercialInvoice) -> dict[str, Any]:
    return {
        "exporter_country": inv.exporter_country,
        "importer_country": inv.importer_country,
        "currency": inv.currency,
        "duties": inv.duties.value,
        "contents_type": inv.contents_type,
        "total": str(inv.total.amount),
        "lines": [
            {**{k: v for k, v in asdict(x).items() if k != "value"}, "value": str(x.value.amount)}
            for x in inv.lines
        ],
    }
