"""The dashboard in a real browser: Debian's Chromium driven by Playwright against `aoms serve`
on the demo data. Screenshots of each main page go to $AOMS_SCREENSHOT_DIR (docs/screenshots
keeps the latest) or to a temporary folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from aoms.adapters.shopify.webhooks import sign
from tests.builders import shopify_payload
from tests.conftest import _skip_or_fail
from tests.e2e.test_serve_and_demo import free_port

AOMS = [sys.executable, "-m", "aoms.entrypoints.cli"]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "browser-e2e-secret-42"
SHOP = "demo-outdoor.myshopify.com"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]


@dataclass
class Site:
    base: str
    logins: dict[str, str]  # username -> password
    shots: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not Path(CHROMIUM).exists():
        _skip_or_fail(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does)")
    tmp = tmp_path_factory.mktemp("dashboard")
    db = tmp / "demo.db"
    env = os.environ | {"COLUMNS": "250"}
    demo = subprocess.run(
        [
            *AOMS,
            "demo",
            "--orders",
            "90",
            "--port",
            str(free_port()),
            "--no-stay",
            "--database",
            str(db),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert demo.returncode == 0, demo.stderr
    logins = dict(re.findall(r"(\w+) / (\S+) \((?:operator|viewer)\)", demo.stdout))
    assert set(logins) == {"demo", "viewer"}, demo.stdout
    port = free_port()
    proc = subprocess.Popen(
        [*AOMS, "serve", "--port", str(port)],
        env=env
        | {
            "AOMS_DATABASE_URL": f"sqlite:///{db}",
            "AOMS_SHOPIFY_WEBHOOK_SECRET": SECRET,
            "AOMS_WORKER_POLL_SECONDS": "0.05",
            "AOMS_REPORTS_DIR": str(ROOT / "docs" / "policy-lab"),
        },
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
    shots = Path(os.environ.get("AOMS_SCREENSHOT_DIR") or tmp / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    yield Site(base, logins, shots)
    proc.send_signal(signal.SIGINT)
    proc.wait(15)


@pytest.fixture(scope="module")
def browser_context(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed (pip install -e '.[dev]')")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a new, empty user-data dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
            base_url=site.base,
        )
        context.set_default_timeout(15_000)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    browser_context.clear_cookies()
    pg = browser_context.new_page()
    yield pg
    pg.close()


def sign_in(page: Any, site: Site, user: str) -> None:
    page.goto("/")
    assert "/login" in page.url  # every page needs a signed-in user
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(site.logins[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def api(site: Site, path: str) -> Any:
    return httpx.get(site.base + path, timeout=10).json()


def shot(page: Any, site: Site, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(site.shots / f"{name}.png"), full_page=full_page)


def test_a_wrong_password_is_refused(page: Any, site: Site) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill("viewer")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    assert page.context.cookies() == [] or all(
        c["name"] != "aoms_session" for c in page.context.cookies()
    )


def test_the_overview_shows_the_apis_numbers_with_charts(page: Any, site: Site) -> None:
    sign_in(page, site, "viewer")
    summary = api(site, "/v1/summary")
    kpi = {
        k: page.locator(f'[data-kpi="{k}"]').inner_text()
        for k in ("orders", "routed", "backordered", "split_shipment_rate", "oversold_units")
    }
    assert kpi["orders"] == str(summary["orders"]) == "90"
    assert kpi["routed"] == str(summary["by_status"].get("routed", 0))
    assert kpi["backordered"] == str(summary["by_status"].get("backordered", 0))
    assert kpi["split_shipment_rate"] == f"{summary['split_shipment_rate']:.1%}"
    assert kpi["oversold_units"] == "0"
    # On hold: the orders of the API's open holds (the demo holds three for review).
    held = {h["order_id"] for h in api(site, "/v1/holds?status=open&limit=500")["items"]}
    assert page.locator('[data-kpi="on_hold"]').inner_text() == str(len(held)) == "3"
    # The demo places its orders over the last 14 days: the day rows add up to all of them.
    page.get_by_text("The numbers behind the charts").click()
    rows = page.locator("details tbody tr").all()
    assert len(rows) == 14
    assert sum(int(r.locator("td").nth(0).inner_text()) for r in rows) == 90
    # Chart.js drew on every canvas (a drawn canvas has a non-zero size and a chart on it).
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('canvas')].map(c => !!Chart.getChart(c))"
    )
    assert drawn == [True, True, True]
    shot(page, site, "overview")


def test_an_order_page_explains_its_routing_like_the_api(page: Any, site: Site) -> None:
    sign_in(page, site, "viewer")
    page.get_by_role("link", name="Orders").click()
    first = page.locator("#order-rows th a").first
    name = first.inner_text()
    first.click()
    page.wait_for_url(re.compile(r"/orders/\d+$"))
    order_id = int(page.url.rsplit("/", 1)[1])
    detail = api(site, f"/v1/orders/{order_id}")
    assert detail["name"] == name
    decision = detail["routing"][-1]
    assert page.get_by_test_id("explanation").inner_text() == decision["explanation"]
    assert page.get_by_test_id("cost").inner_text() == f"{float(decision['cost']):,.2f} USD"
    shipped = {s["location_id"] for s in decision["chosen"]["shipments"]}
    assert page.locator("svg.map .spot.chosen").count() == len(shipped)
    assert page.locator("svg.map .dest").count() == 1
    assert page.locator(".timeline li").count() >= 2  # the webhook and order.received at least
    assert page.get_by_role("button", name=re.compile("Route again")).count() == 0  # a viewer
    shot(page, site, "order")


def _backordered(site: Site) -> dict[str, Any]:
    items = api(site, "/v1/orders?status=backordered")["items"]
    assert items, "the demo leaves some orders backordered"
    return dict(items[-1])


def test_a_viewer_cannot_route_an_order_again(page: Any, site: Site) -> None:
    order = _backordered(site)
    before = len(api(site, f"/v1/orders/{order['id']}")["routing"])
    sign_in(page, site, "viewer")
    page.goto(f"/orders/{order['id']}")
    assert "can look but not act" in page.inner_text("main")
    # The form is not offered; sent anyway (with the session's own CSRF token), it is refused.
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    answer = page.request.post(f"/orders/{order['id']}/route", form={"csrf_token": token})
    assert answer.status == 403
    assert "may not route an order again" in answer.text()
    assert len(api(site, f"/v1/orders/{order['id']}")["routing"]) == before


def test_an_operator_routes_a_backordered_order_again(page: Any, site: Site) -> None:
    order = _backordered(site)
    before = len(api(site, f"/v1/orders/{order['id']}")["routing"])
    sign_in(page, site, "demo")
    page.goto(f"/orders/{order['id']}")
    page.get_by_role("button", name="Route again on today's stock").click()
    assert page.get_by_role("status").inner_text().startswith("Routed again: the order is")
    assert len(api(site, f"/v1/orders/{order['id']}")["routing"]) == before + 1


def test_a_form_without_the_csrf_token_is_refused(page: Any, site: Site) -> None:
    sign_in(page, site, "demo")
    level = api(site, "/v1/inventory")["items"][0]
    answer = page.request.post(
        "/stock/adjust",
        form={
            "sku": level["sku"],
            "location_id": level["location_id"],
            "delta": "5",
            "csrf_token": "forged",
        },
    )
    assert answer.status == 403
    now = api(site, f"/v1/inventory?sku={level['sku']}&location_id={level['location_id']}")
    assert now["items"][0]["on_hand"] == level["on_hand"]


def test_stock_shows_the_apis_levels_and_an_operator_adjusts(page: Any, site: Site) -> None:
    sign_in(page, site, "demo")
    page.get_by_role("link", name="Stock").click()
    levels = api(site, "/v1/inventory")["items"]
    shown = page.get_by_test_id("available").all_inner_texts()
    assert len(shown) == 50 and shown == [str(x["available"]) for x in levels[:50]]
    first_page = levels[: len(shown)]
    low = sum(1 for x in first_page if x["available"] <= 0 or x["available"] <= x["safety_stock"])
    assert page.locator("tbody tr.low").count() == low
    shot(page, site, "stock")
    target = levels[0]
    page.get_by_label("SKU", exact=True).fill(target["sku"])
    page.get_by_label("Location").nth(1).select_option(target["location_id"])
    page.get_by_label("Change (units, + or −)").fill("7")
    page.get_by_role("button", name="Apply").click()
    assert f"on hand {target['on_hand'] + 7}" in page.get_by_role("status").inner_text()
    after = api(site, f"/v1/inventory?sku={target['sku']}&location_id={target['location_id']}")
    assert after["items"][0]["on_hand"] == target["on_hand"] + 7


def _open_holds(site: Site) -> list[dict[str, Any]]:
    items = api(site, "/v1/holds?status=open")["items"]
    assert items, "the demo leaves orders on hold"
    return list(items)


def test_the_review_queue_shows_the_apis_holds_and_a_viewer_cannot_release(
    page: Any, site: Site
) -> None:
    held = _open_holds(site)
    sign_in(page, site, "viewer")
    page.get_by_role("link", name="Review queue").click()
    page.wait_for_url(re.compile(r"/holds$"))
    rows = page.locator("tbody tr[data-hold]")
    assert [int(x) for x in rows.evaluate_all("rs => rs.map(r => r.dataset.hold)")] == [
        h["id"] for h in held
    ]
    assert rows.first.locator("th a").inner_text() == held[0]["order_name"]
    assert page.get_by_role("button", name="Release").count() == 0  # not offered to a viewer
    shot(page, site, "holds")
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    target = held[0]
    answer = page.request.post(
        f"/holds/{target['id']}/release", form={"csrf_token": token, "note": "looks fine"}
    )
    assert answer.status == 403
    assert "may not release a hold" in answer.text()
    assert api(site, f"/v1/holds/{target['id']}")["status"] == "open"


def test_an_operator_releases_a_hold_in_the_browser(page: Any, site: Site) -> None:
    target = _open_holds(site)[0]
    sign_in(page, site, "demo")
    page.goto("/holds")
    row = page.locator(f'tr[data-hold="{target["id"]}"]')
    row.get_by_label(f"Note for releasing hold {target['id']}").fill("address confirmed")
    row.get_by_role("button", name="Release").click()
    assert page.get_by_role("status").inner_text().startswith("Released the manual review hold")
    got = api(site, f"/v1/holds/{target['id']}")
    assert (got["status"], got["resolved_by"], got["note"]) == (
        "released",
        "dashboard:demo",
        "address confirmed",
    )
    assert page.locator(f'tr[data-hold="{target["id"]}"]').count() == 0  # off the queue
    life = api(site, f"/v1/orders/{target['order_id']}/lifecycle")
    page.goto(f"/orders/{target['order_id']}")
    assert page.get_by_test_id("lifecycle-state").inner_text() == life["state"].replace("_", " ")


def _usd(amount: str) -> str:
    return f"{Decimal(amount):,.2f} USD"


def test_a_return_page_shows_the_apis_refund(page: Any, site: Site) -> None:
    closed = api(site, "/v1/returns?status=closed")["items"]
    assert closed, "the demo leaves a refunded return"
    ret = api(site, f"/v1/returns/{closed[0]['id']}")
    refund = ret["refund"]
    sign_in(page, site, "viewer")
    page.get_by_role("link", name="Returns").click()
    page.get_by_role("link", name=f"Return {ret['id']}", exact=True).click()
    page.wait_for_url(re.compile(rf"/returns/{ret['id']}$"))
    assert page.get_by_test_id("refund-total").inner_text() == _usd(refund["total"])
    assert page.get_by_test_id("refund-items").inner_text() == _usd(refund["items"])
    assert page.get_by_test_id("refund-shipping").inner_text() == _usd(refund["shipping"])
    lines = page.get_by_test_id("line-total").all_inner_texts()
    assert lines == [_usd(x["total"]) for x in refund["lines"]]
    paid = page.get_by_test_id("payment-amount").all_inner_texts()
    assert paid == [_usd(p["amount"]) for p in refund["payments"]]
    assert len(paid) == 2  # the gift card first, then the card
    assert sum(Decimal(p["amount"]) for p in refund["payments"]) == Decimal(refund["total"])
    assert page.get_by_test_id("tracking").inner_text() == ret["tracking_number"]
    shot(page, site, "return")


def test_the_order_list_updates_as_a_webhook_arrives(page: Any, site: Site) -> None:
    sign_in(page, site, "viewer")
    page.goto("/orders")
    payload = shopify_payload(820982911946999001, lines=[("SKU-001", 1, "24.00")])
    payload["name"] = "#LIVE-1"
    payload["shipping_address"].update(name="Ada Live", latitude=40.75, longitude=-73.99)
    body = json.dumps(payload).encode()
    ack = httpx.post(
        site.base + "/webhooks/shopify",
        content=body,
        timeout=10,
        headers={
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Hmac-Sha256": sign(body, SECRET),
            "X-Shopify-Webhook-Id": "live-1",
        },
    )
    assert ack.json() == {"status": "accepted"}
    # No reload: htmx polls the rows and the new order appears at the top.
    page.locator("#order-rows th a").first.filter(has_text=payload["name"]).wait_for()
    shot(page, site, "orders", full_page=False)
    page.get_by_label("Search").fill("Ada Live")
    page.get_by_role("button", name="Show").click()
    assert page.locator("#order-rows th a").all_inner_texts() == [payload["name"]]


def test_keyboard_and_tablet_width(page: Any, site: Site) -> None:
    sign_in(page, site, "viewer")
    page.set_viewport_size({"width": 820, "height": 1180})
    page.goto("/orders")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0  # nothing wider than a tablet's screen
    for field in page.locator("main input:not([type=hidden]), main select").all():
        label = field.evaluate("e => e.labels.length ? e.labels[0].textContent : ''")
        assert label.strip(), "every form field has a label"
    shot(page, site, "tablet-orders", full_page=False)
    for path in ("/holds", "/returns", "/returns/1"):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, path
    page.goto("/lab")
    assert page.get_by_role("link", name="synthetic-1000.html").count() == 1
    shot(page, site, "lab")
