"""The dashboard's pages. Each is one route, one template and one query function in
`adapters/db/dashboard.py`; actions are POST forms with a CSRF token and a role check."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from aoms.adapters.db import dashboard as q
from aoms.adapters.db import lifecycle_queries, queries
from aoms.adapters.db.lifecycle import SqlLifecycleRepo
from aoms.domain.errors import AomsError, InvalidInput, NotFound
from aoms.domain.orders import OrderStatus
from aoms.domain.users import Role
from aoms.entrypoints.web import auth
from aoms.entrypoints.web.auth import Viewer, check_csrf, require, runtime
from aoms.entrypoints.web.render import order_map, templates
from aoms.services import holds, inventory, orders

router = APIRouter(include_in_schema=False)
CURSOR = re.compile(r"[0-9]{1,18}")
REPORT = re.compile(r"[A-Za-z0-9._-]{1,128}\.html")


def age(since: datetime, now: datetime) -> str:
    """How long ago, in the largest whole unit: 45 min, 5 h, 3 d."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def page(request: Request, template: str, **context: Any) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    return templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "notice": request.query_params.get("notice"),
            "error": request.query_params.get("error"),
            **context,
        },
    )


def back(url: str, **message: str) -> RedirectResponse:
    sep = "&" if "?" in url else "?"
    return RedirectResponse(url + (sep + urlencode(message) if message else ""), status_code=303)


# -- sign in --------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    token = auth.login_csrf_token(request)
    response = page(request, "login.html", csrf_token=token, next=_safe_next(next))
    auth.set_cookie(request, response, auth.LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    sent, cookie = form.get("csrf_token"), request.cookies.get(auth.LOGIN_CSRF_COOKIE)
    next_url = _safe_next(str(form.get("next") or "/"))
    if not isinstance(sent, str) or not cookie or sent != cookie:
        return back("/login", error="The form expired: try again.", next=next_url)
    store = auth.users(request)
    user = await run_in_threadpool(
        store.authenticate, str(form.get("username") or ""), str(form.get("password") or "")
    )
    if user is None:
        refused = page(
            request,
            "login.html",
            csrf_token=cookie,
            next=next_url,
            error="Wrong username or password.",
        )
        refused.status_code = 401
        return refused
    token, _ = await run_in_threadpool(store.open_session, user, runtime(request).clock())
    response = RedirectResponse(next_url, status_code=303)
    auth.set_cookie(request, response, auth.COOKIE, token, max_age=auth.SESSION_SECONDS)
    response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, session: Viewer) -> Response:
    await check_csrf(request, session)
    token = request.cookies.get(auth.COOKIE, "")
    await run_in_threadpool(auth.users(request).close_session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/")
    return response


def _safe_next(url: str) -> str:
    """Only a path on this site (no scheme, no other host) may follow a sign-in."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"


# -- overview -------------------------------------------------------------------------------


@router.get("/")
def overview(request: Request, session: Viewer) -> HTMLResponse:
    rt = runtime(request)
    with rt.store.read() as conn:
        data = q.overview(conn, now=rt.clock())
        data["on_hold"] = q.on_hold(conn)
    chart = {"days": data["days"], **data["trend"]}
    return page(request, "overview.html", o=data, chart_json=json.dumps(chart))


# -- orders ---------------------------------------------------------------------------------


def _order_filters(
    status: str | None, q_: str | None, before: str | None
) -> tuple[str | None, str | None, int | None]:
    if status and status not in q.ORDER_STATUSES:
        raise InvalidInput(f"unknown status {status!r}", field="status")
    if before and not CURSOR.fullmatch(before):
        raise InvalidInput("before is not a cursor this page made", field="before")
    return status or None, (q_ or "").strip()[:255] or None, int(before) if before else None


@router.get("/orders")
def order_list(
    request: Request,
    session: Viewer,
    status: str | None = None,
    q_: Annotated[str | None, Query(alias="q")] = None,
    before: str | None = None,
) -> HTMLResponse:
    st, term, cursor = _order_filters(status, q_, before)
    rt = runtime(request)
    with rt.store.read() as conn:
        items, nxt = q.order_list(conn, status=st, q=term, before=cursor)
    filters = {k: v for k, v in (("status", st), ("q", term)) if v}
    live = cursor is None
    template = "_order_rows.html" if request.headers.get("hx-request") else "orders.html"
    return page(
        request,
        template,
        items=items,
        next_cursor=nxt,
        filters=filters,
        query=urlencode(filters),
        live=live,
        statuses=q.ORDER_STATUSES,
    )


@router.get("/orders/{order_id}")
def order(request: Request, session: Viewer, order_id: int) -> HTMLResponse:
    rt = runtime(request)
    if not 1 <= order_id < 2**63:
        raise NotFound(f"no order {order_id}", field="order_id")
    with rt.store.read() as conn:
        detail = q.order_page(conn, order_id)
        life = lifecycle_queries.order_lifecycle(conn, order_id)
    now = rt.clock()
    for h in life["holds"]:
        h["age"] = age(h["created_at"], now)
        h["order_name"] = detail["name"]
    return page(
        request,
        "order.html",
        o=detail,
        life=life,
        back_url=f"/orders/{order_id}",
        release_only=True,
        map=order_map(detail),
        decision=detail["routing"][-1] if detail["routing"] else None,
        can_act=session.user.role.may(Role.OPERATOR),
    )


@router.post("/orders/{order_id}/route")
async def route_again(request: Request, session: Viewer, order_id: int) -> Response:
    await check_csrf(request, session)
    require(session, Role.OPERATOR, "route an order again")
    rt = runtime(request)

    def work() -> OrderStatus:
        with rt.store.transaction() as tx:
            return orders.reroute(tx, order_id, geocode=rt.geocode, now=rt.clock())

    try:
        status = await run_in_threadpool(work)
    except AomsError as exc:
        return back(f"/orders/{order_id}", error=exc.message)
    return back(f"/orders/{order_id}", notice=f"Routed again: the order is {status.value}.")


@router.post("/orders/{order_id}/cancel")
async def cancel(request: Request, session: Viewer, order_id: int) -> Response:
    await check_csrf(request, session)
    require(session, Role.OPERATOR, "cancel an order")
    rt = runtime(request)

    def work() -> None:  # as POST /v1/orders/{id}/cancel: its open holds are closed with it
        with rt.store.transaction() as tx:
            holds.cancel_with_holds(
                SqlLifecycleRepo(tx),
                order_id,
                now=rt.clock(),
                actor=f"dashboard:{session.user.username}",
            )

    try:
        await run_in_threadpool(work)
    except AomsError as exc:
        return back(f"/orders/{order_id}", error=exc.message)
    return back(f"/orders/{order_id}", notice="Cancelled: its stock is released.")


# -- stock ----------------------------------------------------------------------------------


@router.get("/stock")
def stock(
    request: Request,
    session: Viewer,
    sku: str | None = None,
    location: str | None = None,
    low: bool = False,
    after: str | None = None,
) -> HTMLResponse:
    cursor = None
    if after:
        s, _, loc = after.partition("|")
        cursor = (s, loc)
    rt = runtime(request)
    with rt.store.read() as conn:
        items, nxt = q.stock(
            conn,
            sku=sku or None,
            location_id=location or None,
            low_only=low,
            after=cursor,
            limit=50,
        )
        locations = queries.list_locations(conn)
    filters = {
        k: v for k, v in (("sku", sku), ("location", location), ("low", "1" if low else "")) if v
    }
    return page(
        request,
        "stock.html",
        items=items,
        filters=filters,
        query=urlencode(filters),
        next_after=f"{nxt[0]}|{nxt[1]}" if nxt else None,
        locations=locations,
        can_act=session.user.role.may(Role.OPERATOR),
        idempotency_key=uuid.uuid4().hex,
    )


@router.post("/stock/adjust")
async def adjust_stock(request: Request, session: Viewer) -> Response:
    await check_csrf(request, session)
    require(session, Role.OPERATOR, "adjust stock")
    form = await request.form()
    rt = runtime(request)
    sku, location = str(form.get("sku") or "").strip(), str(form.get("location_id") or "").strip()
    reason = str(form.get("reason") or "count").strip() or "count"
    key = str(form.get("idempotency_key") or "") or None
    url = "/stock?" + urlencode({"sku": sku})
    try:
        delta = int(str(form.get("delta") or ""))
    except ValueError:
        return back(url, error="The change must be a whole number of units (e.g. 5 or -2).")
    if not sku or not location or delta == 0:
        return back(url, error="Give a SKU, a location and a change other than 0.")

    def work() -> str:
        with rt.store.transaction() as tx:
            result = inventory.adjust_stock(
                tx,
                sku=sku,
                location_id=location,
                reason=reason[:64],
                now=rt.clock(),
                delta=delta,
                reference=f"dashboard:{session.user.username}",
                idempotency_key=key,
            )
        rerouted: dict[str, int] = {}
        if result.applied and result.level.available > 0:
            rerouted = orders.retry_waiting(
                rt.store,
                geocode=rt.geocode,
                clock=rt.clock,
                status=OrderStatus.BACKORDERED,
                sku=sku,
            )
        done = (
            f"{sku} at {location}: on hand {result.level.on_hand}."
            if result.applied
            else ("That change was applied before.")
        )
        routed = rerouted.get("routed", 0)
        return done + (f" {routed} waiting orders routed." if routed else "")

    try:
        message = await run_in_threadpool(work)
    except AomsError as exc:
        return back(url, error=exc.message)
    return back(url, notice=message)


# -- policy lab -----------------------------------------------------------------------------


def _reports(folder: Path | None) -> list[str]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.name for p in folder.glob("*.html") if REPORT.fullmatch(p.name))


@router.get("/lab")
def lab(request: Request, session: Viewer) -> HTMLResponse:
    rt = runtime(request)
    with rt.store.read() as conn:
        shops = q.lab(conn)
    return page(request, "lab.html", shops=shops, reports=_reports(rt.settings.reports_dir))


@router.get("/lab/reports/{name}")
def report(request: Request, session: Viewer, name: str) -> FileResponse:
    folder = runtime(request).settings.reports_dir
    if name not in _reports(folder) or folder is None:
        raise NotFound(f"no report {name}")
    return FileResponse(folder / name, media_type="text/html")
