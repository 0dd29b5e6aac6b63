"""Plug-in policies that misbehave, routed over the API on SQLite and PostgreSQL.

Network of tests/builders.py: A at 50 km, B at 80 km and C at 700 km east of the customer,
handling 1.50; one unit of 500 g costs 4.00 + 1.50 = 5.50 from A or B, 8.00 + 1.50 from C."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.domain import routing
from aoms.domain.policies import plan_from
from aoms.domain.routing import Option, RoutingPlan, Shipment
from aoms.entrypoints.api.app import create_app
from tests import builders
from tests.builders import T0, network

SHOP = "shop.myshopify.com"
POLICIES = f"/v1/shops/{SHOP}/routing-policies"


class Crashing:
    """A plug-in with a bug: it raises on every order."""

    name = "crashing"

    def plan(self, demand, candidates, config, opportunity=None):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("division by zero")


class ReturnsNothing:
    """A plug-in with a bug: it forgets to return the plan."""

    name = "returns_nothing"

    def plan(self, demand, candidates, config, opportunity=None):  # type: ignore[no-untyped-def]
        return None


class SplitsGroups:
    """Ships each SKU from a different location, ignoring the ship-together groups it is given."""

    name = "splits_groups"

    def plan(self, demand, candidates, config, opportunity=None):  # type: ignore[no-untyped-def]
        by_id = {c.location_id: c for c in candidates}
        taken = {"a": {"K1": demand.units["K1"]}, "b": {"K2": demand.units["K2"]}}
        assert set(taken) <= set(by_id)
        return plan_from(self.name, demand, candidates, config, taken, "Split.")


class EmptyShipment:
    """Adds a shipment with no items (a parcel of nothing) from location B."""

    name = "empty_shipment"

    def plan(self, demand, candidates, config, opportunity=None):  # type: ignore[no-untyped-def]
        base = plan_from(self.name, demand, candidates, config, {"a": dict(demand.units)}, "x")
        b = next(c for c in candidates if c.location_id == "b")
        ghost = Shipment("b", b.name, {}, 80.0, 0, base.chosen.cost * 0, b.handling)
        chosen = base.chosen
        option = Option((*chosen.shipments, ghost), chosen.backordered, chosen.units, chosen.cost)
        return RoutingPlan(self.name, option, (), 1, "with a ghost")


class FreeLunch:
    """Ships the order from C (9.50) but says the plan costs nothing, and that it is `optimal`."""

    name = "free_lunch"

    def plan(self, demand, candidates, config, opportunity=None):  # type: ignore[no-untyped-def]
        base = plan_from(self.name, demand, candidates, config, {"c": dict(demand.units)}, "x")
        chosen = base.chosen
        option = Option(chosen.shipments, {}, chosen.units, chosen.cost * 0)
        return RoutingPlan("optimal", option, (), 1, "Cheapest there is.")


class CrashesOnBad:
    """Routes as landed_cost, but has a bug on orders with the SKU BAD."""

    name = "crashes_on_bad"

    def plan(self, demand, candidates, config, opportunity=None):  # type: ignore[no-untyped-def]
        if "BAD" in demand.units:
            raise RuntimeError("bug")
        return routing.plan(demand, candidates, routing.Policy.LANDED_COST, config)


class HalfUnits:
    """Ships 1.5 units of the order's 2 from A (a quantity no parcel can hold)."""

    name = "half_units"

    def plan(self, demand, candidates, config, opportunity=None):  # type: ignore[no-untyped-def]
        return plan_from(self.name, demand, candidates, config, {"a": {"X": 1.5}}, "Half.")


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    for policy in (
        Crashing(),
        ReturnsNothing(),
        SplitsGroups(),
        EmptyShipment(),
        FreeLunch(),
        CrashesOnBad(),
        HalfUnits(),
    ):
        runtime.store.policies.register(policy, source="code")
    with TestClient(
        create_app(runtime, migrate_on_start=False), raise_server_exceptions=False
    ) as c:
        yield c


def use(client: TestClient, document: dict[str, Any]) -> None:
    created = client.post(POLICIES, json={"document": document, "note": "x"})
    assert created.status_code == 201, created.text
    assert client.post(f"{POLICIES}/{created.json()['version']}/activate").status_code == 200


def post_order(client: TestClient, external_id: str, *lines: tuple[str, int]) -> Any:
    return builders.post_order(client, SHOP, external_id, *lines)


@pytest.mark.parametrize("policy", ["crashing", "returns_nothing"])
def test_an_order_routed_by_a_broken_plug_in_is_kept_and_waits_unroutable(
    client: TestClient, runtime: Runtime, policy: str
) -> None:
    # The docs: a plan aoms cannot use leaves the order unroutable, holding nothing. A plug-in
    # that raises (or returns no plan) must not lose the order with a 500.
    network(runtime.engine, {("X", "a"): 5})
    use(client, {"policy": policy})
    answer = post_order(client, "1", ("X", 1))
    assert answer.status_code == 201, answer.text
    assert answer.json()["order"]["status"] == "unroutable"


def test_a_plug_in_may_not_split_a_ship_together_group(
    client: TestClient, runtime: Runtime
) -> None:
    # K1 and K2 must leave from one location; A has both. The plug-in ships K1 from A and K2
    # from B: aoms checks plans before it reserves, so this one must not be reserved as is.
    network(runtime.engine, {("K1", "a"): 1, ("K2", "a"): 1, ("K1", "b"): 1, ("K2", "b"): 1})
    use(client, {"policy": "splits_groups", "eligibility": {"ship_together": [["K1", "K2"]]}})
    answer = post_order(client, "1", ("K1", 1), ("K2", 1))
    assert answer.status_code == 201, answer.text
    shipped = {f["location_id"] for f in answer.json()["order"]["fulfilment_orders"]}
    assert len(shipped) <= 1, shipped  # one location, or refused (unroutable, nothing shipped)


def test_a_plug_ins_empty_shipment_is_not_a_fulfilment_order(
    client: TestClient, runtime: Runtime
) -> None:
    # A shipment of no items is no shipment: it must not open a fulfilment order at B nor
    # take one of B's shipments of the day.
    network(runtime.engine, {("X", "a"): 5, ("X", "b"): 5})
    use(client, {"policy": "empty_shipment"})
    answer = post_order(client, "1", ("X", 1))
    assert answer.status_code == 201, answer.text
    order = answer.json()["order"]
    locations = sorted(f["location_id"] for f in order["fulfilment_orders"])
    assert locations in (["a"], []), locations


def test_a_plug_in_cannot_understate_what_its_plan_costs_nor_pass_for_a_built_in(
    client: TestClient, runtime: Runtime
) -> None:
    # The decision's cost is the landed cost the A/B report averages: C ships it, 8.00
    # shipping + 1.50 handling = 9.50 whatever the plug-in claims; and the decision names the
    # policy that made it.
    network(runtime.engine, {("X", "a"): 5, ("X", "c"): 5})
    use(client, {"policy": "free_lunch"})
    answer = post_order(client, "1", ("X", 1))
    assert answer.status_code == 201, answer.text
    decision = answer.json()["order"]["routing"][-1]
    assert (decision["policy"], decision["cost"]) == ("free_lunch", "9.50")


def test_stock_arriving_reaches_the_orders_behind_one_a_plug_in_cannot_route(
    client: TestClient, runtime: Runtime
) -> None:
    # Two orders wait for X (none in stock): #1 (X and BAD, older) and #2 (X). Then the shop's
    # plug-in starts failing on BAD, and 5 X arrive at A. The adjustment is committed, and
    # "an order that fails is counted and skipped, never blocking the ones behind it": #2
    # gets its X, and the answer is 200; #1, which the plug-in cannot route, waits unroutable.
    network(runtime.engine, {("X", "a"): 0, ("BAD", "a"): 0})
    first = post_order(client, "1", ("X", 1), ("BAD", 1)).json()["order"]
    second = post_order(client, "2", ("X", 1)).json()["order"]
    assert (first["status"], second["status"]) == ("backordered", "backordered")
    use(client, {"policy": "crashes_on_bad"})
    answer = client.post(
        "/v1/inventory/adjustments",
        json={"sku": "X", "location_id": "a", "reason": "received", "delta": 5},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["rerouted"] == {"unroutable": 1, "routed": 1}
    assert client.get(f"/v1/orders/{second['id']}").json()["status"] == "routed"


def test_a_plug_in_that_ships_half_a_unit_reserves_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    # Units are whole: a plan shipping 1.5 × X must be refused (unroutable, nothing held),
    # not rounded into a reservation.
    network(runtime.engine, {("X", "a"): 2})
    use(client, {"policy": "half_units"})
    answer = post_order(client, "1", ("X", 2))
    assert answer.status_code == 201, answer.text
    order = answer.json()["order"]
    assert (order["status"], order["reservations"]) == ("unroutable", [])
