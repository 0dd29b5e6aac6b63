"""Warehouse / 3PL hand-off over HTTP: connections, signed callbacks, fulfilment orders."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.tpl.channels import channels
from aoms.adapters.tpl.rest import CallbackIn
from aoms.adapters.tpl.signing import SIGNATURE, TIMESTAMP, verify
from aoms.bootstrap import Runtime
from aoms.domain.errors import InvalidInput, InvalidSignature, NotFound
from aoms.entrypoints.api.schemas import _Strict
from aoms.services import handoff as svc
from aoms.services.handoff_ports import Result

router = APIRouter(tags=["hand-off"])
FoId = Annotated[int, Path(ge=1, le=2**63 - 1)]
LocationId = Annotated[str, Path(min_length=1, max_length=64)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Rt = Annotated[Runtime, Depends(_runtime)]


class ConnectionIn(_Strict):
    kind: Literal["rest", "file"] = Field(description="rest: the JSON contract; file: CSV")
    secret: str = Field(min_length=16, max_length=255, description="HMAC key, both directions")
    base_url: str | None = Field(None, pattern=r"^https?://", max_length=512)
    directory: str | None = Field(None, min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _where(self) -> ConnectionIn:
        if self.kind == "rest" and not self.base_url:
            raise ValueError("a rest connection needs base_url")
        if self.kind == "file" and not self.directory:
            raise ValueError("a file connection needs directory")
        return self


class LineIn(_Strict):
    sku: str = Field(min_length=1, max_length=255)
    quantity: int = Field(ge=1, le=1_000_000)


class SplitIn(_Strict):
    lines: list[LineIn] = Field(min_length=1)


class MergeIn(_Strict):
    fulfilment_order_ids: list[Annotated[int, Field(ge=1)]] = Field(min_length=2, max_length=50)


def _units(lines: list[LineIn]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ln in lines:
        out[ln.sku] = out.get(ln.sku, 0) + ln.quantity
    return out


def _store(r: Runtime) -> SqlHandoffStore:
    return SqlHandoffStore(r.store)


@router.put("/v1/locations/{location_id}/3pl-connection")
def set_connection(location_id: LocationId, body: ConnectionIn, r: Rt) -> dict[str, Any]:
    """How the location's warehouse or 3PL is reached (the secret is never shown again)."""
    _store(r).set_connection(
        location_id,
        kind=body.kind,
        secret=body.secret,
        base_url=body.base_url,
        directory=body.directory,
        now=r.clock(),
    )
    return {
        "location_id": location_id,
        "kind": body.kind,
        "base_url": body.base_url,
        "directory": body.directory,
    }


@router.post("/v1/3pl/{location_id}/callbacks")
async def callback(location_id: LocationId, request: Request, r: Rt) -> dict[str, Any]:
    """A 3PL's signed message (docs/3pl-contract.json `Callback`), applied once by event_id."""
    body = await request.body()
    store = _store(r)
    conn = await run_in_threadpool(store.connection, location_id)
    if conn is None:
        raise InvalidSignature(f"location {location_id!r} has no 3PL connection")
    verify(
        conn.secret, body, request.headers.get(TIMESTAMP), request.headers.get(SIGNATURE), r.clock()
    )
    try:
        message = CallbackIn.model_validate_json(body).to_message()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from exc

    def apply() -> dict[str, Any]:
        with store.handoff_transaction() as htx:
            return svc.apply_message(htx, location_id, message, r.clock())

    return await run_in_threadpool(apply)


@router.get("/v1/fulfilment-orders/{fo_id}")
def fulfilment_order(fo_id: FoId, r: Rt) -> dict[str, Any]:
    found = _store(r).fulfilment_order(fo_id)
    if found is None:
        raise NotFound(f"no fulfilment order {fo_id}", field="fo_id")
    return found


def _run(r: Rt, fn: Any, *args: Any, **kw: Any) -> dict[str, Any]:
    with _store(r).handoff_transaction() as htx:
        result: Result = fn(htx, *args, now=r.clock(), **kw)
    return result.as_dict()


@router.post("/v1/fulfilment-orders/{fo_id}/cancel")
def cancel(fo_id: FoId, r: Rt) -> dict[str, Any]:
    """Stop an FO: at once if it was not handed off, else ask the 3PL (answer `changed`:
    false when it was cancelled, or asked to be, already)."""
    return _run(r, svc.request_cancel, fo_id)


@router.post("/v1/fulfilment-orders/{fo_id}/split")
def split(fo_id: FoId, body: SplitIn, r: Rt) -> dict[str, Any]:
    return _run(r, svc.split, fo_id, _units(body.lines))


@router.post("/v1/fulfilment-orders/merge")
def merge(body: MergeIn, r: Rt) -> dict[str, Any]:
    return _run(r, svc.merge, body.fulfilment_order_ids)


@router.post("/v1/orders/{order_id}/cancel-fulfilment")
def cancel_rest(order_id: FoId, r: Rt) -> dict[str, Any]:
    """Ask every live FO of the order to stop; what shipped stays shipped."""
    with _store(r).handoff_transaction() as htx:
        results = svc.cancel_rest_of_order(htx, order_id, r.clock())
    return {"order_id": order_id, "fulfilment_orders": [x.as_dict() for x in results]}


@router.post("/v1/3pl/send")
def send(r: Rt) -> dict[str, Any]:
    """Hand off what is ready and deliver pending cancel requests now (the worker does the
    same every few seconds)."""
    return svc.send_pending(_store(r), channels(r.clock), clock=r.clock).as_dict()
