"""Replaying real Olist orders: the network is built as documented and nothing oversells."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from aoms.adapters.importers import olist
from aoms.domain.routing import Policy
from aoms.entrypoints.replay import replay

SAMPLE = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "olist"
    / "sample_8k_orders_cab-g_bravida-analytics-case"
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not SAMPLE.exists(), reason="../shared/data/olist is not beside the checkout"
    ),
]


@pytest.fixture(scope="module")
def data() -> olist.OlistData:
    return olist.load(SAMPLE, locations=8, cover=0.8)


def test_each_products_stock_is_its_demand_times_cover(data: olist.OlistData) -> None:
    units: Counter[str] = Counter()
    with (SAMPLE / "olist_order_items_dataset.csv").open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            units[row["product_id"]] += 1
    stocked: Counter[str] = Counter()
    for (sku, _), n in data.stock.items():
        stocked[sku] += n
    assert stocked == Counter({p: round(n * 0.8) for p, n in units.items() if round(n * 0.8)})
    assert [loc.id for loc in data.locations][:3] == ["sp", "pr", "mg"]  # most sellers first
    assert len(data.orders) + sum(data.skipped.values()) == 8135


def test_a_scarce_replay_backorders_but_never_oversells(data: olist.OlistData) -> None:
    run = replay(replace(data, orders=data.orders[:1500]), Policy.LANDED_COST)
    k = run.kpis
    assert k["orders"] == 1500
    assert k["oversold_units"] == 0
    assert k["routed"] + k["backordered_orders"] + k["unroutable"] == 1500
    assert k["units"] == sum(sum(ln.quantity for ln in o.lines) for o in data.orders[:1500])


def test_the_cli_replays_every_order_under_both_policies() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aoms.entrypoints.cli", "replay", "olist", str(SAMPLE), "--json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["orders_in_file"] == 8135
    for kpis in report["policies"].values():
        assert kpis["oversold_units"] == 0
        assert kpis["orders"] == 8135 - sum(report["orders_not_replayed"].values())
    assert report["comparison"]["cost_ratio_shopify_default_to_landed_cost"] > 0
