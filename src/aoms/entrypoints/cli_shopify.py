"""`aoms shopify …`: reconcile orders, push available-to-sell, map Shopify ids, and see what
aoms tells Shopify of its orders."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from aoms.config import load_settings
from aoms.domain.errors import InvalidInput
from aoms.entrypoints.cli_common import json_default

if TYPE_CHECKING:
    from aoms.bootstrap import Runtime

shopify_app = typer.Typer(
    help="Shopify: reconcile orders, push available-to-sell, map SKUs and locations.",
    no_args_is_help=True,
)
console = Console(stderr=True)

ShopOpt = Annotated[str, typer.Option("--shop", help="The shop's *.myshopify.com domain.")]
DbOpt = Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a summary.")]


def _runtime(database_url: str | None) -> Runtime:
    from aoms.bootstrap import build

    try:
        settings = load_settings(**({"database_url": database_url} if database_url else {}))
    except ValidationError as exc:
        console.print(f"[red]invalid settings[/]: {exc}")
        raise typer.Exit(2) from exc
    runtime = build(settings)
    runtime.migrate()
    return runtime


def _since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"--since is not an ISO-8601 time: {value!r}", field="since") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@shopify_app.command("reconcile")
def reconcile(
    shop: ShopOpt,
    since: Annotated[str, typer.Option(help="Orders updated at or after this time (ISO 8601).")],
    database_url: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Page the shop's orders updated since a time and ingest each one the webhooks missed
    (or whose newest version they missed); report what was created, updated, unchanged."""
    from aoms.adapters.shopify.graphql_orders import parse_graphql_order
    from aoms.bootstrap import shopify_admin
    from aoms.services.shopify_reconcile import reconcile_orders

    runtime = _runtime(database_url)
    start = _since(since)
    with shopify_admin(runtime.settings, shop) as client:
        report = reconcile_orders(
            runtime.store,
            client.orders_updated_since(start),
            shop,
            start,
            parse=parse_graphql_order,
            geocode=runtime.geocode,
            clock=runtime.clock,
        )
        cost = {
            "requests": client.stats.requests,
            "throttled": client.stats.throttled,
            "points_spent": client.stats.points_spent,
        }
    runtime.relay_events()
    if as_json:
        print(json.dumps({**report.as_dict(), "api": cost}, indent=2))
        return
    print(
        f"{shop}: {report.seen} orders updated since {start.isoformat()}: "
        f"{len(report.created)} created, {len(report.updated)} updated, "
        f"{report.unchanged} unchanged, {len(report.failed)} failed"
    )
    for failure in report.failed:
        print(f"  failed {failure['id']}: {failure['code']}: {failure['message']}")
    if report.newest_update:
        print(f"next run: --since {report.newest_update.isoformat()}")


@shopify_app.command("push-inventory")
def push(
    shop: ShopOpt,
    verify: Annotated[
        bool,
        typer.Option(help="Read every value from Shopify first (3 points each): a nightly check."),
    ] = False,
    database_url: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Push available-to-sell (per location, minus the store's buffer) where it differs from
    what Shopify holds, with compare-and-set."""
    from aoms.adapters.db.shopify import SqlShopifyStore
    from aoms.bootstrap import shopify_admin
    from aoms.services.shopify_sync import push_inventory

    runtime = _runtime(database_url)
    with shopify_admin(runtime.settings, shop) as client:
        report = push_inventory(
            SqlShopifyStore(runtime.store), client, shop, now=runtime.clock(), verify=verify
        )
    runtime.relay_events()
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
        return
    print(
        f"{shop}: {report.targets} SKU × location values, {report.changed} changed, "
        f"{report.pushed} pushed in {report.calls} calls, {report.stale} stale compares "
        f"re-read, {len(report.failed)} refused"
    )


@shopify_app.command("map-locations")
def map_locations(
    shop: ShopOpt,
    pairs: Annotated[
        list[str], typer.Argument(help="LOCATION=gid://shopify/Location/N, one per location.")
    ],
    database_url: DbOpt = None,
) -> None:
    """Name the Shopify location of each aoms location that serves the store."""
    from aoms.adapters.db.shopify import SqlShopifyStore

    mapping: dict[str, str] = {}
    for pair in pairs:
        location, sep, gid = pair.partition("=")
        if not sep or not location or not gid:
            raise InvalidInput(f"expected LOCATION=GID, got {pair!r}", field="pairs")
        mapping[location] = gid
    SqlShopifyStore(_runtime(database_url).store).map_locations(shop, mapping)
    n = len(mapping)
    print(f"{n} location{'' if n == 1 else 's'} mapped for {shop}")


@shopify_app.command("map-skus")
def map_skus(
    shop: ShopOpt,
    file: Annotated[Path, typer.Argument(help="CSV with columns sku,inventory_item_id.")],
    database_url: DbOpt = None,
) -> None:
    """Name the Shopify inventory item of each SKU (a CSV: sku,inventory_item_id)."""
    from aoms.adapters.db.shopify import SqlShopifyStore

    with file.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"sku", "inventory_item_id"} <= set(rows[0]):
        raise InvalidInput("the CSV needs the columns sku and inventory_item_id", field="file")
    mapping = {r["sku"].strip(): r["inventory_item_id"].strip() for r in rows}
    SqlShopifyStore(_runtime(database_url).store).map_items(shop, mapping)
    print(f"{len(mapping)} SKUs mapped for {shop}")


@shopify_app.command("set-buffer")
def set_buffer(
    shop: ShopOpt,
    units: Annotated[int, typer.Argument(min=0, help="Units held back from each SKU's ATS.")],
    database_url: DbOpt = None,
) -> None:
    """Hold back this many units of every SKU from what the store shows as available."""
    from aoms.adapters.db.shopify import SqlShopifyStore

    runtime = _runtime(database_url)
    SqlShopifyStore(runtime.store).set_buffer(shop, units, runtime.clock())
    print(f"{shop}: buffer {units}")


@shopify_app.command("pushes")
def pushes(
    shop: ShopOpt,
    status: Annotated[
        str | None, typer.Option(help="Only pushes in this state: pending, sending, done, failed.")
    ] = None,
    retry: Annotated[
        int | None, typer.Option(help="Send this failed push again (its id), then list.")
    ] = None,
    send: Annotated[
        bool, typer.Option(help="Relay aoms's events and send what is due now, then list.")
    ] = False,
    database_url: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What aoms tells Shopify of its orders (fulfilments with tracking, holds and tags,
    returns), newest first, with each push's result or last error."""
    from aoms.adapters.db.shopify_pushes import SqlShopifyPushes

    if status not in (None, "pending", "sending", "done", "failed"):
        raise InvalidInput(f"--status must be pending, sending, done or failed: {status!r}")
    runtime = _runtime(database_url)
    repo = SqlShopifyPushes(runtime.store)
    if retry is not None and not repo.retry(retry, runtime.clock()):
        raise InvalidInput(f"no failed push {retry}", field="retry")
    if send or retry is not None:
        while runtime.relay_events():
            pass
        runtime.send_shopify_pushes()
    rows = repo.listing(shop, status)
    if shop not in runtime.settings.shopify_admin_tokens:
        console.print(f"{shop} has no Admin API access token: nothing is queued for Shopify "
                      "(set AOMS_SHOPIFY_ADMIN_TOKENS)")  # fmt: skip
    if as_json:
        print(json.dumps(rows, indent=2, default=json_default))
        return
    for p in rows:
        said = p["last_error"] if p["status"] != "done" else json.dumps(p["result"])
        print(f"{p['id']:>6}  order {p['order_id']:<8} {p['kind']:<10} {p['status']:<8} "
              f"attempts {p['attempts']}  {said or ''}")  # fmt: skip
    if not rows:
        print(f"{shop}: no pushes" + (f" {status}" if status else ""))
