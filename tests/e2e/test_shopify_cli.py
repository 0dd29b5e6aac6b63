"""`aoms shopify …` end to end on a SQLite file, against the fake Shopify over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aoms.adapters.db import setup
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.migrate import upgrade
from aoms.adapters.db.store import SqlTx
from aoms.domain.errors import ShopifyNotConfigured
from aoms.domain.money import Money
from aoms.domain.routing import Policy
from aoms.entrypoints.cli import app
from tests.builders import CARD, T0, later, shopify_payload
from tests.fakes.shopify_admin import FakeShopifyAdmin, gid

SHOP = "cli.myshopify.com"


def test_map_buffer_push_and_reconcile_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aoms.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        setup.upsert_shop(conn, SHOP, Policy.LANDED_COST, "USD", T0)
        setup.set_rate_card(conn, CARD, T0)
        setup.upsert_location(
            conn,
            id="nwk",
            name="Newark",
            lat=0.0,
            lng=10.4,
            country_code="US",
            handling=Money.of("1.50", "USD"),
            now=T0,
        )
        SqlTx(conn, "sqlite").change_stock(
            "X", "nwk", on_hand=12, reason="count", reference="t", now=T0
        )
    engine.dispose()
    fake = FakeShopifyAdmin(shop=SHOP, restore_rate=100_000.0)
    fake.stock(gid("InventoryItem", 41), gid("Location", 9), 0)
    fake.put_order(shopify_payload(501, lines=[("X", 2, "10.00")], updated_at=later(5)))
    skus = tmp_path / "skus.csv"
    skus.write_text("sku,inventory_item_id\nX,gid://shopify/InventoryItem/41\n")
    runner = CliRunner()
    with fake.running() as base:
        env = {
            "AOMS_DATABASE_URL": url,
            "AOMS_SHOPIFY_ADMIN_TOKENS": json.dumps({SHOP: fake.token}),
            "AOMS_SHOPIFY_ADMIN_URL": base,
        }

        def run(*args: str) -> str:
            result = runner.invoke(app, ["shopify", *args], env=env)
            assert result.exit_code == 0, result.output
            return result.stdout

        run("map-locations", "--shop", SHOP, "nwk=gid://shopify/Location/9")
        run("map-skus", "--shop", SHOP, str(skus))
        run("set-buffer", "--shop", SHOP, "2")
        pushed = json.loads(run("push-inventory", "--shop", SHOP, "--json"))
        assert (pushed["pushed"], pushed["calls"]) == (1, 1)
        assert fake.levels[(gid("InventoryItem", 41), gid("Location", 9))] == 10  # 12 − 2

        report = json.loads(run("reconcile", "--shop", SHOP, "--since", T0.isoformat(), "--json"))
        assert (report["created"], report["unchanged"], report["created_ids"]) == (1, 0, ["501"])
        again = run("reconcile", "--shop", SHOP, "--since", "2026-11-02T12:00:00Z")
        assert "0 created, 0 updated, 1 unchanged" in again

        # The order reserved 2 of X: the store now shows 12 − 2 − 2 = 8.
        assert json.loads(run("push-inventory", "--shop", SHOP, "--json"))["pushed"] == 1
        assert fake.levels[(gid("InventoryItem", 41), gid("Location", 9))] == 8

    unconfigured = runner.invoke(
        app,
        ["shopify", "push-inventory", "--shop", "other.myshopify.com"],
        env={"AOMS_DATABASE_URL": url},
    )
    assert isinstance(unconfigured.exception, ShopifyNotConfigured)
