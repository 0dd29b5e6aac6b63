"""Shopify sync over HTTP: reconcile orders since a time, push available-to-sell, set a
store's ATS buffer and its SKU / location mapping, and see (and retry) what aoms tells
Shopify of its orders."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from aoms.adapters.db.shopify import SqlShopifyStore
from aoms.adapters.db.shopify_pushes import SqlShopifyPushes
from aoms.adapters.shopify.graphql_orders import parse_graphql_order
from aoms.bootstrap import Runtime, shopify_admin
from aoms.domain.errors import NotFound
from aoms.entrypoints.api.schemas import Time, _Strict
from aoms.services.shopify_reconcile import reconcile_orders
from aoms.services.shopify_sync import push_inventory

router = APIRouter(tags=["shopify"])
Shop = Annotated[str, Path(min_length=1, max_length=255)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Rt = Annotated[Runtime, Depends(_runtime)]


class ReconcileIn(_Strict):
    since: Time = Field(description="orders updated at or after this time")


class MappingIn(_Strict):
    locations: dict[str, str] = Field(
        default_factory=dict, description="aoms location id -> gid://shopify/Location/N"
    )
    skus: dict[str, str] = Field(
        default_factory=dict, description="SKU -> gid://shopify/InventoryItem/N"
    )
    ats_buffer: int | None = Field(None, ge=0, le=1_000_000, description="units held back")


@router.post("/v1/shops/{shop}/shopify/reconcile")
def reconcile(shop: Shop, body: ReconcileIn, rt: Rt) -> dict[str, Any]:
    """Page the shop's orders updated since `since` and ingest what the webhooks missed."""
    with shopify_admin(rt.settings, shop) as client:
        report = reconcile_orders(
            rt.store,
            client.orders_updated_since(body.since),
            shop,
            body.since,
            parse=parse_graphql_order,
            geocode=rt.geocode,
            clock=rt.clock,
        )
    return report.as_dict()


@router.post("/v1/shops/{shop}/shopify/inventory/push")
def push(shop: Shop, rt: Rt) -> dict[str, Any]:
    """Push the store's available-to-sell where it differs from what Shopify holds."""
    with shopify_admin(rt.settings, shop) as client:
        return push_inventory(SqlShopifyStore(rt.store), client, shop, now=rt.clock()).as_dict()


@router.put("/v1/shops/{shop}/shopify/mapping")
def put_mapping(shop: Shop, body: MappingIn, rt: Rt) -> dict[str, Any]:
    """Add or change SKU and location mappings, and the store's ATS buffer."""
    repo = SqlShopifyStore(rt.store)
    if body.locations:
        repo.map_locations(shop, body.locations)
    if body.skus:
        repo.map_items(shop, body.skus)
    if body.ats_buffer is not None:
        repo.set_buffer(shop, body.ats_buffer, rt.clock())
    return {
        "shop": shop,
        "locations": len(body.locations),
        "skus": len(body.skus),
        "ats_buffer": repo.buffer(shop),
    }


@router.get("/v1/shops/{shop}/shopify/pushes")
def list_pushes(
    shop: Shop,
    rt: Rt,
    status: Literal["pending", "sending", "done", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """What aoms told (or will tell) Shopify of its orders — fulfilments with tracking,
    holds and their release — newest first, with each push's result or last error."""
    items = SqlShopifyPushes(rt.store).listing(shop, status, limit)
    return {"items": [_push_out(p) for p in items]}


@router.post("/v1/shops/{shop}/shopify/pushes/{push_id}/retry")
def retry_push(shop: Shop, push_id: Annotated[int, Path(ge=1)], rt: Rt) -> dict[str, Any]:
    """Send a push that failed again, at once (with its attempts counted from zero)."""
    repo = SqlShopifyPushes(rt.store)
    if not any(p["id"] == push_id for p in repo.listing(shop, "failed", 500)) or not repo.retry(
        push_id, rt.clock()
    ):
        raise NotFound(f"no failed push {push_id} for {shop}", field="push_id")
    rt.timers_signal.set()
    return {"id": push_id, "status": "pending"}


def _push_out(p: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "order_id", "kind", "status", "attempts", "payload", "result", "last_error",
            "created_at", "next_attempt_at", "done_at")  # fmt: skip
    return {k: p[k] for k in keys}
