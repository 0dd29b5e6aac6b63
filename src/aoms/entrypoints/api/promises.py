"""Delivery promises over HTTP: import a delivery history, fit a model, promise an order."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from aoms.adapters.db.promises import SqlPromiseStore
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.schemas import Time, _Strict
from aoms.services import promises as svc

router = APIRouter(tags=["promises"])
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,8}$")]
# ISO 3166 country codes: with a region code, "CC-REGION" fits the stored 16 characters.
Country = Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}$")]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Rt = Annotated[Runtime, Depends(_runtime)]


class DeliveryIn(_Strict):
    """One past delivery. The origin is a location id, or a country (+ region) code."""

    external_id: str | None = Field(None, max_length=255, description="skip it if seen before")
    origin_location_id: str | None = Field(None, min_length=1, max_length=64)
    origin_country: Country | None = None
    origin_region: Code | None = None
    destination_country: Country
    destination_region: Code | None = Field(None, description="province / state code")
    service: str = Field("", max_length=64, description="carrier service, if known")
    ordered_at: Time
    shipped_at: Time | None = None
    delivered_at: Time
    promised_at: Time | None = Field(None, description="the promise made at the time")

    def to_record(self) -> svc.HistoryRecord:
        return svc.HistoryRecord(**self.model_dump())


class HistoryIn(_Strict):
    deliveries: list[DeliveryIn] = Field(min_length=1, max_length=10_000)


class FitIn(_Strict):
    confidence: float = Field(0.9, gt=0, lt=1, description="the quantile promised")
    prior_weight: float = Field(10.0, ge=0, description="samples' worth of the parent region")
    half_life_days: float | None = Field(None, gt=0, description="older deliveries weigh less")
    tune: bool = Field(
        False,
        description="choose confidence, prior weight and half-life on the history's last "
        "validation_months (the three values above are then ignored)",
    )
    validation_months: int = Field(1, ge=1, le=24)
    target_on_time: float | None = Field(
        None, gt=0, le=1, description="on-time rate to reach (default: the history's own)"
    )


def model_info(info: svc.ModelInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "confidence": info.confidence,
        "prior_weight": info.prior_weight,
        "half_life_days": info.half_life_days,
        "deliveries": info.deliveries,
        "lanes": info.lanes,
        "history_from": info.history_from,
        "history_to": info.history_to,
        "fitted_at": info.fitted_at,
        "chosen_on_validation": info.chosen_on_validation,
    }


@router.post("/v1/delivery-history", status_code=200)
def import_history(body: HistoryIn, r: Rt) -> dict[str, int]:
    """Store past deliveries (all or none) to learn transit times from."""
    records = [d.to_record() for d in body.deliveries]
    return svc.import_history(SqlPromiseStore(r.store), records, now=r.clock())


@router.post("/v1/promise-model/fit", status_code=201)
def fit_model(r: Rt, body: FitIn | None = None) -> dict[str, Any]:
    """Fit lane quantiles on the stored history and store them; the newest model promises.
    With no body, the defaults of every setting."""
    body = body or FitIn()
    info = svc.fit_and_store(
        SqlPromiseStore(r.store),
        now=r.clock(),
        params=svc.Params(body.confidence, body.prior_weight, body.half_life_days),
        tune_on_validation=body.tune,
        validation_months=body.validation_months,
        target_on_time=body.target_on_time,
    )
    return model_info(info)


@router.get("/v1/promise-model")
def get_model(r: Rt) -> dict[str, Any]:
    """The model that promises now, with its lanes."""
    model, info = svc.latest_model(SqlPromiseStore(r.store))
    return {
        **model_info(info),
        "overall_days": model.overall,
        "lanes": [
            {"origin": o, "destination": d, "service": s, "samples": n, "days": round(v, 3)}
            for (o, d, s), (n, v) in sorted(model.by_lane.items())
        ],
        "destinations": [
            {"destination": d, "samples": n, "days": round(v, 3)}
            for d, (n, v) in sorted(model.by_destination.items())
        ],
    }


@router.get("/v1/orders/{order_id}/promise", tags=["orders"])
def order_promise(
    order_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    r: Rt,
    service: Annotated[str, Query(max_length=64, description="carrier service")] = "",
) -> dict[str, Any]:
    """Before routing, the date from the fastest location that can ship the whole order;
    after routing, the date by which every shipment of the chosen plan has arrived."""
    today = r.clock().astimezone(UTC).date()
    answer = svc.promise_order(SqlPromiseStore(r.store), order_id, service=service, today=today)
    p = answer.promise
    return {
        "order_id": answer.order_id,
        "stage": p.stage,
        "arrives_by": p.arrives_by.isoformat(),
        "confidence": p.confidence,
        "statement": p.statement,
        "shipments": [
            {
                "location_id": s.location_id,
                "lane": {"origin": s.origin, "destination": s.destination, "service": s.service},
                "days": s.estimate.days,
                "basis": s.estimate.basis,
                "samples": s.estimate.samples,
                "arrives_by": s.arrives_by.isoformat(),
            }
            for s in p.shipments
        ],
        "backordered_units": answer.backordered_units,
        "notes": list(answer.notes),
        "model": {"id": answer.model.id, "fitted_at": answer.model.fitted_at},
    }
