"""`aoms demo`: the demo store, signed webhooks through the real endpoint, the API left running."""

from __future__ import annotations

import json
import secrets
import shlex
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy.engine import URL

from aoms.adapters.db import queries, setup
from aoms.adapters.db.users import SqlUserStore
from aoms.adapters.shopify.webhooks import sign
from aoms.bootstrap import Runtime, build
from aoms.config import Settings
from aoms.demo.orders import demo_store, generate_orders
from aoms.domain.users import Role
from aoms.entrypoints.api.app import create_app


def start_server(app: Any, host: str, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="aoms-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit(f"the API did not start on {host}:{port} (is the port taken?)")
        time.sleep(0.05)
    return server, thread


def send_webhook(
    client: httpx.Client, shop: str, topic: str, payload: dict[str, Any], secret: str
) -> httpx.Response:
    body = json.dumps(payload).encode()
    return client.post(
        "/webhooks/shopify",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Hmac-Sha256": sign(body, secret),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-API-Version": "2026-04",
        },
    )


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file, its path escaped (a % or a bracket stays itself)."""
    return URL.create("sqlite", database=str(path)).render_as_string(hide_password=False)


def run_demo(
    *, orders: int, host: str, port: int, database: Path, stay: bool, console: Console
) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    secret = secrets.token_urlsafe(24)
    reports = Path("docs/policy-lab")  # the lab's stored reports, when run from a checkout
    settings = Settings(
        database_url=sqlite_url(database),
        shopify_webhook_secret=secret,
        reports_dir=reports if reports.is_dir() else None,
    )
    runtime = build(settings)
    runtime.migrate()
    logins = demo_users(runtime)
    store = demo_store()
    with runtime.engine.begin() as conn:
        setup.load_store(conn, store, runtime.clock())
    console.print(
        f"[bold]aoms demo[/]: {len(store['products'])} SKUs, "
        f"{len(store['locations'])} locations, database {database}"
    )
    server, thread = start_server(create_app(runtime, migrate_on_start=False), host, port)
    # Placed over the last 13 days up to now, so the dashboard's 14-day trends have days to show.
    days = 13
    step = timedelta(seconds=max(1, days * 86400 // orders))
    start = runtime.clock().replace(microsecond=0) - step * (orders - 1)
    payloads = generate_orders(store, orders, seed=2026, start=start, step=step)
    shop = store["shop"]
    cancels = payloads[12::25]  # every 25th order (from the 13th) is cancelled later
    base = f"http://{host}:{port}"
    with httpx.Client(base_url=base, timeout=10) as client, Progress(console=console) as bar:
        task = bar.add_task("signed orders/create webhooks", total=len(payloads) + len(cancels))
        for payload in payloads:
            send_webhook(client, shop, "orders/create", payload, secret).raise_for_status()
            bar.advance(task)
        for payload in cancels:
            later = dict(
                payload,
                cancelled_at=payload["created_at"],
                cancel_reason="customer",
                updated_at=payload["created_at"].replace("Z", ".5Z"),
                financial_status="voided",
            )
            send_webhook(client, shop, "orders/cancelled", later, secret).raise_for_status()
            bar.advance(task)
        while True:  # the inbox is drained after the responses: wait for it
            inbox = client.get("/v1/summary").json()["webhooks"]
            if not inbox.get("pending"):
                break
            time.sleep(0.1)
        review = demo_holds_and_return(client)
    with runtime.store.read() as conn:
        result = queries.summary(conn)
    _print_summary(console, result)
    console.print(
        f"Review queue: {review['held']} orders on hold (/holds); return {review['return_id']} "
        f"refunded {review['refunded']} (/returns/{review['return_id']})"
    )
    console.print(
        f"Dashboard: {base}/ — sign in as "
        + ", ".join(f"[bold]{u}[/] / [bold]{pw}[/] ({role})" for u, pw, role in logins)
    )
    if not stay:  # nothing listens once the demo returns: how to serve what it made
        url = shlex.quote(sqlite_url(database))
        console.print(
            f"Serve it: aoms serve --host {host} --port {port} --database-url {url}",
            soft_wrap=True,
            highlight=False,
            markup=False,  # a path is the user's words: brackets and all
        )
    if stay:
        console.print(
            f"Look at: {base}/docs (API), {base}/v1/orders, {base}/v1/orders/1 "
            f"(routing explained), {base}/v1/inventory, {base}/v1/summary"
        )
        console.print(f"The API is running on {base} — press Ctrl-C to stop.")
        try:
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            pass
    server.should_exit = True
    thread.join(10)
    runtime.close()
    return result


HOLDS = (
    ("manual_review", "the customer asked to change the delivery address"),
    ("manual_review", "a first order from a new customer: check the payment"),
    ("merchant_rule", "engraving: wait for the text"),
)


def demo_holds_and_return(client: httpx.Client) -> dict[str, Any]:
    """Through the API, as an operator would: hold three routed orders for review, and take
    one unit of another back (paid by gift card and card) to a closed return with its refund;
    a second return waits for review (damage without photos)."""
    routed = client.get("/v1/orders", params={"status": "routed", "limit": 20}).json()["items"]
    for order, (kind, reason) in zip(routed, HOLDS, strict=False):
        body = {"kind": kind, "reason": reason, "actor": "demo"}
        client.post(f"/v1/orders/{order['id']}/holds", json=body).raise_for_status()
    returned, damaged = routed[len(HOLDS)], routed[len(HOLDS) + 1]
    detail = client.get(f"/v1/orders/{returned['id']}").json()
    total = Decimal(detail["amounts"]["total"])
    gift = min(Decimal("10.00"), total)
    payments = [{"method": "gift_card", "amount": str(gift)}]
    if total > gift:
        payments.append({"method": "card", "amount": str(total - gift)})
    client.post(
        f"/v1/orders/{returned['id']}/payments", json={"payments": payments}
    ).raise_for_status()
    for order in (returned, damaged):
        client.post(f"/v1/orders/{order['id']}/delivered", json={}).raise_for_status()
    item = {"line_no": 1, "quantity": 1, "reason": "too_small"}
    opened = client.post("/v1/returns", json={"order_id": returned["id"], "items": [item]})
    opened.raise_for_status()
    return_id = opened.json()["id"]
    tracking = client.post(f"/v1/returns/{return_id}/label").json()["tracking_number"]
    client.post("/v1/returns/scans", json={"tracking_number": tracking}).raise_for_status()
    where = (detail["fulfilment_orders"] or detail["reservations"])[0]["location_id"]
    received = client.post(f"/v1/returns/{return_id}/receive", json={"location_id": where})
    received.raise_for_status()
    unit = {"item_id": received.json()["items"][0]["id"], "quantity": 1, "disposition": "restock"}
    closed = client.post(f"/v1/returns/{return_id}/inspect", json={"dispositions": [unit]})
    closed.raise_for_status()
    item = {"line_no": 1, "quantity": 1, "reason": "damaged"}
    client.post("/v1/returns", json={"order_id": damaged["id"], "items": [item]}).raise_for_status()
    refund = closed.json()["refund"]
    return {
        "held": min(len(routed), len(HOLDS)),
        "return_id": return_id,
        "refunded": f"{refund['total']} {refund['currency']}",
    }


def demo_users(runtime: Runtime) -> list[tuple[str, str, str]]:
    """An operator and a viewer for the dashboard, with fresh random passwords."""
    users = SqlUserStore(runtime.store)
    made = []
    for name, role in (("demo", Role.OPERATOR), ("viewer", Role.VIEWER)):
        password = secrets.token_urlsafe(12)
        users.add_user(name, password, role, runtime.clock())
        made.append((name, password, role.label))
    return made


def _print_summary(console: Console, s: dict[str, Any]) -> None:
    table = Table(title="What happened")
    table.add_column("measure")
    table.add_column("value", justify="right")
    by = s["by_status"]
    rows = [
        ("orders", s["orders"]),
        ("routed (all units reserved)", by.get("routed", 0)),
        ("backordered (some units short)", by.get("backordered", 0)),
        ("cancelled (stock released)", by.get("cancelled", 0)),
        ("unroutable (no address or rate card)", by.get("unroutable", 0)),
        ("split shipments", f"{s['split_orders']} ({s['split_shipment_rate']:.1%})"),
        ("backordered units", s["backordered_units"]),
        ("oversold units", s["oversold_units"]),
        ("webhooks", ", ".join(f"{k} {v}" for k, v in sorted(s["webhooks"].items()))),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
