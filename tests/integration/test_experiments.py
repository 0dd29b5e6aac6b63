"""A/B experiments between two routing policy versions on live orders, over the HTTP API, on
SQLite and PostgreSQL.

Network of tests/builders.py: A at 50 km, C at 700 km east of the customer, handling 1.50,
500 g a unit. Version 1 bars A from the US, so it ships from C: 1 unit (500 g) 8.00 + 1.50 =
9.50, 3 units (1500 g) 11.00 + 1.50 = 12.50. Version 2 lets A ship: 1 unit 4.00 + 1.50 = 5.50,
3 units 6.00 + 1.50 = 7.50.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.bootstrap import Runtime
from aoms.domain.experiments import assign
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, network, place_order

SHOP = "shop.myshopify.com"
BASE = f"/v1/shops/{SHOP}"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    network(runtime.engine, {("X", "a"): 500, ("X", "c"): 500})
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        v1 = {"policy": "optimal", "eligibility": {"no_ship_to": {"a": ["US"]}}}
        c.post(f"{BASE}/routing-policies", json={"document": v1, "note": "control"})
        c.post(f"{BASE}/routing-policies", json={"document": {"policy": "optimal"}, "note": "A"})
        c.post(f"{BASE}/routing-policies/1/activate")
        yield c


def place(client: TestClient, external_id: str, quantity: int = 1) -> dict[str, Any]:
    order: dict[str, Any] = place_order(client, SHOP, external_id, ("X", quantity))
    return order


def start(client: TestClient, **body: Any) -> Any:
    return client.post(f"{BASE}/experiments", json={"arm_a": 1, "arm_b": 2, **body})


def test_orders_are_routed_by_their_arm_and_the_decision_records_it(
    client: TestClient, runtime: Runtime
) -> None:
    started = start(client, share_b=0.5, note="does letting A ship to the US pay?")
    assert started.status_code == 201
    exp = started.json()["id"]
    for i in range(12):
        order = place(client, f"o-{i}")
        decision = order["routing"][-1]
        arm = assign(exp, f"o-{i}", 0.5)
        assert (decision["experiment_id"], decision["arm"]) == (exp, arm)
        assert decision["policy_version"] == (2 if arm == "B" else 1)
        assert order["fulfilment_orders"][0]["location_id"] == ("a" if arm == "B" else "c")
        again = client.post(f"/v1/orders/{order['id']}/route").json()  # the same arm again
        assert again["routing"][-1]["arm"] == arm
    with runtime.store.read() as conn:
        names = conn.execute(select(t.outbox.c.name)).scalars().all()
    assert "routing_experiment.started" in names


def test_the_report_gives_each_arms_kpis_and_a_verdict_with_intervals(
    client: TestClient, runtime: Runtime
) -> None:
    exp = start(client, share_b=0.5).json()["id"]
    costs: dict[str, list[float]] = {"A": [], "B": []}
    for i in range(40):
        quantity = 3 if i % 3 == 0 else 1
        order = place(client, f"r-{i}", quantity)
        costs[order["routing"][-1]["arm"]].append(float(order["routing"][-1]["cost"]))
    one_cancelled = place(client, "r-cancelled")
    client.post(f"/v1/orders/{one_cancelled['id']}/cancel")  # left out of the report
    report = client.get(f"{BASE}/experiments/{exp}").json()
    arms = report["arms"]
    assert arms["A"]["orders"] + arms["B"]["orders"] == 40
    for arm in "AB":
        assert arms[arm]["orders"] == len(costs[arm])
        assert arms[arm]["mean_cost_per_order"] == pytest.approx(statistics.mean(costs[arm]))
        assert arms[arm]["split_shipment_rate"] == 0
        assert arms[arm]["backorder_rate"] == 0
    # Every B order is 4.00 or 5.00 cheaper than the A order of the same size.
    diff = report["cost_difference_b_minus_a"]
    expected = statistics.mean(costs["B"]) - statistics.mean(costs["A"])
    assert diff["estimate"] == pytest.approx(expected, abs=1e-4)
    assert diff["low"] < diff["estimate"] < diff["high"] < 0
    assert diff["significant"] is True
    assert report["split_rate_difference_b_minus_a"]["estimate"] == 0
    n_a, n_b = arms["A"]["orders"], arms["B"]["orders"]
    assert report["verdict"].startswith(f"B is cheaper by {-expected:.2f} USD per order (95% CI ")
    assert report["verdict"].endswith(f"n={n_a} (A) and {n_b} (B).")


def test_one_experiment_runs_at_a_time_and_stopping_returns_to_the_active_version(
    client: TestClient, runtime: Runtime
) -> None:
    exp = start(client, share_b=0.99).json()["id"]
    second = start(client)
    assert (second.status_code, second.json()["code"]) == (409, "conflict")
    stopped = client.post(f"{BASE}/experiments/{exp}/stop").json()
    assert (stopped["status"], stopped["changed"]) == ("stopped", True)
    assert client.post(f"{BASE}/experiments/{exp}/stop").json()["changed"] is False
    after = place(client, "after-stop")["routing"][-1]
    assert (after["experiment_id"], after["arm"], after["policy_version"]) == (None, None, 1)
    assert [e["id"] for e in client.get(f"{BASE}/experiments").json()["items"]] == [exp]
    assert start(client).status_code == 201  # a new one may start now


@pytest.mark.parametrize(
    "body, status, code, field",
    [
        ({"arm_b": 1}, 422, "invalid_input", "arm_b"),
        ({"arm_b": 9}, 404, "not_found", "arm_b"),
        ({"share_b": 1.0}, 422, "invalid_input", "share_b"),
        ({"share_b": 0}, 422, "invalid_input", "share_b"),
    ],
)
def test_bad_experiments_are_refused_with_a_code(
    client: TestClient, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    answer = start(client, **body)
    assert (answer.status_code, answer.json()["code"], answer.json()["field"]) == (
        status,
        code,
        field,
    )
    assert client.get(f"{BASE}/experiments").json()["items"] == []


def test_an_experiment_of_another_shop_is_not_found(client: TestClient) -> None:
    exp = start(client).json()["id"]
    answer = client.get(f"/v1/shops/other.example/experiments/{exp}")
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
