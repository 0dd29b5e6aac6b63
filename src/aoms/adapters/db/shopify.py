"""Storage for the Shopify sync: which Shopify ids aoms's SKUs and locations are, each
store's ATS buffer, and what Shopify is known to hold for each SKU at each location."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, Table, and_, delete, func, select

from aoms.adapters.db import schema as t
from aoms.adapters.db.engine import upsert_insert
from aoms.adapters.db.store import SqlStore
from aoms.domain.errors import InvalidInput, UnknownLocation
from aoms.domain.events import Event
from aoms.services.shopify_sync import InventoryTarget

INVENTORY_PUSHED = "shopify.inventory_pushed"
INVENTORY_READ = "shopify.inventory_read"


def _upsert(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, object]], keys: list[str]
) -> None:
    """Insert or update rows by their keys: one statement, executed for many rows."""
    if not rows:
        return
    stmt = upsert_insert(conn, table)
    changes = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changes), list(rows))


class SqlShopifyStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    # -- configuration ---------------------------------------------------------------------

    def set_buffer(self, shop: str, buffer: int, now: datetime) -> None:
        if buffer < 0:
            raise InvalidInput("the ATS buffer cannot be negative", field="ats_buffer")
        with self.store.transaction() as tx:
            _upsert(
                tx.conn,
                t.shopify_stores,
                [{"shop": shop, "ats_buffer": buffer, "updated_at": now}],
                ["shop"],
            )

    def map_locations(self, shop: str, mapping: Mapping[str, str]) -> None:
        """aoms location id -> gid://shopify/Location/…: the locations that serve the store."""
        with self.store.transaction() as tx:
            missing = set(mapping) - tx.known_locations(mapping)
            if missing:
                raise UnknownLocation(f"unknown locations: {', '.join(sorted(missing))}")
            for gid in mapping.values():
                _check_gid(gid, "Location")
            _upsert(
                tx.conn,
                t.shopify_locations,
                [{"shop": shop, "location_id": k, "location_gid": v} for k, v in mapping.items()],
                ["shop", "location_id"],
            )
            # A location mapped again to another Shopify location: what we knew no longer holds.
            k = t.shopify_inventory_known.c
            tx.conn.execute(
                delete(t.shopify_inventory_known).where(
                    and_(k.shop == shop, k.location_id.in_(list(mapping)))
                )
            )

    def map_items(self, shop: str, mapping: Mapping[str, str]) -> None:
        """SKU -> gid://shopify/InventoryItem/…"""
        for gid in mapping.values():
            _check_gid(gid, "InventoryItem")
        rows = [{"shop": shop, "sku": k, "inventory_item_gid": v} for k, v in mapping.items()]
        with self.store.transaction() as tx:
            _upsert(tx.conn, t.shopify_inventory_items, rows, ["shop", "sku"])

    # -- the push --------------------------------------------------------------------------

    def buffer(self, shop: str) -> int:
        s = t.shopify_stores.c
        with self.store.read() as conn:
            value = conn.execute(select(s.ats_buffer).where(s.shop == shop)).scalar()
        return int(value or 0)

    def targets(self, shop: str) -> list[InventoryTarget]:
        i, loc = t.shopify_inventory_items.c, t.shopify_locations.c
        s, k = t.stock_levels.c, t.shopify_inventory_known.c
        free = func.greatest if self.store.dialect == "postgresql" else func.max
        available = free(
            func.coalesce(s.on_hand, 0)
            - func.coalesce(s.reserved, 0)
            - func.coalesce(s.safety_stock, 0),
            0,
        )
        query = (
            select(
                i.sku,
                loc.location_id,
                i.inventory_item_gid,
                loc.location_gid,
                available.label("available"),
                k.available.label("known"),
            )
            .select_from(t.shopify_inventory_items)
            .join(t.shopify_locations, loc.shop == i.shop)
            .outerjoin(t.stock_levels, and_(s.sku == i.sku, s.location_id == loc.location_id))
            .outerjoin(
                t.shopify_inventory_known,
                and_(k.shop == i.shop, k.sku == i.sku, k.location_id == loc.location_id),
            )
            .where(i.shop == shop)
            .order_by(i.sku, loc.location_id)
        )
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        return [
            InventoryTarget(sku, location, item, gid, int(units), None if n is None else int(n))
            for sku, location, item, gid, units, n in rows
        ]

    def record_known(
        self, shop: str, values: Sequence[tuple[str, str, int]], now: datetime, *, pushed: int
    ) -> None:
        """What Shopify holds now, with the event that says why we know it, in one commit."""
        rows = [
            {"shop": shop, "sku": sku, "location_id": loc, "available": n, "known_at": now}
            for sku, loc, n in values
        ]
        with self.store.transaction() as tx:
            _upsert(tx.conn, t.shopify_inventory_known, rows, ["shop", "sku", "location_id"])
            name = INVENTORY_PUSHED if pushed else INVENTORY_READ
            tx.emit(
                [
                    Event(
                        name,
                        f"shop:{shop}",
                        {"values": len(rows), "skus": len({r["sku"] for r in rows})},
                    )
                ],
                now,
            )

    def known(self, shop: str) -> dict[tuple[str, str], int]:
        k = t.shopify_inventory_known.c
        with self.store.read() as conn:
            rows = conn.execute(select(k.sku, k.location_id, k.available).where(k.shop == shop))
            return {(r.sku, r.location_id): int(r.available) for r in rows}


def _check_gid(value: str, kind: str) -> None:
    prefix = f"gid://shopify/{kind}/"
    if not (value.startswith(prefix) and value[len(prefix) :].isdigit()):
        raise InvalidInput(f"{value!r} is not a {prefix}N id", field="gid")
