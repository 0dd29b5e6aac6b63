"""Shopify sync over HTTP: reconcile orders since a time, push available-to-sell, set a
store's ATS buffer and its SKU / location mapping."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field

from aoms.adapters.db.shopify import SqlShopifyStore
from aoms.adapters.shopify.graphql_orders import parse_graphql_order
from aoms.bootstrap import Runtime, shopify_admin
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
