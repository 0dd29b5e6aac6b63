"""Dashboard page times with 100,000 orders, on SQLite or PostgreSQL.

Loads a database in bulk (realistic rows, not API calls): the demo store's five locations
plus 2,000 more SKUs (10,135 stock rows), and 100,000 orders over 90 days with their lines,
reservations, fulfilment orders, routing decisions, outbox events and webhook deliveries, the
stock counters matching the reservations; one routed order in 20 held (a third of the holds
open) and one in 50 returned (a sixth of the returns closed with their refund). Then starts
`aoms serve` on it, signs in as a viewer and requests every page repeatedly, reading the
server's own time from its `Server-Timing` header (and the client's wall time beside it).
The baseline is GET /health in the same run.

    .venv/bin/python benchmarks/bench_dashboard.py --db sqlite|postgres [--orders N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, create_engine, text, update
from sqlalchemy.engine import make_url

from aoms.adapters.db import migrate, setup
from aoms.adapters.db import schema as t
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.store import SqlStore
from aoms.adapters.db.users import SqlUserStore
from aoms.demo.orders import demo_store
from aoms.domain.users import Role

PG = os.environ.get("AOMS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "bench-viewer-password"
FLOOR_MS = 300.0
FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Donald",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Backus",
    "Johnson",
    "Knuth",
]
CITIES = [
    ("New York", 40.71, -74.0),
    ("Chicago", 41.88, -87.63),
    ("Houston", 29.76, -95.37),
    ("Phoenix", 33.45, -112.07),
    ("Seattle", 47.61, -122.33),
    ("Miami", 25.76, -80.19),
    ("Denver", 39.74, -104.99),
    ("Boston", 42.36, -71.06),
]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _plain(value: Any, sqlite: bool) -> Any:
    """A value as the driver takes it without SQLAlchemy's per-row type processing."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ") if sqlite else value
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool) and sqlite:
        return int(value)
    return value


def bulk(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows fast: COPY on PostgreSQL, one executemany on SQLite."""
    cols = [c.name for c in table.columns if c.name in rows[0]]
    raw = conn.connection.driver_connection
    sqlite = conn.dialect.name == "sqlite"
    values = [tuple(_plain(r.get(c), sqlite) for c in cols) for r in rows]
    if sqlite:
        marks = ", ".join("?" for _ in cols)
        raw.executemany(f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({marks})", values)
        return
    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as cp:
        for v in values:
            cp.write_row(v)


# Holds and returns, in the order their foreign keys need.
AFTERCARE = (
    "holds",
    "returns",
    "return_items",
    "return_dispositions",
    "order_payments",
    "refunds",
    "refund_lines",
    "refund_payments",
)
HOLD_KINDS = ("manual_review", "high_fraud_risk", "merchant_rule", "incorrect_address")
RETURN_STATES = ("approved", "label_issued", "in_transit", "received", "review", "closed")


def aftercare(
    rows: dict[str, list[dict[str, Any]]],
    next_id: dict[str, int],
    rng: random.Random,
    oid: int,
    shop: str,
    placed: datetime,
    lines: list[tuple[int, str, int, int]],
) -> None:
    """One routed order in 20 was held (a third of those holds still open), one in 50 came
    back: a return with its item and events, and when closed its disposition, the order's
    payment and the refund of one unit (49.00)."""
    roll = rng.random()
    if roll < 0.05:
        open_ = rng.random() < 1 / 3
        rows["holds"].append(
            {
                "id": next_id["hold"],
                "order_id": oid,
                "kind": rng.choice(HOLD_KINDS),
                "reason": "held for review",
                "detail": {},
                "status": "open" if open_ else "released",
                "created_at": placed,
                "resolved_at": None if open_ else placed + timedelta(hours=2),
                "resolved_by": None if open_ else "ops",
                "note": None if open_ else "checked",
            }
        )
        next_id["hold"] += 1
        return
    if roll >= 0.07:
        return
    rid, item = next_id["ret"], next_id["item"]
    next_id["ret"] += 1
    next_id["item"] += 1
    state = rng.choice(RETURN_STATES)
    at = placed + timedelta(days=3)
    refund_id = rid if state == "closed" else None
    line_no, sku = lines[0][0], lines[0][1]
    rows["returns"].append(
        {
            "id": rid,
            "order_id": oid,
            "shop": shop,
            "status": state,
            "decision": "review" if state == "review" else "approve",
            "decision_reasons": ["within the window and policy"],
            "policy": {"refund_timing": "receipt"},
            "customer_tags": [],
            "refund_to": "original",
            "refund_shipping": False,
            "fees_waived": False,
            "carrier": "aoms-return",
            "tracking_number": f"RT{rid:012d}0",
            "label": None,
            "location_id": "nwk" if state in ("received", "closed") else None,
            "refund_id": refund_id,
            "exchange": None,
            "exchange_order_id": None,
            "exchange_deadline": None,
            "exchange_status": None,
            "external_id": None,
            "created_at": at,
            "updated_at": at,
        }
    )
    rows["return_items"].append(
        {
            "id": item,
            "return_id": rid,
            "line_no": line_no,
            "sku": sku,
            "quantity": 1,
            "reason": "too_small",
            "has_photos": False,
        }
    )
    for name in ("return.requested", "return.decided", f"return.{state}"):
        rows["outbox"].append(
            {
                "id": next_id["ob"],
                "name": name,
                "aggregate": f"return:{rid}",
                "data": {"order_id": oid},
                "created_at": at,
                "delivered_at": at,
            }
        )
        next_id["ob"] += 1
    if refund_id is None:
        return
    pay = next_id["pay"]
    next_id["pay"] += 1
    rows["return_dispositions"].append(
        {
            "return_id": rid,
            "item_id": item,
            "quantity": 1,
            "disposition": "restock",
            "location_id": "nwk",
            "at": at,
        }
    )
    rows["order_payments"].append(
        {
            "id": pay,
            "order_id": oid,
            "method": "card",
            "captured_minor": 4900 * sum(q for _, _, q, _ in lines),
            "currency": "USD",
            "external_id": None,
            "source": "default",
            "created_at": at,
        }
    )
    line = {"line_no": line_no, "sku": sku, "units": 1, "goods": "49.00", "tax": "0.00"}
    rows["refunds"].append(
        {
            "id": refund_id,
            "order_id": oid,
            "return_id": rid,
            "source": "aoms",
            "destination": "original",
            "currency": "USD",
            "items_minor": 4900,
            "shipping_minor": 0,
            "shipping_tax_minor": 0,
            "fees_minor": 0,
            "total_minor": 4900,
            "bonus_minor": 0,
            "exchange_minor": 0,
            "detail": {"lines": [line | {"total": "49.00"}], "fees": []},
            "idempotency_key": None,
            "external_id": None,
            "created_at": at,
        }
    )
    rows["refund_lines"].append(
        {
            "refund_id": refund_id,
            "line_no": line_no,
            "units": 1,
            "goods_minor": 4900,
            "tax_minor": 0,
            "restock_location_id": "nwk",
        }
    )
    rows["refund_payments"].append(
        {"refund_id": refund_id, "payment_id": pay, "amount_minor": 4900}
    )


def load(conn: Connection, count: int, now: datetime, seed: int = 6) -> dict[str, Any]:
    """Bulk-insert `count` orders and everything they leave behind; returns probes for pages."""
    rng = random.Random(seed)
    store = demo_store()
    setup.load_store(conn, store, now - timedelta(days=91))
    extra = [f"SKU-B{n:04d}" for n in range(2000)]  # a catalogue's long tail, in bulk
    bulk(
        conn,
        t.products,
        [{"sku": k, "title": f"Bulk item {k[5:]}", "grams": 400, "tags": []} for k in extra],
    )
    bulk(
        conn,
        t.stock_levels,
        [
            {
                "sku": k,
                "location_id": loc["id"],
                "on_hand": 0,
                "reserved": 0,
                "safety_stock": 0,
                "updated_at": now - timedelta(days=91),
            }
            for k in extra
            for loc in store["locations"]
        ],
    )
    store["products"] += [{"sku": k} for k in extra]
    skus = [p["sku"] for p in store["products"]]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(skus))]
    locs = [loc["id"] for loc in store["locations"]]
    shop = store["shop"]
    reserved: dict[tuple[str, str], int] = {}
    rows: dict[str, list[dict[str, Any]]] = {
        k: []
        for k in (
            "orders",
            "order_lines",
            "reservations",
            "fulfilment_orders",
            "routing_decisions",
            "outbox",
            "webhook_inbox",
            *AFTERCARE,
        )
    }
    span = timedelta(days=90).total_seconds()

    def flush(final: bool = False) -> None:
        if len(rows["orders"]) >= 5000 or final:
            for name in (
                "orders",
                "order_lines",
                "reservations",
                "fulfilment_orders",
                "routing_decisions",
                "outbox",
                "webhook_inbox",
                *AFTERCARE,
            ):
                if rows[name]:
                    bulk(conn, t.metadata.tables[name], rows[name])
                    rows[name].clear()

    next_id = {"res": 1, "fo": 1, "rd": 1, "ob": 1, "hold": 1, "ret": 1, "item": 1, "pay": 1}
    for oid in range(1, count + 1):
        placed = now - timedelta(seconds=span * (count - oid) / count)
        roll = rng.random()
        status = (
            "cancelled"
            if roll < 0.03
            else "unroutable"
            if roll < 0.04
            else "backordered"
            if roll < 0.10
            else "routed"
        )
        city, lat, lng = rng.choice(CITIES)
        n_lines = min(4, 1 + int(rng.expovariate(1.3)))
        picked = rng.choices(skus, weights=weights, k=n_lines)
        lines = []
        for i, sku in enumerate(dict.fromkeys(picked)):
            qty = 1 if rng.random() < 0.8 else 2
            short = qty if status == "backordered" and i == 0 else 0
            lines.append((i + 1, sku, qty, short))
        units = sum(q for _, _, q, _ in lines)
        ships = 0
        if status in ("routed", "backordered"):
            shipping = [
                (ln, rng.choice(locs[:2]) if rng.random() < 0.85 else rng.choice(locs))
                for ln in lines
                if ln[2] > ln[3]
            ]
            by_loc: dict[str, dict[str, int]] = {}
            for (line_no, sku, qty, short), loc in shipping:
                by_loc.setdefault(loc, {})[sku] = qty - short
                rows["reservations"].append(
                    {
                        "id": next_id["res"],
                        "order_id": oid,
                        "line_no": line_no,
                        "sku": sku,
                        "location_id": loc,
                        "quantity": qty - short,
                        "status": "active",
                        "created_at": placed,
                    }
                )
                next_id["res"] += 1
                reserved[(sku, loc)] = reserved.get((sku, loc), 0) + qty - short
            ships = len(by_loc)
            cost = 0
            shipments = []
            for loc, items in by_loc.items():
                ship_minor, handling = rng.randrange(400, 1600), 210
                km, grams = round(rng.uniform(20, 2500), 1), 500 * sum(items.values())
                cost += ship_minor + handling
                rows["fulfilment_orders"].append(
                    {
                        "id": next_id["fo"],
                        "order_id": oid,
                        "location_id": loc,
                        "status": "open",
                        "items": items,
                        "shipping_minor": ship_minor,
                        "handling_minor": handling,
                        "distance_km": km,
                        "weight_g": grams,
                        "created_at": placed,
                    }
                )
                next_id["fo"] += 1
                shipments.append(
                    {
                        "location_id": loc,
                        "location": loc,
                        "items": items,
                        "shipping": f"{ship_minor / 100:.2f}",
                        "handling": "2.10",
                        "distance_km": km,
                        "weight_g": grams,
                    }
                )
            rows["routing_decisions"].append(
                {
                    "id": next_id["rd"],
                    "order_id": oid,
                    "policy": "optimal",
                    "cost_minor": cost,
                    "currency": "USD",
                    "decided_at": placed,
                    "explanation": f"Chosen: {', '.join(by_loc)} ({ships} shipment(s), "
                    f"{cost / 100:.2f} USD). Proven optimal.",
                    "detail": {
                        "chosen": {
                            "cost": f"{cost / 100:.2f}",
                            "units": units,
                            "backordered": {},
                            "shipments": shipments,
                        },
                        "runners_up": [],
                        "options_considered": 4,
                    },
                }
            )
            next_id["rd"] += 1
        total = sum(q for _, _, q, _ in lines) * 4900
        rows["orders"].append(
            {
                "id": oid,
                "shop": shop,
                "channel": "shopify",
                "external_id": str(9_000_000 + oid),
                "name": f"#{1000 + oid}",
                "status": status,
                "financial_status": "paid",
                "currency": "USD",
                "placed_at": placed,
                "source_updated_at": placed,
                "received_at": placed,
                "cancelled_at": placed if status == "cancelled" else None,
                "ship_to": {
                    "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    "city": city,
                    "zip": "10001",
                    "country_code": "US",
                    "address1": "1 Main St",
                    "province_code": None,
                },
                "dest_lat": lat,
                "dest_lng": lng,
                "dest_source": "address",
                "routing_key": uuid.uuid4().hex,
                "line_items_minor": total,
                "discounts_minor": 0,
                "tax_minor": 0,
                "shipping_minor": 0,
                "total_minor": total,
                "taxes_included": False,
                "amounts_add_up": True,
                "tags": "",
                "units": units,
                "backordered_units": sum(s for *_, s in lines),
                "shipments": ships,
            }
        )
        rows["order_lines"] += [
            {
                "order_id": oid,
                "line_no": line_no,
                "external_id": None,
                "sku": sku,
                "variant_id": None,
                "title": sku,
                "quantity": qty,
                "unit_price_minor": 4900,
                "discount_minor": 0,
                "tax_minor": 0,
                "grams": 500,
                "requires_shipping": True,
                "properties": [],
                "reserved_qty": qty - short,
                "backordered_qty": short,
            }
            for line_no, sku, qty, short in lines
        ]
        for name in ("order.received", f"order.{status}"):
            rows["outbox"].append(
                {
                    "id": next_id["ob"],
                    "name": name,
                    "aggregate": f"order:{oid}",
                    "data": {"status": status},
                    "created_at": placed,
                    "delivered_at": placed,
                }
            )
            next_id["ob"] += 1
        if status == "routed":
            aftercare(rows, next_id, rng, oid, shop, placed, lines)
        rows["webhook_inbox"].append(
            {
                "shop": shop,
                "topic": "orders/create",
                "webhook_id": f"w-{oid}",
                "event_id": f"e-{oid}",
                "api_version": "2026-04",
                "triggered_at": None,
                "received_at": placed,
                "body": b'{"id": %d}' % oid,
                "status": "processed",
                "attempts": 1,
                "error_code": None,
                "error": None,
                "order_id": oid,
                "processed_at": placed,
            }
        )
        flush()
    flush(final=True)
    s = t.stock_levels.c
    for (sku, loc), n in reserved.items():
        conn.execute(
            update(t.stock_levels)
            .where(s.sku == sku, s.location_id == loc)
            .values(reserved=n, on_hand=n + rng.randrange(0, 40))
        )
    if conn.dialect.name == "postgresql":
        for name in (
            "orders",
            "order_lines",
            "reservations",
            "fulfilment_orders",
            "routing_decisions",
            "outbox",
            "webhook_inbox",
            "holds",
            "returns",
            "return_items",
            "return_dispositions",
            "order_payments",
            "refunds",
        ):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT max(id) FROM {name}))"
                )
            ) if name != "order_lines" else None
    return {
        "mid_cursor": count // 2,
        "sku": skus[3],
        "name": f"#{1000 + count // 3}",
        "held_order": conn.execute(
            text("SELECT max(order_id) FROM holds WHERE status = 'open'")
        ).scalar(),
        "closed_return": conn.execute(
            text("SELECT max(id) FROM returns WHERE status = 'closed'")
        ).scalar(),
        "returns": next_id["ret"] - 1,
        "holds": next_id["hold"] - 1,
    }


def measure(client: httpx.Client, path: str, repeat: int) -> dict[str, float]:
    server, wall = [], []
    for i in range(repeat + 3):
        start = time.perf_counter()
        answer = client.get(path)
        elapsed = (time.perf_counter() - start) * 1000
        answer.raise_for_status()
        timing = re.search(r"dur=([0-9.]+)", answer.headers.get("server-timing", ""))
        assert timing, path
        if i >= 3:  # the first three warm the caches
            server.append(float(timing.group(1)))
            wall.append(elapsed)
    return {
        "server_median_ms": round(statistics.median(server), 2),
        "server_p99_ms": round(pct(server, 99), 2),
        "wall_median_ms": round(statistics.median(wall), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    admin = None
    name = ""
    tmp = tempfile.TemporaryDirectory()
    if args.db == "sqlite":
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    else:
        name = f"aoms_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(PG), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG).set(database=name).render_as_string(hide_password=False)
    now = datetime.now(UTC)
    engine = make_engine(url)
    migrate.upgrade(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        probes = load(conn, args.orders, now)
    if args.db == "postgres":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does after a bulk load
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    load_seconds = round(time.perf_counter() - started, 1)
    print(f"loaded {args.orders} orders into {args.db} in {load_seconds} s", file=sys.stderr)
    SqlUserStore(SqlStore(engine)).add_user("bench", PASSWORD, Role.VIEWER, now)
    engine.dispose()
    port = free_port()
    env = os.environ | {
        "AOMS_DATABASE_URL": url,
        "AOMS_RUN_WORKERS": "false",
        "AOMS_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "aoms.entrypoints.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(Path(tmp.name) / "serve.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    pages = {
        "GET /health (baseline)": "/health",
        "overview /": "/",
        "orders /orders": "/orders",
        "orders, status filter": "/orders?status=backordered",
        "orders, search by name": f"/orders?q={probes['name'].replace('#', '%23')}",
        "orders, search by SKU": f"/orders?q={probes['sku']}",
        "orders, search by customer": "/orders?q=lovel",
        "orders, search matching nothing": "/orders?q=nobody-by-this-name",
        "orders, page in the middle": f"/orders?before={probes['mid_cursor']}",
        "order page /orders/{id}": f"/orders/{args.orders - 7}",
        "stock /stock": "/stock",
        "stock, low only": "/stock?low=true",
        "policy lab /lab": "/lab",
        "review queue /holds": "/holds",
        "review queue, one kind": "/holds?kind=merchant_rule",
        "review queue, released": "/holds?status=released",
        "review queue, page in the middle": f"/holds?after={probes['holds'] // 2}",
        "held order page /orders/{id}": f"/orders/{probes['held_order']}",
        "returns /returns": "/returns",
        "returns, state filter": "/returns?status=review",
        "returns, page in the middle": f"/returns?before={probes['returns'] // 2}",
        "return page /returns/{id}": f"/returns/{probes['closed_return']}",
    }
    results: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(300):
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
            assert token
            client.post(
                "/login",
                data={"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)},
            )
            for label, path in pages.items():
                results[label] = measure(client, path, args.repeat)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        tmp.cleanup()
    base_ms = results["GET /health (baseline)"]["server_median_ms"] or 0.01
    for r in results.values():
        r["server_median_over_health"] = round(r["server_median_ms"] / base_ms, 1)
    worst = max(r["server_p99_ms"] for r in results.values())
    print(
        json.dumps(
            {"db": args.db, "orders": args.orders, "load_seconds": load_seconds, "pages": results},
            indent=2,
        )
    )
    print(f"\n{'page':36} {'median ms':>10} {'p99 ms':>8} {'× health':>9}")
    for label, r in results.items():
        print(
            f"{label:36} {r['server_median_ms']:>10} {r['server_p99_ms']:>8} "
            f"{r['server_median_over_health']:>9}"
        )
    ok = worst < FLOOR_MS
    print(
        f"worst p99 {worst} ms on {args.db} with {args.orders} orders: "
        f"{'under' if ok else 'NOT under'} the {FLOOR_MS:.0f} ms floor"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
