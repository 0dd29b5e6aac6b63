"""The review queue: holds (open ones first of all), and the operator's two answers to a hold,
release it or cancel the order, through the same use cases as `POST /v1/holds/{id}/release`
and `POST /v1/orders/{id}/review/cancel`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from aoms.adapters.db import lifecycle_queries as lq
from aoms.adapters.db.lifecycle import SqlLifecycleStore
from aoms.domain.errors import AomsError, InvalidInput, NotFound
from aoms.domain.lifecycle import HoldKind, HoldStatus
from aoms.domain.users import Role
from aoms.entrypoints.web.auth import Viewer, check_csrf, require, runtime
from aoms.entrypoints.web.pages import CURSOR, age, back, page
from aoms.services import holds

router = APIRouter(include_in_schema=False)
KINDS = tuple(k.value for k in HoldKind)
STATUSES = tuple(s.value for s in HoldStatus)
PAGE = 50
NOTE_MAX = 2000


def _filters(
    status: str | None, kind: str | None, after: str | None
) -> tuple[str | None, str | None, int | None]:
    """`status` absent means open holds (the queue); `any` means every status."""
    st = HoldStatus.OPEN.value if status is None else status
    if st not in (*STATUSES, "any"):
        raise InvalidInput(f"unknown hold status {status!r}", field="status")
    if kind and kind not in KINDS:
        raise InvalidInput(f"unknown hold kind {kind!r}", field="kind")
    if after and not CURSOR.fullmatch(after):
        raise InvalidInput("after is not a cursor this page made", field="after")
    return st, kind or None, int(after) if after else None


@router.get("/holds")
def hold_list(
    request: Request,
    session: Viewer,
    status: str | None = None,
    kind: str | None = None,
    after: str | None = None,
) -> HTMLResponse:
    st, kd, cursor = _filters(status, kind, after)
    rt = runtime(request)
    now = rt.clock()
    with rt.store.read() as conn:  # the API's own query for GET /v1/holds
        items, nxt = lq.list_holds(
            conn,
            status=None if st == "any" else st,
            kind=kd,
            shop=None,
            after=cursor,
            limit=PAGE,
        )
    for h in items:
        h["age"] = age(h["created_at"], now)
    filters = {k: v for k, v in (("status", st if st != "open" else None), ("kind", kd)) if v}
    return page(
        request,
        "holds.html",
        items=items,
        next_cursor=nxt,
        filters={"status": st, **({"kind": kd} if kd else {})},
        query=urlencode(filters),
        kinds=KINDS,
        statuses=STATUSES,
        can_act=session.user.role.may(Role.OPERATOR),
        back_url=_here(request),
    )


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _back_to(form: Any, default: str) -> str:
    """Where the form asks to go back to: the queue or an order's page, nothing else."""
    url = str(form.get("back") or "")
    ok = url.startswith("/holds") or url.startswith("/orders/")
    return url if ok and "//" not in url and "\\" not in url else default


def _note(form: Any) -> str | None:
    note = str(form.get("note") or "").strip()
    return note[:NOTE_MAX] or None


@router.post("/holds/{hold_id}/release")
async def release(request: Request, session: Viewer, hold_id: int) -> Response:
    await check_csrf(request, session)
    require(session, Role.OPERATOR, "release a hold")
    form = await request.form()
    url = _back_to(form, "/holds")
    if not 1 <= hold_id < 2**63:
        raise NotFound(f"no hold {hold_id}", field="hold_id")
    rt = runtime(request)
    actor = f"dashboard:{session.user.username}"

    def work() -> tuple[holds.Hold, str]:
        with SqlLifecycleStore(rt.store).transaction() as repo:
            hold = holds.release_hold(repo, hold_id, actor=actor, note=_note(form), now=rt.clock())
        with rt.store.read() as conn:
            state = lq.order_lifecycle(conn, hold.order_id)["state"]
        return hold, state

    try:
        hold, state = await run_in_threadpool(work)
    except AomsError as exc:
        return back(url, error=exc.message)
    then = {
        "on_hold": "another hold is still open",
        "ready_for_fulfilment": "the order is ready for fulfilment",
    }.get(state, f"the order is {state.replace('_', ' ')}")
    return back(url, notice=f"Released the {hold.kind.value.replace('_', ' ')} hold: {then}.")


@router.post("/orders/{order_id}/review/cancel")
async def cancel_from_review(request: Request, session: Viewer, order_id: int) -> Response:
    await check_csrf(request, session)
    require(session, Role.OPERATOR, "cancel an order")
    form = await request.form()
    url = _back_to(form, f"/orders/{order_id}")
    if not 1 <= order_id < 2**63:
        raise NotFound(f"no order {order_id}", field="order_id")
    rt = runtime(request)
    actor = f"dashboard:{session.user.username}"

    def work() -> None:
        with SqlLifecycleStore(rt.store).transaction() as repo:
            if repo.tx.get_order(order_id) is None:
                raise NotFound(f"no order {order_id}", field="order_id")
            holds.cancel_with_holds(repo, order_id, now=rt.clock(), actor=actor, note=_note(form))

    try:
        await run_in_threadpool(work)
    except AomsError as exc:
        return back(url, error=exc.message)
    return back(url, notice="Cancelled: its stock is released and its holds closed.")
