"""The 3PL hand-off over real HTTP: aoms's API and a minimal 3PL each served by uvicorn on a
free localhost port, on SQLite or PostgreSQL.

Measures, for N orders of 1-2 lines over 5 locations:
* baseline: receive_order (route + reserve + open the FOs), orders per second, in-process;
* hand-off: `send_pending` claiming each FO and POSTing its signed request to the 3PL, FOs/s;
* callbacks: signed `accepted` then `shipped` callbacks POSTed to aoms, messages/s;
* rejections: signed `rejected` (not_in_stock) callbacks, each re-routing its order, per second;
and prints each as a ratio of the baseline (the same machine, the same run).

    .venv/bin/python benchmarks/bench_handoff.py --db sqlite|postgres [--orders 300]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aoms.adapters.db import migrate, setup
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.geocode import geocode
from aoms.adapters.tpl.channels import channels
from aoms.bootstrap import build
from aoms.config import Settings
from aoms.domain.geo import Point
from aoms.domain.money import Money
from aoms.domain.orders import Address, Order, OrderLine
from aoms.domain.routing import Policy, RateCard
from aoms.entrypoints.api.app import create_app
from aoms.services import handoff as svc
from aoms.services import orders

PG = os.environ.get("AOMS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SECRET = "bench-3pl-secret-0123456789"
LOCATIONS = {f"w{i}": Point(40.0 + i, -75.0 - i) for i in range(5)}


@contextmanager
def serving(app: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def three_pl() -> Starlette:
    async def take(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        return JSONResponse({"status": "received", "reference": f"R{body['fulfilment_order_id']}"})

    return Starlette(routes=[Route("/fulfilment-requests", take, methods=["POST"])])


def signed(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Aoms-Timestamp": ts,
        "X-Aoms-Signature": f"sha256={mac}",
        "Content-Type": "application/json",
    }


def an_order(i: int, now: datetime) -> Order:
    usd = "USD"
    lines = tuple(
        OrderLine(
            n + 1,
            f"SKU-{(i + n) % 20}",
            1 + (i % 2),
            Money.of("10", usd),
            Money.zero(usd),
            Money.zero(usd),
            grams=400,
        )
        for n in range(1 + i % 2)
    )
    return Order(
        shop="bench.myshopify.com",
        channel="bench",
        external_id=str(i),
        name=f"#{i}",
        currency=usd,
        placed_at=now,
        source_updated_at=now,
        lines=lines,
        shipping_address=Address(country_code="US", point=Point(41.0, -76.0)),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--orders", type=int, default=300)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    admin = None
    if args.db == "sqlite":
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    else:
        name = f"aoms_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(PG), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG).set(database=name).render_as_string(hide_password=False)
    rt = build(Settings(database_url=url, run_workers=False))
    try:
        run(rt, args.orders, args.db)
    finally:
        rt.close()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        tmp.cleanup()


def run(rt: Any, n: int, db: str) -> None:
    migrate.upgrade(rt.engine)
    now = datetime.now(UTC)
    card = RateCard(
        "USD",
        (500.0, 5000.0),
        (1000, 10000),
        (
            (Money.of("5", "USD").amount, Money.of("9", "USD").amount),
            (Money.of("8", "USD").amount, Money.of("14", "USD").amount),
        ),
    )
    with rt.store.transaction() as tx:
        setup.upsert_shop(tx.conn, "bench.myshopify.com", Policy.LANDED_COST, "USD", now)
        setup.set_rate_card(tx.conn, card, now)
        for loc, p in LOCATIONS.items():
            setup.upsert_location(
                tx.conn,
                id=loc,
                name=loc,
                lat=p.lat,
                lng=p.lng,
                country_code="US",
                handling=Money.of("1.50", "USD"),
                now=now,
            )
            for s in range(20):
                tx.change_stock(
                    f"SKU-{s}", loc, on_hand=100_000, reason="count", reference="bench", now=now
                )
    started = time.perf_counter()
    ids = []
    for i in range(2 * n):  # n to ship, n to reject
        with rt.store.transaction() as tx:
            ids.append(
                orders.receive_order(tx, an_order(i, now), geocode=geocode, now=now).order_id
            )
    baseline = 2 * n / (time.perf_counter() - started)

    hstore = SqlHandoffStore(rt.store)
    with serving(three_pl()) as tpl, serving(create_app(rt, migrate_on_start=False)) as api:
        for loc in LOCATIONS:
            hstore.set_connection(loc, kind="rest", secret=SECRET, base_url=tpl, now=now)
        client = httpx.Client(timeout=30)
        started = time.perf_counter()
        report = svc.send_pending(hstore, channels(rt.clock, client), clock=rt.clock, limit=10 * n)
        handoff_rate = report.delivered / (time.perf_counter() - started)
        fo_of: dict[int, list[tuple[int, str, dict[str, int]]]] = {}
        with hstore.handoff_transaction() as htx:
            for oid in ids:
                fo_of[oid] = [(f.id, f.location_id, f.items) for f in htx.order_fos(oid)]
        fos = [fo for oid in ids for fo in fo_of[oid]]

        def post(loc: str, msg: dict[str, Any]) -> None:
            body = json.dumps(msg).encode()
            got = client.post(f"{api}/v1/3pl/{loc}/callbacks", content=body, headers=signed(body))
            assert got.status_code == 200, got.text

        at = now.isoformat()
        started = time.perf_counter()
        sent = 0
        for oid in ids[:n]:
            for fo_id, loc, items in fo_of[oid]:
                post(
                    loc,
                    {
                        "event_id": f"a{fo_id}",
                        "type": "accepted",
                        "fulfilment_order_id": fo_id,
                        "occurred_at": at,
                    },
                )
                post(
                    loc,
                    {
                        "event_id": f"s{fo_id}",
                        "type": "shipped",
                        "fulfilment_order_id": fo_id,
                        "occurred_at": at,
                        "shipment": {
                            "shipment_id": f"S{fo_id}",
                            "shipped_at": at,
                            "lines": [{"sku": k, "quantity": q} for k, q in items.items()],
                        },
                    },
                )
                sent += 2
        callback_rate = sent / (time.perf_counter() - started)
        started = time.perf_counter()
        rejected = 0
        for oid in ids[n:]:
            for fo_id, loc, _ in fo_of[oid]:
                post(
                    loc,
                    {
                        "event_id": f"r{fo_id}",
                        "type": "rejected",
                        "reason": "not_in_stock",
                        "fulfilment_order_id": fo_id,
                        "occurred_at": at,
                    },
                )
                rejected += 1
        reject_rate = rejected / (time.perf_counter() - started)
    print(f"hand-off benchmark on {db}: {2 * n} orders, {len(fos)} fulfilment orders")
    rows = [
        ("baseline: receive_order (route + reserve), in-process", baseline, "orders/s"),
        ("hand-off: claim + signed POST to the 3PL + record", handoff_rate, "FOs/s"),
        ("callbacks: signed accepted + shipped, over HTTP", callback_rate, "messages/s"),
        ("rejections: signed not_in_stock + re-route, over HTTP", reject_rate, "rejections/s"),
    ]
    for label, rate, unit in rows:
        print(f"  {label:58s} {rate:8.1f} {unit:13s} {rate / baseline:5.2f}x baseline")


if __name__ == "__main__":
    main()
