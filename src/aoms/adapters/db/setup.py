"""Reference data: shops, locations, rate cards and products (plain upserts)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Table

from aoms.adapters.db import schema as t
from aoms.adapters.db.engine import upsert_insert
from aoms.adapters.db.schema import to_minor
from aoms.adapters.db.store import SqlTx
from aoms.domain.money import Money
from aoms.domain.routing import Policy, RateCard


def _upsert(conn: Connection, table: Table, values: dict[str, object], keys: list[str]) -> None:
    stmt = upsert_insert(conn, table).values(**values)
    changes = {k: v for k, v in values.items() if k not in keys and k != "created_at"}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changes))


def upsert_shop(
    conn: Connection, domain: str, policy: Policy, currency: str, now: datetime
) -> None:
    _upsert(
        conn,
        t.shops,
        {"domain": domain, "routing_policy": policy.value, "currency": currency, "created_at": now},
        ["domain"],
    )


def set_rate_card(conn: Connection, card: RateCard, now: datetime) -> None:
    _upsert(
        conn,
        t.rate_cards,
        {"currency": card.currency, "card": card.as_dict(), "updated_at": now},
        ["currency"],
    )


def upsert_location(
    conn: Connection,
    *,
    id: str,
    name: str,
    lat: float,
    lng: float,
    country_code: str,
    handling: Money,
    active: bool = True,
    region: str | None = None,
    now: datetime,
) -> None:
    _upsert(
        conn,
        t.locations,
        {
            "id": id,
            "name": name,
            "lat": lat,
            "lng": lng,
            "country_code": country_code.upper(),
            "region": region.upper() if region else None,
            "handling_minor": to_minor(handling),
            "currency": handling.currency,
            "active": active,
            "created_at": now,
        },
        ["id"],
    )


def upsert_product(
    conn: Connection,
    sku: str,
    title: str,
    grams: int,
    *,
    tags: list[str] | None = None,
    shipping: dict[str, object] | None = None,
) -> None:
    values: dict[str, object] = {"sku": sku, "title": title, "grams": grams}
    if tags is not None:
        values["tags"] = sorted(set(tags))
    values.update(shipping or {})  # dimensions and customs data, where given
    _upsert(conn, t.products, values, ["sku"])


def load_store(
    conn: Connection, data: dict[str, object], now: datetime, *, reference: str = "demo"
) -> None:
    """Load a store's reference data and stock counts (the demo store's JSON layout:
    shop, currency, routing_policy, rate_card, locations, products, stock)."""
    currency = str(data["currency"])
    upsert_shop(conn, str(data["shop"]), Policy(str(data["routing_policy"])), currency, now)
    set_rate_card(conn, RateCard.from_dict(data["rate_card"]), now)  # type: ignore[arg-type]
    for loc in data["locations"]:  # type: ignore[attr-defined]
        upsert_location(
            conn,
            id=loc["id"],
            name=loc["name"],
            lat=loc["lat"],
            lng=loc["lng"],
            country_code=loc["country_code"],
            handling=Money.of(loc["handling_cost"], currency),
            region=loc.get("region"),
            now=now,
        )
    for p in data.get("products", []):  # type: ignore[attr-defined]
        upsert_product(conn, p["sku"], p["title"], p["grams"], tags=p.get("tags"))
    tx = SqlTx(conn, conn.dialect.name)
    for s in data["stock"]:  # type: ignore[attr-defined]
        tx.change_stock(
            s["sku"],
            s["location_id"],
            on_hand=s["on_hand"],
            reason="initial_count",
            reference=reference,
            now=now,
        )
    tx.flush()  # the movements' ledger entries
