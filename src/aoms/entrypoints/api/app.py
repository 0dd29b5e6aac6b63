"""The HTTP API (FastAPI). Thin: parse, call a use case or a query, shape the answer."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic_core import to_jsonable_python
from sqlalchemy import insert, select
from sqlalchemy.exc import DataError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from aoms import __version__
from aoms.adapters.db import migrate, queries, setup
from aoms.adapters.db import schema as t
from aoms.adapters.db.lifecycle import SqlLifecycleRepo
from aoms.adapters.shopify.webhooks import verify
from aoms.bootstrap import Runtime, Workers
from aoms.domain.errors import AomsError, InvalidInput, NotFound
from aoms.domain.money import Money
from aoms.domain.orders import OrderStatus
from aoms.domain.routing import RateCard
from aoms.entrypoints import web
from aoms.entrypoints.api import handoff as handoff_api
from aoms.entrypoints.api import lifecycle, promises, returns, routing_policies
from aoms.entrypoints.api import shipping as shipping_api
from aoms.entrypoints.api import shopify as shopify_api
from aoms.entrypoints.api.schemas import (
    AdjustmentIn,
    LocationIn,
    OrderIn,
    ProductIn,
    RateCardIn,
    ShopIn,
)
from aoms.services import holds, inventory, orders

log = logging.getLogger("aoms.api")
PROBLEM = "application/problem+json"
CURSOR = re.compile(r"[0-9]{1,18}")
OrderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
INSERT_DELIVERY = insert(t.webhook_inbox)


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"https://aoms.dev/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


# What each pattern the API checks means, said as a person would (instead of the pattern).
PATTERN_WORDS = {
    r"^[A-Z]{3}$": "must be a three-letter ISO 4217 currency code in capitals, e.g. USD",
    r"^[A-Z]{2}$": "must be a two-letter ISO 3166 country code in capitals, e.g. CA",
    r"^[A-Za-z]{2,3}$": "must be a two- or three-letter ISO 3166 country code, e.g. BR",
    r"^[A-Za-z0-9]{1,8}$": "must be a region code of 1 to 8 letters or digits, e.g. SP or NJ",
    r"^\d{1,10}(\.\d{1,4})?$": "must be a non-negative decimal amount written as a string, "
    'e.g. "19.99" (at most 4 decimals, below 10,000,000,000)',
    r"^\d{1,4}(\.\d{1,6})?$": 'must be a non-negative decimal written as a string, e.g. "1.0"',
    r"^\d{1,6}(\.\d{1,6})?$": 'must be a non-negative decimal written as a string, e.g. "0.002"',
    r"\S": "must not be blank",
    r"^https?://": "must be an http:// or https:// URL",
    r"^\d{4}(\.?\d{2}){1,3}$": "must be an HS code of 6, 8 or 10 digits, e.g. 6912.00 or 691200",
    r"^[A-Za-z]{2}$": "must be a two-letter ISO 3166 country code, e.g. DE",
    r"^[^@\s]+@[^@\s]+$": "must be an e-mail address, e.g. ana@example.com",
}


def _in_words(error: Any) -> str:
    if error["type"] in ("model_attributes_type", "dict_type") and tuple(error["loc"]) == ("body",):
        return "the body must be a JSON object, sent with content-type: application/json"
    if error["type"] == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        return PATTERN_WORDS.get(pattern, str(error["msg"]))
    return str(error["msg"])


def _store_delivery(runtime: Runtime, row: dict[str, Any]) -> bool:
    """Keep a verified delivery in the inbox; False when it was delivered before."""
    try:
        with runtime.store.writer() as conn:
            conn.execute(INSERT_DELIVERY, row)
    except IntegrityError:
        return False
    return True


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Rt = Annotated[Runtime, Depends(_runtime)]


def create_app(runtime: Runtime, *, migrate_on_start: bool = True) -> FastAPI:
    workers = Workers(runtime)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate_on_start:
            runtime.migrate()
        if runtime.settings.run_workers:
            workers.start()
        yield
        if runtime.settings.run_workers:
            workers.stop()

    app = FastAPI(
        title="aoms",
        version=__version__,
        summary="Automated order management for Shopify merchants",
        lifespan=lifespan,
        docs_url=None,  # served below from files shipped with aoms: nothing from the internet
        redoc_url=None,
    )
    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def _docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="aoms API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )

    @app.exception_handler(AomsError)
    async def _aoms_error(_: Request, exc: AomsError) -> JSONResponse:
        extra = {"field": exc.field} if exc.field else {}
        return problem(exc.status, exc.code, exc.message, **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": "body" if e["type"] == "json_invalid" else
                ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "message": _in_words(e),
            }
            for e in exc.errors()
        ]  # fmt: skip
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return problem(
            422,
            "invalid_input",
            f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(DataError)
    async def _data_error(_: Request, exc: DataError) -> JSONResponse:
        return problem(422, "value_out_of_range", f"a value does not fit: {exc.orig}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return problem(exc.status_code, code, str(exc.detail))

    app.state.runtime = runtime
    app.include_router(promises.router)
    app.include_router(routing_policies.router)
    app.include_router(handoff_api.router)
    app.include_router(returns.router)
    app.include_router(shipping_api.router)
    app.include_router(lifecycle.router)
    app.include_router(shopify_api.router)

    # -- operations -----------------------------------------------------------------------
    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/ready", tags=["operations"])
    def ready(r: Rt) -> JSONResponse:
        if not migrate.is_current(r.engine):
            return problem(503, "not_migrated", "the database schema is not at the latest revision")
        return JSONResponse({"status": "ready"})

    # -- Shopify webhooks -------------------------------------------------------------------
    @app.post("/webhooks/shopify", tags=["webhooks"], status_code=200)
    async def shopify_webhook(request: Request, r: Rt) -> JSONResponse:
        """Verify the signature over the raw bytes, store the delivery, answer at once.

        The stored delivery is processed after the response by the inbox worker.
        """
        body = await request.body()
        h = request.headers
        # Shop domains are case-insensitive: one spelling, so a delivery cannot count twice.
        shop = (h.get("x-shopify-shop-domain") or h.get("shopify-shop-domain") or "").strip()
        shop = shop.lower().rstrip(".")
        signature = h.get("x-shopify-hmac-sha256") or h.get("shopify-hmac-sha256")
        secrets = r.settings.webhook_secrets(shop)
        if not secrets:
            return problem(
                401,
                "webhook_secret_not_configured",
                f"no signing secret is configured for shop {shop!r}",
            )
        if not verify(body, signature, secrets):
            return problem(
                401, "invalid_signature", "X-Shopify-Hmac-Sha256 does not match the body"
            )
        topic = h.get("x-shopify-topic") or h.get("shopify-topic")
        webhook_id = h.get("x-shopify-webhook-id") or h.get("shopify-webhook-id")
        if not shop or not topic or not webhook_id:
            return problem(
                400,
                "missing_header",
                "X-Shopify-Shop-Domain, X-Shopify-Topic and X-Shopify-Webhook-Id are required",
            )
        event_id = h.get("x-shopify-event-id") or h.get("shopify-event-id")
        api_version = h.get("x-shopify-api-version")
        triggered_at = h.get("x-shopify-triggered-at")
        limits = ((shop, 255), (topic, 64), (webhook_id, 255), (event_id, 255),
                  (api_version, 16), (triggered_at, 64))  # fmt: skip
        if any(value is not None and len(value) > limit for value, limit in limits):
            return problem(400, "header_too_long", "a Shopify header is longer than allowed")
        row = {
            "shop": shop, "topic": topic, "webhook_id": webhook_id, "event_id": event_id,
            "api_version": api_version, "triggered_at": triggered_at, "received_at": r.clock(),
            "body": body, "status": "pending", "attempts": 0,
        }  # fmt: skip
        # The insert blocks on the database: keep it off the event loop.
        if not await run_in_threadpool(_store_delivery, r, row):
            return JSONResponse({"status": "duplicate"})
        r.inbox_signal.set()
        return JSONResponse({"status": "accepted"})

    # -- orders -----------------------------------------------------------------------------
    @app.get("/v1/orders", tags=["orders"])
    def list_orders(
        r: Rt,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        status: OrderStatus | None = None,
        shop: str | None = None,
        sku: str | None = None,
        name: Annotated[str | None, Query(description="the order name, e.g. #1001")] = None,
    ) -> dict[str, Any]:
        before = None
        if cursor is not None:
            if not CURSOR.fullmatch(cursor):
                raise InvalidInput("cursor is not one this API returned", field="cursor")
            before = int(cursor)
        with r.store.read() as conn:
            items, nxt = queries.list_orders(
                conn, limit=limit, before=before, status=status.value if status else None,
                shop=shop, sku=sku, name=name,
            )  # fmt: skip
        return {"items": items, "next_cursor": str(nxt) if nxt is not None else None}

    @app.get("/v1/orders/{order_id}", tags=["orders"])
    def get_order(order_id: OrderId, r: Rt) -> dict[str, Any]:
        with r.store.read() as conn:
            return queries.order_detail(conn, order_id)

    @app.post("/v1/orders", tags=["orders"], status_code=201)
    def create_order(body: OrderIn, r: Rt) -> JSONResponse:
        """Take an order from a channel other than Shopify; it is routed before the answer."""
        order = body.to_domain()
        with r.store.transaction() as tx:
            result = orders.receive_order(tx, order, geocode=r.geocode, now=r.clock())
            if body.payments and result.outcome is orders.Outcome.CREATED:
                returns.record_order_payments(tx, result.order_id, body.payments, r.clock())
            if r.after_receive is not None and result.outcome is not orders.Outcome.STALE:
                r.after_receive(
                    tx, order, result.order_id, result.outcome is orders.Outcome.CREATED
                )
        with r.store.read() as conn:
            detail = queries.order_detail(conn, result.order_id)
        status = 201 if result.outcome is orders.Outcome.CREATED else 200
        return JSONResponse(
            to_jsonable_python({"outcome": result.outcome.value, "order": detail}),
            status_code=status,
        )

    @app.post("/v1/orders/{order_id}/cancel", tags=["orders"])
    def cancel_order(order_id: OrderId, r: Rt) -> dict[str, Any]:
        with r.store.transaction() as tx:  # its open holds are closed with it
            holds.cancel_with_holds(SqlLifecycleRepo(tx), order_id, now=r.clock(), actor="api")
        with r.store.read() as conn:
            return queries.order_detail(conn, order_id)

    @app.post("/v1/orders/{order_id}/route", tags=["orders"])
    def route_order(order_id: OrderId, r: Rt) -> dict[str, Any]:
        """Route an open order again on today's stock (release what it holds, plan, reserve)."""
        with r.store.transaction() as tx:
            orders.reroute(tx, order_id, geocode=r.geocode, now=r.clock())
            if r.after_route is not None:
                r.after_route(tx, order_id)
        with r.store.read() as conn:
            return queries.order_detail(conn, order_id)

    # -- inventory --------------------------------------------------------------------------
    @app.get("/v1/inventory", tags=["inventory"])
    def list_inventory(
        r: Rt,
        sku: str | None = None,
        location_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> dict[str, Any]:
        with r.store.read() as conn:
            return {
                "items": queries.stock_levels(conn, sku=sku, location_id=location_id, limit=limit)
            }

    @app.post("/v1/inventory/adjustments", tags=["inventory"])
    def adjust(body: AdjustmentIn, r: Rt) -> dict[str, Any]:
        with r.store.transaction() as tx:
            result = inventory.adjust_stock(
                tx,
                sku=body.sku,
                location_id=body.location_id,
                reason=body.reason,
                now=r.clock(),
                delta=body.delta,
                set_on_hand=body.set_on_hand,
                safety_stock=body.safety_stock,
                reference=body.reference,
                idempotency_key=body.idempotency_key,
            )
        rerouted = {}
        if result.applied and result.level.available > 0:
            # Stock arrived: the orders that waited longest for this SKU get it first.
            rerouted = orders.retry_waiting(
                r.store, geocode=r.geocode, clock=r.clock, status=OrderStatus.BACKORDERED,
                sku=body.sku, after_route=r.after_route,
            )  # fmt: skip
        with r.store.read() as conn:
            level = queries.stock_level(conn, body.sku, body.location_id)
        return {"applied": result.applied, "level": level, "rerouted": rerouted}

    # -- locations --------------------------------------------------------------------------
    @app.get("/v1/locations", tags=["locations"])
    def list_locations(r: Rt) -> dict[str, Any]:
        with r.store.read() as conn:
            return {"items": queries.list_locations(conn)}

    @app.put("/v1/locations/{location_id}", tags=["locations"])
    def put_location(
        location_id: Annotated[str, Path(min_length=1, max_length=64)], body: LocationIn, r: Rt
    ) -> dict[str, Any]:
        with r.store.writer() as conn:
            setup.upsert_location(
                conn,
                id=location_id,
                name=body.name,
                lat=body.lat,
                lng=body.lng,
                country_code=body.country_code,
                handling=Money.of(body.handling_cost, body.currency),
                active=body.active,
                region=body.region,
                now=r.clock(),
            )
        with r.store.read() as conn:
            found = [x for x in queries.list_locations(conn) if x["id"] == location_id]
        if not found:
            raise NotFound(f"no location {location_id}")
        return found[0]

    @app.put("/v1/products/{sku}", tags=["setup"])
    def put_product(
        sku: Annotated[str, Path(min_length=1, max_length=255)], body: ProductIn, r: Rt
    ) -> dict[str, Any]:
        """A product's title, unit weight and tags (routing policies' rules can name tags), and
        for shipping its packed size in mm and customs data (HS code, country of origin)."""
        with r.store.writer() as conn:
            setup.upsert_product(
                conn, sku, body.title, body.grams, tags=body.tags, shipping=body.shipping_fields()
            )
        return {"sku": sku, **body.model_dump(mode="json")}

    # -- shops and rate cards ---------------------------------------------------------------
    @app.put("/v1/shops/{domain}", tags=["setup"])
    def put_shop(
        domain: Annotated[str, Path(min_length=1, max_length=255)], body: ShopIn, r: Rt
    ) -> dict[str, Any]:
        """Register a store and choose its routing policy."""
        with r.store.writer() as conn:
            domain = domain.strip().lower().rstrip(".")
            setup.upsert_shop(conn, domain, body.routing_policy, body.currency, r.clock())
        return {"domain": domain, **body.model_dump(mode="json")}

    @app.get("/v1/rate-cards/{currency}", tags=["setup"])
    def get_rate_card(
        currency: Annotated[str, Path(pattern=r"^[A-Z]{3}$")], r: Rt
    ) -> dict[str, Any]:
        """The rate card that prices shipments in this currency, as it was set."""
        with r.store.read() as conn:
            found = conn.execute(
                select(t.rate_cards.c.card).where(t.rate_cards.c.currency == currency)
            ).scalar()
        if found is None:
            raise NotFound(f"no rate card in {currency}", field="currency")
        return dict(RateCard.from_dict(found).as_dict())

    @app.put("/v1/rate-cards/{currency}", tags=["setup"])
    def put_rate_card(
        currency: Annotated[str, Path(pattern=r"^[A-Z]{3}$")], body: RateCardIn, r: Rt
    ) -> dict[str, Any]:
        """Set the shipping rate card used to price shipments in this currency."""
        card = RateCard.from_dict({"currency": currency, **body.model_dump()})
        with r.store.writer() as conn:
            setup.set_rate_card(conn, card, r.clock())
        rerouted = orders.retry_waiting(
            r.store,
            geocode=r.geocode,
            clock=r.clock,
            status=OrderStatus.UNROUTABLE,
            after_route=r.after_route,
        )
        return {**card.as_dict(), "rerouted": rerouted}

    # -- what happened ------------------------------------------------------------------------
    @app.get("/v1/webhooks/deliveries", tags=["webhooks"])
    def list_deliveries(
        r: Rt, status: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> dict[str, Any]:
        with r.store.read() as conn:
            return {"items": queries.deliveries(conn, status=status, limit=limit)}

    @app.get("/v1/summary", tags=["operations"])
    def summary(r: Rt) -> dict[str, Any]:
        with r.store.read() as conn:
            return queries.summary(conn)

    @app.get("/v1/events", tags=["operations"])
    def recent_events(r: Rt) -> dict[str, Any]:
        """The latest events relayed from the outbox (newest last)."""
        return {
            "items": [
                {"id": i, "name": e.name, "aggregate": e.aggregate, "data": e.data}
                for i, e in list(r.recent_events)
            ]
        }

    web.install(app)  # the dashboard at /, beside the API
    return app
