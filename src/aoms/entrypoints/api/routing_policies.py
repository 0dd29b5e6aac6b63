"""Routing policies over HTTP: the registered policies, each shop's versions, and A/B
experiments between two versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from pydantic_core import to_jsonable_python

from aoms.adapters.db import queries
from aoms.adapters.db.scarcity import SqlScarcityStore
from aoms.bootstrap import Runtime
from aoms.domain.errors import InvalidPolicyDocument, UnknownShop
from aoms.domain.routing_policy import PolicyDocument
from aoms.entrypoints.api.schemas import ExperimentIn, PolicyDraftIn, Time, _Strict
from aoms.services import experiments, routing_policies, scarcity, waves

router = APIRouter(tags=["routing policies"])
Domain = Annotated[str, Path(min_length=1, max_length=255)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
ExperimentId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Rt = Annotated[Runtime, Depends(_runtime)]


def _shop(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


@router.get("/v1/routing-policies")
def registered(r: Rt) -> dict[str, Any]:
    """The policies a document may name: the built-ins and the installed plug-ins."""
    return {"items": r.store.policies.listing()}


@router.post("/v1/shops/{domain}/routing-policies", status_code=201)
def create_draft(domain: Domain, body: PolicyDraftIn, r: Rt) -> JSONResponse:
    """Store a routing policy document as the shop's next version (a draft)."""
    shop = _shop(domain)
    data = body.document.model_dump(mode="json")
    with r.store.transaction() as tx:
        if data["currency"] is None:
            data["currency"] = tx.shop_currency(shop)
            if data["currency"] is None:
                raise UnknownShop(f"no shop {shop!r}", field="domain")
        try:
            document = PolicyDocument.from_dict(data)
        except InvalidPolicyDocument as exc:  # name the field as the request spells it
            raise InvalidPolicyDocument(exc.message, field=f"document.{exc.field}") from exc
        version = routing_policies.create_draft(
            tx, shop, document, body.note, registry=r.store.policies, now=r.clock()
        )
    with r.store.read() as conn:
        return JSONResponse(
            to_jsonable_python(queries.routing_policy(conn, shop, version)), status_code=201
        )


@router.get("/v1/shops/{domain}/routing-policies")
def list_versions(domain: Domain, r: Rt) -> dict[str, Any]:
    with r.store.read() as conn:
        return {"items": queries.routing_policies(conn, _shop(domain))}


@router.get("/v1/shops/{domain}/routing-policies/{version}")
def get_version(domain: Domain, version: Version, r: Rt) -> dict[str, Any]:
    with r.store.read() as conn:
        return queries.routing_policy(conn, _shop(domain), version)


@router.post("/v1/shops/{domain}/routing-policies/{version}/activate")
def activate(domain: Domain, version: Version, r: Rt) -> dict[str, Any]:
    """Make this version govern the shop's routing; the active one before it is retired."""
    shop = _shop(domain)
    with r.store.transaction() as tx:
        result = routing_policies.activate(
            tx, shop, version, registry=r.store.policies, now=r.clock()
        )
    with r.store.read() as conn:
        detail = queries.routing_policy(conn, shop, version)
    return {**detail, "retired": result.previous, "changed": result.changed}


@router.post("/v1/shops/{domain}/experiments", status_code=201, tags=["experiments"])
def start_experiment(domain: Domain, body: ExperimentIn, r: Rt) -> JSONResponse:
    """Route `share_b` of the shop's orders with version `arm_b` and the rest with `arm_a`,
    each order by a hash of (experiment id, its external id)."""
    shop = _shop(domain)
    with r.store.transaction() as tx:
        experiment_id = experiments.start(
            tx, shop, arm_a=body.arm_a, arm_b=body.arm_b, share_b=body.share_b, note=body.note,
            registry=r.store.policies, now=r.clock(),
        )  # fmt: skip
    with r.store.read() as conn:
        found = queries.experiment(conn, shop, experiment_id)
    return JSONResponse(to_jsonable_python(found), status_code=201)


@router.get("/v1/shops/{domain}/experiments", tags=["experiments"])
def list_experiments(domain: Domain, r: Rt) -> dict[str, Any]:
    with r.store.read() as conn:
        return {"items": queries.experiments(conn, _shop(domain))}


@router.get("/v1/shops/{domain}/experiments/{experiment_id}", tags=["experiments"])
def get_experiment(domain: Domain, experiment_id: ExperimentId, r: Rt) -> dict[str, Any]:
    """The experiment, each arm's KPIs and the verdict (B − A with 95% intervals)."""
    shop = _shop(domain)
    with r.store.read() as conn:
        found = queries.experiment(conn, shop, experiment_id)
        outcomes, other = queries.experiment_outcomes(conn, experiment_id, found["currency"])
    return {
        **found,
        **experiments.report(found["currency"], outcomes),
        "orders_in_other_currencies": other,
    }


@router.post("/v1/shops/{domain}/experiments/{experiment_id}/stop", tags=["experiments"])
def stop_experiment(domain: Domain, experiment_id: ExperimentId, r: Rt) -> dict[str, Any]:
    """Stop it: new orders go back to the shop's active version. Stopping twice is harmless."""
    shop = _shop(domain)
    with r.store.read() as conn:
        queries.experiment(conn, shop, experiment_id)  # not_found if there is none
    with r.store.transaction() as tx:
        stopped = experiments.stop(tx, shop, experiment_id, now=r.clock())
    with r.store.read() as conn:
        return {**queries.experiment(conn, shop, experiment_id), "changed": stopped}


class WaveIn(_Strict):
    since: Time = Field(description="the wave's start: orders routed since then are re-planned")


@router.post("/v1/shops/{domain}/waves/replan", tags=["routing"])
def replan_wave(domain: Domain, body: WaveIn, r: Rt) -> dict[str, Any]:
    """Before releasing a wave: plan the shop's orders routed since `since` (fully reserved,
    not yet handed on) again together, and move reservations where that lowers the wave's
    landed cost without shipping fewer units."""
    with r.store.transaction() as tx:
        return waves.replan_wave(tx, _shop(domain), body.since, now=r.clock())


@router.post("/v1/shops/{domain}/scarcity/refresh", tags=["routing"])
def refresh_scarcity(domain: Domain, r: Rt) -> dict[str, Any]:
    """Price the shop's stock now from its recent orders (its active policy version must set
    `scarcity`); the workers also do this every `refresh_minutes`."""
    return scarcity.refresh_prices(SqlScarcityStore(r.store), _shop(domain), now=r.clock())


@router.get("/v1/shops/{domain}/scarcity", tags=["routing"])
def scarcity_prices(domain: Domain, r: Rt) -> dict[str, Any]:
    """The last refresh (when, from how many orders) and the prices it set, dearest first."""
    return SqlScarcityStore(r.store).prices(_shop(domain))
