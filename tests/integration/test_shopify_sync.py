"""Shopify sync end to end: ATS pushed with compare-and-set, and reconciliation after
dropped webhooks; on SQLite and PostgreSQL, against the fake Shopify over real HTTP."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from aoms.adapters.db import schema as t
from aoms.adapters.db.shopify import SqlShopifyStore
from aoms.adapters.shopify.admin import ShopifyAdminClient
from aoms.adapters.shopify.graphql_orders import parse_graphql_order
from aoms.adapters.shopify.webhooks import sign
from aoms.bootstrap import Runtime
from aoms.domain.errors import InvalidInput, UnknownLocation
from aoms.domain.events import Event
from aoms.entrypoints.api.app import create_app
from aoms.services.shopify_reconcile import reconcile_orders
from aoms.services.shopify_sync import push_inventory
from tests.builders import T0, later, network, shopify_payload
from tests.conftest import SECRET
from tests.fakes.shopify_admin import FakeShopifyAdmin, gid

SHOP = "shop.myshopify.com"
TOKEN = "shpat_test_token"


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    shopify = FakeShopifyAdmin(restore_rate=100_000.0, bucket=2000.0)
    shopify.start()
    yield shopify
    shopify.stop()


@pytest.fixture
def admin(fake: FakeShopifyAdmin) -> Iterator[ShopifyAdminClient]:
    with ShopifyAdminClient(SHOP, TOKEN, base_url=fake.base_url) as client:
        yield client


def set_stock(runtime: Runtime, sku: str, location: str, on_hand_delta: int) -> None:
    with runtime.store.transaction() as tx:
        tx.change_stock(sku, location, on_hand=on_hand_delta, reason="count", reference="t", now=T0)


def mapped_store(runtime: Runtime, fake: FakeShopifyAdmin) -> SqlShopifyStore:
    """SKUs X, Y, Z at locations a (stock 10, 4, 0) and b (6, 0, 1); c serves another store.
    Shopify starts at 5 everywhere."""
    network(
        runtime.engine,
        {("X", "a"): 10, ("X", "b"): 6, ("Y", "a"): 4, ("Z", "b"): 1, ("X", "c"): 50},
    )
    repo = SqlShopifyStore(runtime.store)
    repo.map_locations(SHOP, {"a": gid("Location", 1), "b": gid("Location", 2)})
    repo.map_items(SHOP, {s: gid("InventoryItem", n) for n, s in enumerate("XYZ", 1)})
    repo.set_buffer(SHOP, 3, T0)
    for n in (1, 2, 3):
        for location in (1, 2):
            fake.stock(gid("InventoryItem", n), gid("Location", location), 5)
    return repo


def shown(fake: FakeShopifyAdmin) -> dict[tuple[str, int], int]:
    return {
        ("XYZ"[int(i.rsplit("/", 1)[1]) - 1], int(loc.rsplit("/", 1)[1])): n
        for (i, loc), n in fake.levels.items()
    }


def test_ats_minus_the_buffer_is_pushed_and_only_what_changed_is_sent_again(
    runtime: Runtime, fake: FakeShopifyAdmin, admin: ShopifyAdminClient
) -> None:
    repo = mapped_store(runtime, fake)
    first = push_inventory(repo, admin, SHOP, now=T0)
    # X: 10 + 6 − 3 = 13, the buffer off a (the fullest): a 7, b 6. Y: 4 − 3 = 1 at a.
    # Z: 1 − 3 < 0: 0. Location c does not serve the store.
    assert shown(fake) == {
        ("X", 1): 7,
        ("X", 2): 6,
        ("Y", 1): 1,
        ("Y", 2): 0,
        ("Z", 1): 0,
        ("Z", 2): 0,
    }
    assert (first.targets, first.read_back, first.changed, first.pushed, first.calls) == (
        6,
        6,
        6,
        6,
        1,
    )
    again = push_inventory(repo, admin, SHOP, now=later(1))
    assert (again.changed, again.calls) == (0, 0)

    set_stock(runtime, "Y", "b", 5)  # Y: 4 + 5 − 3 = 6; b has more now: a 4, b 2
    third = push_inventory(repo, admin, SHOP, now=later(2))
    assert (third.changed, third.pushed, third.calls) == (2, 2, 1)
    assert shown(fake)[("Y", 1)] == 4 and shown(fake)[("Y", 2)] == 2
    with runtime.store.read() as conn:
        names = conn.execute(select(t.outbox.c.name).order_by(t.outbox.c.id)).scalars().all()
    assert names.count("shopify.inventory_pushed") == 2
    assert names.count("shopify.inventory_read") == 1


def test_a_compare_failure_is_read_back_and_sent_again(
    runtime: Runtime, fake: FakeShopifyAdmin, admin: ShopifyAdminClient
) -> None:
    repo = mapped_store(runtime, fake)
    push_inventory(repo, admin, SHOP, now=T0)
    # A sale on Shopify takes X at a from 7 to 6 before aoms hears of it; then stock arrives.
    fake.stock(gid("InventoryItem", 1), gid("Location", 1), 6)
    set_stock(runtime, "X", "a", 4)  # X: 14 + 6 − 3 = 17: a 11, b 6
    report = push_inventory(repo, admin, SHOP, now=later(1))
    assert (report.stale, report.read_back, report.calls, report.pushed) == (1, 1, 2, 1)
    assert shown(fake)[("X", 1)] == 11 and shown(fake)[("X", 2)] == 6
    assert repo.known(SHOP)[("X", "a")] == 11


def test_an_unknown_location_or_a_bad_id_is_refused(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 1})
    repo = SqlShopifyStore(runtime.store)
    with pytest.raises(UnknownLocation):
        repo.map_locations(SHOP, {"nowhere": gid("Location", 1)})
    with pytest.raises(InvalidInput):
        repo.map_items(SHOP, {"X": "12345"})
    with pytest.raises(InvalidInput):
        repo.set_buffer(SHOP, -1, T0)


def post_webhook(
    client: TestClient, payload: dict[str, Any], webhook_id: str, topic: str = "orders/create"
) -> None:
    raw = json.dumps(payload).encode()
    answer = client.post(
        "/webhooks/shopify",
        content=raw,
        headers={
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Hmac-Sha256": sign(raw, SECRET),
            "X-Shopify-Webhook-Id": webhook_id,
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text


def test_reconciliation_finds_every_order_the_webhooks_missed_and_duplicates_none(
    runtime: Runtime, fake: FakeShopifyAdmin, admin: ShopifyAdminClient
) -> None:
    network(runtime.engine, {("X", "a"): 500, ("Y", "b"): 500})
    rng = random.Random(4)
    orders = [
        shopify_payload(
            7000 + n,
            lines=[("X", rng.randint(1, 3), "10.00"), ("Y", 1, "4.50")],
            updated_at=later(n),
        )
        for n in range(60)
    ]
    dropped = set(rng.sample([n for n in range(60) if n != 10], 3))  # 5% never arrive
    # One order was cancelled on Shopify later, and that orders/cancelled webhook was lost.
    cancelled = dict(
        orders[10], updated_at=later(90).isoformat(), cancelled_at=later(90).isoformat()
    )
    with TestClient(create_app(runtime, migrate_on_start=False)) as client:
        for n, payload in enumerate(orders):
            fake.put_order(payload)
            if n not in dropped:
                post_webhook(client, payload, f"w-{n}")
        fake.put_order(cancelled)
        runtime.process_inbox()

    report = reconcile_orders(
        runtime.store,
        admin.orders_updated_since(T0),
        SHOP,
        T0,
        parse=parse_graphql_order,
        geocode=runtime.geocode,
        clock=runtime.clock,
    )
    assert sorted(report.created) == sorted(str(7000 + n) for n in dropped)
    assert report.updated == [str(7010)]
    assert (report.seen, report.unchanged, report.failed) == (60, 56, [])
    with runtime.store.read() as conn:
        count = conn.execute(select(func.count()).select_from(t.orders)).scalar_one()
        statuses = dict(conn.execute(select(t.orders.c.external_id, t.orders.c.status)).all())
        reserved = conn.execute(
            select(func.sum(t.stock_levels.c.reserved)).where(t.stock_levels.c.sku == "X")
        ).scalar_one()
    assert count == 60 and len(statuses) == 60
    assert statuses["7010"] == "cancelled"
    expected_x = sum(o["line_items"][0]["quantity"] for n, o in enumerate(orders) if n != 10)
    assert reserved == expected_x  # every order reserved once, the cancelled one released

    again = reconcile_orders(
        runtime.store,
        admin.orders_updated_since(T0),
        SHOP,
        T0,
        parse=parse_graphql_order,
        geocode=runtime.geocode,
        clock=runtime.clock,
    )
    assert (again.created, again.updated, again.unchanged) == ([], [], 60)
    assert report.newest_update == later(90)


def test_the_api_maps_pushes_and_reconciles(runtime: Runtime, fake: FakeShopifyAdmin) -> None:

    network(runtime.engine, {("X", "a"): 9})
    fake.stock(gid("InventoryItem", 1), gid("Location", 1), 0)
    fake.put_order(shopify_payload(88, lines=[("X", 1, "10.00")]))
    runtime.settings = runtime.settings.model_copy(
        update={
            "shopify_admin_tokens": {SHOP: SecretStr(TOKEN)},
            "shopify_admin_url": fake.base_url,
        }
    )
    with TestClient(create_app(runtime, migrate_on_start=False)) as client:
        mapped = client.put(
            f"/v1/shops/{SHOP}/shopify/mapping",
            json={
                "locations": {"a": gid("Location", 1)},
                "skus": {"X": gid("InventoryItem", 1)},
                "ats_buffer": 1,
            },
        )
        assert mapped.json() == {"shop": SHOP, "locations": 1, "skus": 1, "ats_buffer": 1}
        assert client.post(f"/v1/shops/{SHOP}/shopify/inventory/push").json()["pushed"] == 1
        assert fake.levels[(gid("InventoryItem", 1), gid("Location", 1))] == 8
        report = client.post(
            f"/v1/shops/{SHOP}/shopify/reconcile", json={"since": T0.isoformat()}
        ).json()
        assert (report["created"], report["created_ids"]) == (1, ["88"])
        bad = client.put(f"/v1/shops/{SHOP}/shopify/mapping", json={"skus": {"X": "41"}})
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"
        other = client.post("/v1/shops/other.myshopify.com/shopify/inventory/push")
        assert other.status_code == 422 and other.json()["code"] == "shopify_not_configured"


def test_the_workers_push_what_changed_on_their_own_clock(
    runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    mapped_store(runtime, fake)
    runtime.settings = runtime.settings.model_copy(
        update={"shopify_admin_tokens": {SHOP: SecretStr(TOKEN)},
                "shopify_admin_url": fake.base_url, "shopify_push_seconds": 3600}
    )  # fmt: skip
    (first,) = runtime.push_due_inventory()
    assert (first["shop"], first["pushed"]) == (SHOP, 6)
    assert shown(fake)[("X", 1)] == 7
    set_stock(runtime, "X", "a", 4)  # X: 14 + 6 − 3 = 17: a 11, b 6
    assert runtime.push_due_inventory() == []  # not due for an hour
    runtime.shopify_pushed[SHOP] -= 3600
    (second,) = runtime.push_due_inventory()
    assert (second["changed"], second["pushed"]) == (1, 1)
    assert shown(fake)[("X", 1)] == 11


def test_after_aoms_s_events_the_workers_push_soon_without_waiting_for_their_clock(
    runtime: Runtime, fake: FakeShopifyAdmin
) -> None:
    mapped_store(runtime, fake)
    runtime.settings = runtime.settings.model_copy(
        update={"shopify_admin_tokens": {SHOP: SecretStr(TOKEN)},
                "shopify_admin_url": fake.base_url, "shopify_push_seconds": 3600,
                "shopify_push_after_change_seconds": 0}
    )  # fmt: skip
    while runtime.relay_events():  # the setup's own events
        pass
    assert [r["pushed"] for r in runtime.push_due_inventory()] == [6]
    # A count with its event (as every stock change in aoms writes one).
    with runtime.store.transaction() as tx:
        tx.change_stock("X", "a", on_hand=4, reason="count", reference="t", now=T0)
        tx.emit([Event("stock.adjusted", "stock:X@a", {"sku": "X"})], T0)
    assert runtime.push_due_inventory() == []  # not relayed yet: nothing says it changed
    runtime.relay_events()
    (pushed,) = runtime.push_due_inventory()
    assert (pushed["changed"], pushed["pushed"]) == (1, 1)
    assert shown(fake)[("X", 1)] == 11  # X: 14 + 6 − 3 = 17 over a and b: a 11, b 6
    assert runtime.push_due_inventory() == []  # nothing relayed since: back to the hour
