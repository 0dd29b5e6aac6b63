"""The ledger after replaying real Olist orders: `aoms ledger verify` proves it intact, and
names the entry of a stock movement someone edited by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from aoms.adapters.db import schema as t
from aoms.adapters.db.engine import make_engine
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


def verify(url: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aoms.entrypoints.cli",
            "ledger",
            "verify",
            "--json",
            "--database-url",
            url,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, json.loads(done.stdout)


def test_the_ledger_verifies_after_an_olist_replay_and_finds_a_hand_edit(tmp_path: Path) -> None:
    data = olist.load(SAMPLE, locations=8, cover=0.8)
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    run = replay(replace(data, orders=data.orders[:600]), Policy.LANDED_COST, database_url=url)
    assert run.kpis["orders"] == 600
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            movements = conn.execute(select(func.count()).select_from(t.stock_movements)).scalar()
            decisions = conn.execute(select(func.count()).select_from(t.routing_decisions)).scalar()
            victim = conn.execute(
                select(t.stock_movements.c.id)
                .where(t.stock_movements.c.reason == "reserve")
                .order_by(t.stock_movements.c.id)
                .offset(100)
                .limit(1)
            ).scalar_one()
            victim_seq = conn.execute(
                select(t.ledger_entries.c.seq).where(
                    t.ledger_entries.c.ref == f"stock_movement:{victim}"
                )
            ).scalar_one()
        code, report = verify(url)
        assert code == 0, report
        assert report["ok"] is True
        assert report["entries"] == movements + decisions  # initial counts, reservations, plans
        assert report["stock_movements"] == movements

        with engine.begin() as conn:  # someone "fixes" a reservation by hand
            conn.execute(
                update(t.stock_movements)
                .where(t.stock_movements.c.id == victim)
                .values(reserved_delta=t.stock_movements.c.reserved_delta + 1)
            )
    finally:
        engine.dispose()
    code, report = verify(url)
    assert code == 1
    assert report["first_broken"] == {
        "seq": victim_seq,
        "problem": f"stock movement {victim} no longer matches its entry (the row was edited)",
    }
