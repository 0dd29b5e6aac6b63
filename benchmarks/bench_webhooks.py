"""Signed Shopify webhooks → routed orders, through the real HTTP API (`aoms serve`).

Starts `aoms serve` in its own process on SQLite or PostgreSQL with the demo store loaded,
then sends signed `orders/create` webhooks open-loop at a fixed rate (default 200/s) and
measures:
* acknowledgement latency p50/p99 (send → 200), against a baseline measured in the same run:
  GET /health at the same rate (the framework's floor on this machine);
* routed orders per second: deliveries processed by the in-process inbox worker, from the
  first send until the inbox is empty.

    .venv/bin/python benchmarks/bench_webhooks.py --db sqlite|postgres [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aoms.adapters.db import migrate, setup
from aoms.adapters.db.engine import make_engine
from aoms.adapters.shopify.webhooks import sign
from aoms.bootstrap import utc_now
from aoms.demo.orders import demo_store, generate_orders

SECRET = "bench-secret-0123456789"
PG = os.environ.get("AOMS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_loop(base: str, make: Any, count: int, rate: float, workers: int = 6) -> list[float]:
    """Send `count` requests on a fixed schedule of `rate`/s from `workers` threads with
    keep-alive connections. Latency runs from the scheduled send time, so a client or server
    that falls behind shows up in the numbers instead of slowing the schedule down."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def worker(k: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            for i in range(k, count, workers):
                due = start + i / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                make(client, i).raise_for_status()
                with lock:
                    latencies.append((time.perf_counter() - due) * 1000)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return latencies


def run(base: str, rate: float, seconds: float) -> dict[str, Any]:
    store = demo_store()
    count = int(rate * seconds)
    bodies = [json.dumps(p).encode() for p in generate_orders(store, count, seed=99)]
    open_loop(base, lambda c, i: c.get("/health"), 100, rate)  # warm up connections and code
    health = open_loop(base, lambda c, i: c.get("/health"), count, rate)

    def webhook(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(
            "/webhooks/shopify",
            content=bodies[i],
            headers={
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Shop-Domain": store["shop"],
                "X-Shopify-Hmac-Sha256": sign(bodies[i], SECRET),
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "Content-Type": "application/json",
            },
        )

    started = time.perf_counter()
    acks = open_loop(base, webhook, count, rate)
    sent_for = time.perf_counter() - started
    while True:
        summary = httpx.get(f"{base}/v1/summary").json()
        if not summary["webhooks"].get("pending"):
            break
        time.sleep(0.05)
    drained = time.perf_counter() - started
    return {
        "webhooks": count,
        "rate": rate,
        "send_seconds": round(sent_for, 2),
        "ack_p50_ms": round(pct(acks, 50), 1),
        "ack_p99_ms": round(pct(acks, 99), 1),
        "health_p50_ms": round(pct(health, 50), 1),
        "health_p99_ms": round(pct(health, 99), 1),
        "routed_orders": summary["orders"],
        "oversold_units": summary["oversold_units"],
        "orders_per_second_end_to_end": round(summary["orders"] / drained, 1),
        "drain_lag_seconds": round(drained - sent_for, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--workers",
        choices=["separate", "in-process"],
        default="separate",
        help="separate: `aoms serve --no-workers` + `aoms worker`; in-process: `aoms serve`",
    )
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="aoms-bench-")
    admin = None
    if args.db == "sqlite":
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
    else:
        name = f"aoms_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(PG), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        # Plenty of stock: this measures throughput, not backorders.
        store = demo_store()
        for s in store["stock"]:
            s["on_hand"] = 1_000_000
        setup.load_store(conn, store, utc_now())
    engine.dispose()
    port = free_port()
    env = os.environ | {
        "AOMS_DATABASE_URL": url,
        "AOMS_SHOPIFY_WEBHOOK_SECRET": SECRET,
        "AOMS_WORKER_POLL_SECONDS": "0.02",
        "AOMS_LOG_LEVEL": "WARNING",
        "AOMS_RUN_WORKERS": os.environ.get("AOMS_RUN_WORKERS", "true"),
    }
    cli = [sys.executable, "-m", "aoms.entrypoints.cli"]
    serve = [*cli, "serve", "--port", str(port)]
    commands = (
        [[*serve, "--no-workers"], [*cli, "worker"]] if args.workers == "separate" else [serve]
    )
    procs = [
        subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for c in commands
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        before = {p.pid: cpu_seconds(p.pid) for p in procs}
        client_before = time.process_time()
        result = run(base, args.rate, args.seconds)
        result["cpu_seconds"] = {
            " ".join(c[3:5]): round(cpu_seconds(p.pid) - before[p.pid], 1)
            for c, p in zip(commands, procs, strict=True)
        } | {"load generator": round(time.process_time() - client_before, 1)}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    result["db"] = args.db
    result["workers"] = args.workers
    result["ack_p99_over_health_p99"] = round(result["ack_p99_ms"] / result["health_p99_ms"], 2)
    print(json.dumps(result, indent=2))
    ok = result["ack_p99_ms"] < 100 and result["oversold_units"] == 0
    print(
        f"ack p99 {result['ack_p99_ms']} ms at {args.rate:.0f}/s on {args.db}: "
        f"{'under' if ok else 'NOT under'} the 100 ms floor"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
