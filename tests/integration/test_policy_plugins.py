"""Routing policy plug-ins found through a real entry point (a dist-info on sys.path), chosen by
a shop's policy document and routing an order over the API, on SQLite and PostgreSQL.

Network of tests/builders.py: A at 50 km and C at 700 km east of the customer, handling 1.50;
one unit of 500 g costs 4.00 + 1.50 = 5.50 from A and 8.00 + 1.50 = 9.50 from C."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.adapters.plugins import load_routing_policies
from aoms.bootstrap import Runtime, build
from aoms.config import Settings
from aoms.domain.errors import UnknownPolicy
from aoms.domain.policies import PolicyRegistry
from aoms.entrypoints.api.app import create_app
from tests.builders import T0, network, place_order
from tests.conftest import SECRET

SHOP = "shop.myshopify.com"
POLICIES = f"/v1/shops/{SHOP}/routing-policies"

PLUGIN = '''
"""A merchant's own routing policies, shipped as their own package."""

from aoms.domain.geo import haversine_km
from aoms.domain.policies import plan_from


class FarthestFirst:
    """Ship the whole order from the farthest location that has all of it (a test policy
    that no built-in would choose)."""

    name = "farthest"

    def plan(self, demand, candidates, config, opportunity=None):
        whole = [
            c for c in candidates
            if all(c.available.get(k, 0) >= q for k, q in demand.units.items())
        ]
        whole.sort(key=lambda c: -haversine_km(c.point, demand.destination))
        taken = {whole[0].location_id: dict(demand.units)} if whole else {}
        return plan_from(self.name, demand, candidates, config, taken, "Farthest first.")


class Reckless:
    """Asks for ten times the order from the first candidate: aoms must refuse the plan."""

    name = "reckless"

    def plan(self, demand, candidates, config, opportunity=None):
        first = candidates[0].location_id
        taken = {first: {k: 10 * q for k, q in demand.units.items()}}
        demand = type(demand)(
            {k: 10 * q for k, q in demand.units.items()},
            demand.unit_grams, demand.destination, demand.currency,
        )
        return plan_from(self.name, demand, candidates, config, taken, "Everything from one.")


class Impostor(FarthestFirst):
    name = "optimal"
'''

ENTRY_POINTS = """
[aoms.routing_policies]
farthest = aoms_test_plugins:FarthestFirst
reckless = aoms_test_plugins:Reckless
missing = aoms_test_plugins:NoSuchPolicy
optimal = aoms_test_plugins:Impostor
"""


def install_plugin(root: Path) -> None:
    """What `pip install` leaves behind: the module and its dist-info with entry points."""
    (root / "aoms_test_plugins.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "aoms_test_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: aoms-test-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)


@pytest.fixture
def plugged(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    rt = build(Settings(database_url=db_url, shopify_webhook_secret=SECRET, run_workers=False))
    rt.clock = lambda: T0
    yield rt
    rt.close()


@pytest.fixture
def client(plugged: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(plugged, migrate_on_start=False)) as c:
        yield c


def place(client: TestClient, external_id: str) -> dict[str, Any]:
    order: dict[str, Any] = place_order(client, SHOP, external_id, ("X", 1))
    return order


def use(client: TestClient, policy: str) -> None:
    created = client.post(POLICIES, json={"document": {"policy": policy}, "note": policy})
    assert created.status_code == 201, created.text
    assert client.post(f"{POLICIES}/{created.json()['version']}/activate").status_code == 200


def test_installed_plug_ins_are_listed_and_broken_ones_say_why(client: TestClient) -> None:
    listed = client.get("/v1/routing-policies").json()["items"]
    items = {p["name"]: p for p in listed if "error" not in p}
    assert items["farthest"]["source"] == "aoms_test_plugins:FarthestFirst (aoms-test-plugins)"
    assert items["optimal"]["source"] == "builtin"  # a plug-in cannot take a built-in's name
    failed = {p["name"]: p["error"] for p in listed if "error" in p}
    assert set(failed) == {"missing", "optimal"}
    assert "NoSuchPolicy" in failed["missing"]
    assert "already registered" in failed["optimal"]


def test_a_plug_in_chosen_by_the_shops_document_routes_an_order(
    client: TestClient, plugged: Runtime
) -> None:
    network(plugged.engine, {("X", "a"): 5, ("X", "c"): 5})
    assert place(client, "1")["fulfilment_orders"][0]["location_id"] == "a"  # landed_cost
    use(client, "farthest")
    order = place(client, "2")
    assert order["status"] == "routed"
    assert [(f["location_id"], f["items"]) for f in order["fulfilment_orders"]] == [("c", {"X": 1})]
    decision = order["routing"][-1]
    assert (decision["policy"], decision["policy_version"], decision["cost"]) == (
        "farthest",
        1,
        "9.50",
    )
    assert decision["explanation"].startswith("Farthest first.")


def test_a_plug_in_that_asks_for_more_than_is_there_reserves_nothing(
    client: TestClient, plugged: Runtime
) -> None:
    network(plugged.engine, {("X", "a"): 5, ("X", "c"): 5})
    use(client, "reckless")
    order = place(client, "1")
    assert order["status"] == "unroutable"
    assert order["reservations"] == [] and order["fulfilment_orders"] == []
    assert (
        "reckless ships 10 × X from a, which has 5 available"
        in (order["routing"][-1]["explanation"])
    )
    with plugged.store.read() as conn:
        reserved = conn.execute(select(t.stock_levels.c.reserved)).scalars().all()
    assert list(reserved) == [0, 0]


def test_without_the_plug_in_installed_a_document_may_not_name_it(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5})
    with TestClient(create_app(runtime, migrate_on_start=False)) as plain:
        answer = plain.post(POLICIES, json={"document": {"policy": "farthest"}, "note": "x"})
    assert (answer.status_code, answer.json()["code"]) == (422, "unknown_routing_policy")


def test_the_loader_finds_nothing_in_a_group_nobody_offers() -> None:
    registry = PolicyRegistry()
    assert load_routing_policies(registry, group="aoms.no_such_group") == []
    assert registry.names() == ["landed_cost", "nearest", "optimal", "shopify_default"]
    with pytest.raises(UnknownPolicy):
        registry.get("farthest")


def test_an_order_waits_unroutable_when_its_shops_plug_in_is_no_longer_installed(
    client: TestClient, plugged: Runtime, db_url: str
) -> None:
    network(plugged.engine, {("X", "a"): 5})
    use(client, "farthest")
    without = build(Settings(database_url=db_url, shopify_webhook_secret=SECRET, run_workers=False))
    without.store.policies = PolicyRegistry()  # as after the plug-in was uninstalled
    try:
        with TestClient(create_app(without, migrate_on_start=False)) as plain:
            order = place(plain, "1")
    finally:
        without.close()
    assert order["status"] == "unroutable"
    assert order["reservations"] == []
    assert "no routing policy named 'farthest'" in order["routing"][-1]["explanation"]
