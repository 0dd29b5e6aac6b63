"""The rules of a shop's active routing policy version on live orders, on SQLite and
PostgreSQL.

Network of tests/builders.py: A at 50 km, B at 80 km and C at 700 km east of the customer,
handling 1.50; one unit of 500 g costs 4.00 + 1.50 = 5.50 from A or B, 8.00 + 1.50 = 9.50
from C."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.bootstrap import Runtime
from aoms.domain.routing_policy import PolicyDocument
from aoms.entrypoints.api.app import create_app
from aoms.services import routing_policies
from tests.builders import T0, network, place_order
from tests.integration.test_race import _together

SHOP = "shop.myshopify.com"
POLICIES = f"/v1/shops/{SHOP}/routing-policies"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def use(client: TestClient, document: dict[str, Any]) -> int:
    created = client.post(POLICIES, json={"document": document, "note": "x"})
    assert created.status_code == 201, created.text
    version: int = created.json()["version"]
    assert client.post(f"{POLICIES}/{version}/activate").status_code == 200
    return version


place = place_order


def test_an_order_spelling_its_shop_in_capitals_is_routed_by_that_shops_active_version(
    client: TestClient, runtime: Runtime
) -> None:
    # Shop domains are case-insensitive (the webhook and the shop endpoints lower-case them).
    # The active version bars A and B from the US, so a US order ships from C (9.50), whatever
    # case the channel writes the shop's domain in.
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    use(client, {"policy": "optimal", "eligibility": {"no_ship_to": {"a": ["US"], "b": ["US"]}}})
    assert [f["location_id"] for f in place(client, SHOP, "1", ("X", 1))["fulfilment_orders"]] == [
        "c"
    ]
    shouted = place(client, SHOP.upper(), "2", ("X", 1))
    assert [f["location_id"] for f in shouted["fulfilment_orders"]] == ["c"]


def test_two_versions_activated_at_once_leave_exactly_one_active(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5})
    registry = runtime.store.policies
    for rounds in range(10 if runtime.engine.dialect.name == "postgresql" else 3):
        with runtime.store.transaction() as tx:
            first, second = (
                routing_policies.create_draft(
                    tx,
                    SHOP,
                    PolicyDocument.from_dict({"policy": "optimal", "currency": "USD"}),
                    "race",
                    registry=registry,
                    now=T0,
                )
                for _ in range(2)
            )

        def go(version: int) -> None:
            with runtime.store.transaction() as tx:
                routing_policies.activate(tx, SHOP, version, registry=registry, now=T0)

        _together(functools.partial(go, first), functools.partial(go, second))
        with runtime.store.read() as conn:
            rp = t.routing_policies.c
            active = conn.execute(
                select(rp.version).where(rp.shop == SHOP, rp.status == "active")
            ).all()
        assert len(active) == 1, (rounds, active)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"document": {"policy": "optimal", "max_shipments": True}, "note": "x"}, "max_shipments"),
        (
            {"document": {"policy": "optimal", "locations": {"a": {"daily_capacity": True}}}},
            "daily_capacity",
        ),
        (
            {"document": {"policy": "optimal", "locations": {"a": {"daily_capacity": "5"}}}},
            "daily_capacity",
        ),
        ({"document": {"policy": "optimal"}, "note": "   "}, "note"),
    ],
)
def test_a_document_with_a_boolean_or_a_string_for_a_count_or_a_blank_note_is_refused(
    client: TestClient, runtime: Runtime, body: dict[str, Any], field: str
) -> None:
    # true is not a number of shipments, "5" is not a JSON integer, and a note of spaces is
    # not the required change note: each is invalid_input, and nothing is stored.
    network(runtime.engine, {("X", "a"): 5})
    body = {"note": "x", **body}
    answer = client.post(POLICIES, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_input"
    assert field in answer.json()["field"]
    assert client.get(POLICIES).json()["items"] == []


def test_a_shop_cannot_activate_or_experiment_with_another_shops_draft(
    client: TestClient, runtime: Runtime
) -> None:
    other = "other.myshopify.com"
    network(runtime.engine, {("X", "a"): 5})
    network(runtime.engine, {("X", "a"): 5}, shop=other)
    for _ in range(2):
        made = client.post(
            f"/v1/shops/{other}/routing-policies",
            json={"document": {"policy": "optimal"}, "note": "theirs"},
        )
        assert made.status_code == 201
    answer = client.post(f"{POLICIES}/1/activate")
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    trial = client.post(f"/v1/shops/{SHOP}/experiments", json={"arm_a": 1, "arm_b": 2})
    assert (trial.status_code, trial.json()["code"]) == (404, "not_found")
    theirs = client.get(f"/v1/shops/{other}/routing-policies").json()["items"]
    assert [v["status"] for v in theirs] == ["draft", "draft"]
