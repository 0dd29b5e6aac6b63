"""The README's examples/ files work as it says: the orders simulate against the demo store,
and the deliveries are a history the demo's network can learn from."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aoms.adapters.importers.history import read_history
from aoms.demo.orders import demo_store
from aoms.entrypoints.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_orders_simulate_against_the_demo_store() -> None:
    args = ["simulate", "orders", str(EXAMPLES / "orders.json"), "--policies",
            "nearest,optimal", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["orders"] == 24
    assert report["scenario"] == demo_store()["shop"]


def test_the_example_deliveries_come_from_the_demo_store_s_locations() -> None:
    rows = list(read_history(EXAMPLES / "deliveries.csv"))
    assert len(rows) == 120
    demo = {loc["id"] for loc in demo_store()["locations"]}
    assert {r["origin_location_id"] for r in rows} == demo
    assert all(r["delivered_at"] > r["ordered_at"] for r in rows)
