"""Returns: the list by state, and a return's page with its items, history, label, dispositions
and refund, read through the same functions as `GET /v1/returns/{id}`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from aoms.adapters.db import dashboard as q
from aoms.adapters.db import returns as db
from aoms.domain.errors import InvalidInput, UnknownReturn
from aoms.domain.returns import ReturnStatus
from aoms.entrypoints.web.auth import Viewer, runtime
from aoms.entrypoints.web.pages import CURSOR, page

router = APIRouter(include_in_schema=False)
STATES = tuple(s.value for s in ReturnStatus)


@router.get("/returns")
def return_list(
    request: Request, session: Viewer, status: str | None = None, before: str | None = None
) -> HTMLResponse:
    if status and status not in STATES:
        raise InvalidInput(f"unknown return state {status!r}", field="status")
    if before and not CURSOR.fullmatch(before):
        raise InvalidInput("before is not a cursor this page made", field="before")
    rt = runtime(request)
    with rt.store.read() as conn:
        items, nxt = q.return_list(
            conn, status=status or None, before=int(before) if before else None
        )
    filters = {"status": status} if status else {}
    return page(
        request,
        "returns.html",
        items=items,
        next_cursor=nxt,
        filters=filters,
        query=urlencode(filters),
        states=STATES,
    )


@router.get("/returns/{return_id}")
def return_page(request: Request, session: Viewer, return_id: int) -> HTMLResponse:
    if not 1 <= return_id < 2**63:
        raise UnknownReturn(f"no return {return_id}", field="return_id")
    rt = runtime(request)
    with rt.store.read() as conn:
        found = db.return_detail(conn, return_id)
        if found is None:
            raise UnknownReturn(f"no return {return_id}", field="return_id")
        refunds = db.refunds_of_order(conn, found["order_id"])
        payments = db.payments_of_order(conn, found["order_id"])
        history = q.return_history(conn, return_id)
        order_name = q.order_name(conn, found["order_id"])
    refund = next((x for x in refunds if x["id"] == found["refund_id"]), None)
    items = {i["id"]: i for i in found["items"]}
    dispositions: list[dict[str, Any]] = [
        {**d, "sku": items[d["item_id"]]["sku"] if d["item_id"] in items else ""}
        for d in found["dispositions"]
    ]
    return page(
        request,
        "return.html",
        r=found,
        order_name=order_name,
        refund=refund,
        paid={p["id"]: p for p in payments},
        history=history,
        dispositions=dispositions,
    )
