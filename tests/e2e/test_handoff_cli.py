"""`aoms handoff` end to end on a SQLite file and a real drop directory."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aoms.adapters.db import migrate
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.store import SqlStore
from aoms.adapters.geocode import geocode
from aoms.entrypoints.cli import app
from aoms.services import orders
from tests.builders import T0, network, order


def test_connect_run_and_show_a_file_drop_location(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aoms.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    network(engine, {("X", "a"): 4})
    with SqlStore(engine).transaction() as tx:
        orders.receive_order(tx, order(("X", 1)), geocode=geocode, now=T0)
    engine.dispose()
    env = {"AOMS_DATABASE_URL": url}
    runner = CliRunner()
    drop = tmp_path / "drop-a"
    bad = runner.invoke(app, ["handoff", "connect", "a", "--secret", "short"], env=env)
    assert bad.exit_code == 2
    done = runner.invoke(
        app, ["handoff", "connect", "a", "--secret", "x" * 20, "--directory", str(drop)], env=env
    )
    assert done.exit_code == 0, done.output
    first = runner.invoke(app, ["handoff", "run"], env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["sent"]["claimed"] == 1
    assert (drop / "outbound" / "fo-1.csv").exists()
    (drop / "inbound").mkdir()
    (drop / "inbound" / "shipments-1.csv").write_text(
        "fulfilment_order_id,shipment_id,sku,quantity,shipped_at\n1,S1,X,1,2026-11-02T13:00:00Z\n"
    )
    second = runner.invoke(app, ["handoff", "run"], env=env)
    [applied] = json.loads(second.stdout)["files"]
    assert (applied["file"], applied["status"]) == ("shipments-1.csv", "processed")
    shown = runner.invoke(app, ["handoff", "show", "1"], env=env)
    assert json.loads(shown.stdout)["status"] == "shipped"
    missing = runner.invoke(app, ["handoff", "show", "99"], env=env)
    assert missing.exit_code == 1
