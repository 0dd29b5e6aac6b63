"""Storage for scarcity prices: what a refresh reads (the shop's recent orders and the stock
available now) and the prices it writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select

from aoms.adapters.db import schema as t
from aoms.adapters.db.store import SqlStore, SqlTx
from aoms.domain import events as ev
from aoms.domain.errors import UnknownShop
from aoms.domain.events import Event
from aoms.domain.geo import Point
from aoms.domain.inventory import StockLevel
from aoms.domain.money import Money
from aoms.domain.orders import OrderStatus
from aoms.domain.routing import Candidate, Demand
from aoms.domain.routing_policy import PolicyDocument, Scarcity
from aoms.services.scarcity import PricingInputs, RecentOrder

PRICED_STATUSES = (OrderStatus.ROUTED.value, OrderStatus.BACKORDERED.value)


class SqlScarcityStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def schedules(self) -> dict[str, Scarcity]:
        rp = t.routing_policies.c
        with self.store.read() as conn:
            rows = conn.execute(select(rp.shop, rp.document).where(rp.status == "active")).all()
        found = {r.shop: PolicyDocument.from_dict(r.document).scarcity for r in rows}
        return {shop: s for shop, s in found.items() if s is not None}

    def last_refresh(self, shop: str) -> datetime | None:
        r = t.scarcity_refreshes.c
        with self.store.read() as conn:
            found: datetime | None = conn.execute(
                select(r.computed_at).where(r.shop == shop)
            ).scalar()
        return found

    def pricing_inputs(self, shop: str) -> PricingInputs | None:
        with self.store.read() as conn:
            reader = SqlTx(conn, self.store.dialect, self.store.default_policy)
            currency = reader.shop_currency(shop)
            if currency is None:
                raise UnknownShop(f"no shop {shop!r}", field="domain")
            inputs = reader.routing_inputs(shop, currency)
            version = inputs.active
            if version is None or version.document.scarcity is None or inputs.card is None:
                return None
            document, scarcity = version.document, version.document.scarcity
            o, ln = t.orders.c, t.order_lines.c
            heads = conn.execute(
                select(o.id, o.placed_at, o.dest_lat, o.dest_lng, o.shipping_method)
                .where(
                    o.shop == shop,
                    o.currency == currency,
                    o.status.in_(PRICED_STATUSES),
                    o.dest_lat.is_not(None),
                )
                .order_by(o.id.desc())
                .limit(scarcity.window)
            ).all()
            units: dict[int, dict[str, int]] = defaultdict(dict)
            grams: dict[int, dict[str, int]] = defaultdict(dict)
            for row in conn.execute(
                select(ln.order_id, ln.sku, func.sum(ln.quantity), func.max(ln.grams))
                .where(ln.order_id.in_([h.id for h in heads]), ln.requires_shipping.is_(True))
                .group_by(ln.order_id, ln.sku)
            ):
                units[row[0]][row[1]] = int(row[2])
                grams[row[0]][row[1]] = max(int(row[3] or 0), 0)
            skus = sorted({k for u in units.values() for k in u})
            locations = self._locations(reader, skus)
        orders = [
            RecentOrder(
                h.placed_at,
                Demand(units[h.id], grams[h.id], Point(h.dest_lat, h.dest_lng), currency),
                h.shipping_method,
            )
            for h in reversed(heads)
            if units.get(h.id)
        ]
        handling = {
            loc: Money.of(o.handling, document.currency)
            for loc, o in document.locations.items()
            if o.handling is not None
        }
        return PricingInputs(
            shop,
            currency,
            inputs.card,
            document.config(inputs.card, currency),
            scarcity,
            orders,
            locations,
            handling,
            {
                m: document.config(inputs.card, currency, m)
                for m in {o.shipping_method for o in orders}
            },
        )

    @staticmethod
    def _locations(reader: SqlTx, skus: list[str]) -> list[Candidate]:
        """Every active location with what it has available of `skus` now (read, not locked)."""
        s = t.stock_levels.c
        rows = reader.conn.execute(
            select(s.sku, s.location_id, s.on_hand, s.reserved, s.safety_stock).where(
                s.sku.in_(skus)
            )
        )
        return reader.candidates([StockLevel(*r) for r in rows])

    def save_prices(
        self,
        shop: str,
        prices: Mapping[tuple[str, str], float],
        report: Mapping[str, Any],
        now: datetime,
    ) -> None:
        sp, sr = t.stock_prices, t.scarcity_refreshes
        with self.store.transaction() as tx:
            tx.conn.execute(delete(sp).where(sp.c.shop == shop))
            if prices:
                tx.conn.execute(
                    insert(sp),
                    [
                        {"shop": shop, "location_id": loc, "sku": sku, "price_minor": price,
                         "computed_at": now}
                        for (loc, sku), price in sorted(prices.items())
                    ],
                )  # fmt: skip
            tx.conn.execute(delete(sr).where(sr.c.shop == shop))
            tx.conn.execute(insert(sr).values(shop=shop, computed_at=now, report=dict(report)))
            tx.emit([Event(ev.SCARCITY_PRICED, f"shop:{shop}", {**report, "shop": shop})], now)

    def prices(self, shop: str) -> dict[str, Any]:
        """The last refresh's report and its prices, dearest first."""
        sp, sr = t.stock_prices.c, t.scarcity_refreshes.c
        with self.store.read() as conn:
            last = conn.execute(select(sr.computed_at, sr.report).where(sr.shop == shop)).first()
            rows = conn.execute(
                select(sp.location_id, sp.sku, sp.price_minor)
                .where(sp.shop == shop)
                .order_by(sp.price_minor.desc(), sp.location_id, sp.sku)
            ).all()
        return {
            "shop": shop,
            "computed_at": None if last is None else last.computed_at,
            "report": None if last is None else last.report,
            "prices": [
                {"location_id": r.location_id, "sku": r.sku, "price_minor": r.price_minor}
                for r in rows
            ],
        }
