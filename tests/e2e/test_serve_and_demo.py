"""The real thing over real HTTP: `aoms serve` and `aoms demo` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aoms.adapters.shopify.webhooks import sign
from tests.builders import shopify_payload

AOMS = [sys.executable, "-m", "aoms.entrypoints.cli"]
SECRET = "e2e-secret-value-123"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = os.environ | {
        "AOMS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "AOMS_SHOPIFY_WEBHOOK_SECRET": SECRET,
        "AOMS_WORKER_POLL_SECONDS": "0.05",
    }
    proc = subprocess.Popen(
        [*AOMS, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/ready").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(proc.stdout.read().decode() if proc.stdout else "no output")
        time.sleep(0.1)
    yield base
    proc.send_signal(signal.SIGINT)
    proc.wait(15)


def test_serve_migrates_an_empty_database_and_routes_signed_webhooks(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as c:
        c.put(
            "/v1/shops/shop.myshopify.com",
            json={"routing_policy": "landed_cost", "currency": "USD"},
        ).raise_for_status()
        c.put(
            "/v1/rate-cards/USD",
            json={
                "distance_km": [500, 5000],
                "weight_g": [1000, 5000],
                "prices": [["5.00", "7.00"], ["9.00", "12.00"]],
            },
        ).raise_for_status()
        c.put(
            "/v1/locations/a",
            json={
                "name": "A",
                "lat": 0.0,
                "lng": 10.2,
                "country_code": "US",
                "handling_cost": "1.00",
                "currency": "USD",
            },
        ).raise_for_status()
        c.post(
            "/v1/inventory/adjustments",
            json={"sku": "X", "location_id": "a", "delta": 3, "reason": "receipt"},
        ).raise_for_status()
        body = json.dumps(shopify_payload(820982911946154508, lines=[("X", 2, "10.00")])).encode()
        ack = c.post(
            "/webhooks/shopify",
            content=body,
            headers={
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Shop-Domain": "shop.myshopify.com",
                "X-Shopify-Hmac-Sha256": sign(body, SECRET),
                "X-Shopify-Webhook-Id": "e2e-1",
            },
        )
        assert ack.json() == {"status": "accepted"}
        for _ in range(100):  # processed after the response, by the in-process worker
            items = c.get("/v1/orders").json()["items"]
            if items:
                break
            time.sleep(0.05)
        detail = c.get(f"/v1/orders/{items[0]['id']}").json()
        assert detail["status"] == "routed"
        assert detail["routing"][0]["cost"] == "6.00"  # 22 km, 1000 g: 5.00 + 1.00 handling
        assert c.get("/v1/inventory").json()["items"][0]["available"] == 1
        assert "/webhooks/shopify" in c.get("/openapi.json").json()["paths"]


def test_demo_sends_webhooks_through_the_api_and_reports(tmp_path: Path) -> None:
    port = free_port()
    done = subprocess.run(
        [
            *AOMS,
            "demo",
            "--orders",
            "80",
            "--port",
            str(port),
            "--no-stay",
            "--database",
            str(tmp_path / "demo.db"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ | {"COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "What happened" in out
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in out.splitlines()
        if line.count("│") == 3
    }
    assert rows["orders"] == "80"
    assert rows["oversold units"] == "0"
    assert int(rows["cancelled (stock released)"]) == 3  # every 25th of 80 from #12: 12, 37, 62
    routed, backordered = (
        int(rows["routed (all units reserved)"]),
        int(rows["backordered (some units short)"]),
    )
    assert routed + backordered + 3 == 80
