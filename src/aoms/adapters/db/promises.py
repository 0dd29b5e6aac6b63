"""Storage for delivery promises: the imported history, the fitted models and their lanes,
and what an order's promise is made from."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from aoms.adapters.db import schema as t
from aoms.adapters.db.store import SqlStore, SqlTx
from aoms.domain.events import Event
from aoms.domain.handoff import WONT_SHIP, FoStatus
from aoms.domain.promise import PromiseModel, region
from aoms.services.promises import Delivered, ModelInfo, OrderToPromise

MODEL_COLUMNS = (
    "confidence",
    "prior_weight",
    "half_life_days",
    "deliveries",
    "history_from",
    "history_to",
    "fitted_at",
    "chosen_on_validation",
)


class SqlPromiseStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    @contextmanager
    def reading(self) -> Iterator[SqlPromiseRepo]:
        with self.store.read() as conn:
            yield SqlPromiseRepo(conn)

    @contextmanager
    def writing(self) -> Iterator[SqlPromiseRepo]:
        with self.store.transaction() as tx:
            yield SqlPromiseRepo(tx.conn, tx)


class SqlPromiseRepo:
    def __init__(self, conn: Connection, tx: SqlTx | None = None) -> None:
        self.conn = conn
        self.tx = tx

    def emit(self, events: Iterable[Event], now: datetime) -> None:
        if self.tx is None:
            raise RuntimeError("events are written only in a write transaction")
        self.tx.emit(events, now)

    def location_regions(self) -> dict[str, str]:
        c = t.locations.c
        rows = self.conn.execute(select(c.id, c.country_code, c.region)).all()
        return {r.id: region(r.country_code, r.region) for r in rows}

    def known_external_ids(self, ids: Sequence[str]) -> set[str]:
        c = t.delivery_history.c.external_id
        known: set[str] = set()
        for start in range(0, len(ids), 500):  # stay under any bound-parameter limit
            chunk = list(ids[start : start + 500])
            known.update(self.conn.execute(select(c).where(c.in_(chunk))).scalars())
        return known

    def add_history(self, rows: Sequence[dict[str, Any]], now: datetime) -> None:
        self.conn.execute(insert(t.delivery_history), [{**r, "imported_at": now} for r in rows])

    def history(self) -> list[tuple[Delivered, datetime]]:
        h = t.delivery_history.c
        rows = self.conn.execute(
            select(
                h.ordered_at,
                h.delivered_at,
                h.promised_at,
                h.origin_region,
                h.destination_region,
                h.service,
            ).order_by(h.ordered_at, h.id)
        ).all()
        return [
            (
                Delivered(
                    r.ordered_at.astimezone(UTC).date(),
                    r.delivered_at.astimezone(UTC).date(),
                    r.promised_at.astimezone(UTC).date() if r.promised_at else None,
                    r.origin_region,
                    r.destination_region,
                    r.service,
                ),
                r.ordered_at,
            )
            for r in rows
        ]

    def save_model(self, model: PromiseModel, info: ModelInfo) -> int:
        values = {k: getattr(info, k) for k in MODEL_COLUMNS}
        model_id = int(
            self.conn.execute(
                insert(t.promise_models)
                .values(**values, overall_days=model.overall)
                .returning(t.promise_models.c.id)
            ).scalar_one()
        )
        lanes = [
            {"level": "lane", "origin": o, "destination": d, "service": s, "samples": n, "days": v}
            for (o, d, s), (n, v) in model.by_lane.items()
        ]
        lanes += [
            {"level": "route", "origin": o, "destination": d, "service": "", "samples": n,
             "days": v}
            for (o, d), (n, v) in model.by_route.items()
        ]  # fmt: skip
        lanes += [
            {"level": "destination", "origin": "", "destination": d, "service": "",
             "samples": n, "days": v}
            for d, (n, v) in model.by_destination.items()
        ]  # fmt: skip
        self.conn.execute(insert(t.promise_lanes), [{**x, "model_id": model_id} for x in lanes])
        return model_id

    def latest_model(self) -> tuple[PromiseModel, ModelInfo] | None:
        m = t.promise_models.c
        row = self.conn.execute(select(t.promise_models).order_by(m.id.desc()).limit(1)).first()
        if row is None:
            return None
        lanes = self.conn.execute(
            select(t.promise_lanes).where(t.promise_lanes.c.model_id == row.id)
        ).all()
        levels: dict[str, dict[Any, tuple[int, float]]] = defaultdict(dict)
        for x in lanes:
            key = {
                "lane": (x.origin, x.destination, x.service),
                "route": (x.origin, x.destination),
                "destination": x.destination,
            }[x.level]
            levels[x.level][key] = (x.samples, x.days)
        model = PromiseModel(
            row.confidence,
            row.prior_weight,
            row.overall_days,
            levels["destination"],
            levels["lane"],
            levels["route"],
        )
        info = ModelInfo(
            id=row.id,
            **{k: getattr(row, k) for k in MODEL_COLUMNS},
            lanes=len(levels["lane"]),
        )
        return model, info

    def order_to_promise(self, order_id: int) -> OrderToPromise | None:
        o = t.orders.c
        row = self.conn.execute(
            select(o.id, o.status, o.placed_at, o.ship_to, o.backordered_units).where(
                o.id == order_id
            )
        ).first()
        if row is None:
            return None
        ln = t.order_lines.c
        lines: dict[str, int] = defaultdict(int)
        for sku, qty in self.conn.execute(
            select(ln.sku, ln.quantity).where(
                ln.order_id == order_id, ln.requires_shipping.is_(True), ln.quantity > 0
            )
        ).all():
            lines[sku] += qty
        f, fl = t.fulfilment_orders.c, t.fulfilment_order_lines.c
        left = (
            select(func.coalesce(func.sum(fl.shipped), 0)).where(fl.fo_id == f.id).scalar_subquery()
        )
        rows = self.conn.execute(
            select(f.location_id, f.status, left).where(f.order_id == order_id).order_by(f.id)
        ).all()
        # those that ship, and those given up after a parcel of them left
        fos = [(loc, status) for loc, status, shipped in rows if status not in WONT_SHIP or shipped]
        shipments = tuple(dict.fromkeys(loc for loc, _ in fos))
        done = {FoStatus.SHIPPED.value, *(s.value for s in WONT_SHIP)}  # nothing more leaves
        waiting = tuple(dict.fromkeys(loc for loc, s in fos if s not in done))
        # Each location's service from the latest decision that ships from there (an edit's
        # added lines are a decision of their own, beside the shipments routed before).
        d = t.routing_decisions.c
        decided: dict[str, object] = {}
        for detail in self.conn.execute(
            select(d.detail).where(d.order_id == order_id).order_by(d.id.desc())
        ).scalars():
            for s in ((detail or {}).get("chosen") or {}).get("shipments") or []:
                decided.setdefault(s["location_id"], s.get("service"))
            if all(loc in decided for loc in shipments):
                break
        services = {loc: str(v) for loc, v in decided.items() if v}
        ship_to = row.ship_to or {}
        return OrderToPromise(
            id=row.id,
            status=row.status,
            placed_at=row.placed_at,
            country_code=ship_to.get("country_code"),
            province_code=ship_to.get("province_code"),
            lines=tuple(sorted(lines.items())),
            shipments=shipments,
            backordered_units=row.backordered_units,
            services=services,
            waiting=waiting,
            some_shipped=any(shipped for _, _, shipped in rows),
        )

    def locations_that_can_ship(self, lines: Sequence[tuple[str, int]]) -> list[str]:
        """Active locations whose available stock covers every line."""
        s, loc = t.stock_levels.c, t.locations.c
        need = dict(lines)
        rows = self.conn.execute(
            select(s.location_id, s.sku, s.on_hand - s.reserved - s.safety_stock)
            .join(t.locations, loc.id == s.location_id)
            .where(loc.active.is_(True), s.sku.in_(sorted(need)))
        ).all()
        covered: dict[str, int] = defaultdict(int)
        for location_id, sku, available in rows:
            if available >= need[sku]:
                covered[location_id] += 1
        return sorted(k for k, n in covered.items() if n == len(need))
