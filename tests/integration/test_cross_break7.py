"""A wave that must not fill a capped location an order routed again today still takes; the
promise of an order a parcel of which left its only location; zone surcharges on a card priced
by distance; migrations and the demo in folders with a % in their names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aoms.adapters.db import schema as t
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from tests.builders import T0


def _made_on(runtime: Runtime, location: str, day_start: Any) -> int:
    """Fulfilment orders made at `location` on the day from `day_start`, not cancelled: what
    routing counts against its daily capacity (statements.shipped_since)."""
    f = t.fulfilment_orders.c
    with runtime.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    f.location_id == location,
                    f.created_at >= day_start,
                    f.created_at < day_start + timedelta(days=1),
                    f.status != "cancelled",
                )
            ).scalar_one()
        )


# -- services/waves.replan_wave: an order that keeps its place of an earlier day ---------------


def test_a_wave_does_not_fill_a_capped_location_an_order_routed_again_today_still_takes(
    runtime: Runtime,
) -> None:
    """A (at both customers' door) ships one parcel a day; B is 700 km east. Day 1, 23:00: W1
    goes to A. Day 2, 00:05: W1 is routed again and keeps A, on a fulfilment order made today,
    which routing counts in A's day 2: W2 then goes to B, A being full. The wave cannot give
    W2 A's place as well (W1 stays there, being cheapest at A): A would have two parcels of
    day 2 where routing allows one."""
    from tests.integration.test_waves_edges import (
        DAY_TWO,
        WAVE,
        a_capped_late_on_day_one,
        open_at,
        order_now,
        setup,
    )

    def post(ref: str, km: float) -> dict[str, Any]:
        return order_now(c, runtime, ref, km, ("X", 1))

    day_two = DAY_TWO
    setup(runtime, a=5, b=5)
    with a_capped_late_on_day_one(runtime) as c:
        w1 = post("W1", 0)
        assert open_at(c, w1["id"]) == ["a"]
        runtime.clock = lambda: day_two + timedelta(minutes=5)
        assert c.post(f"/v1/orders/{w1['id']}/route").status_code == 200
        assert open_at(c, w1["id"]) == ["a"]  # on a new FO, made on day 2
        assert _made_on(runtime, "a", day_two) == 1
        w2 = post("W2", 0)
        assert open_at(c, w2["id"]) == ["b"]  # routing: A has its one parcel of day 2
        since = (day_two - timedelta(hours=2)).isoformat()
        answer = c.post(WAVE, json={"since": since})
        assert answer.status_code == 200, answer.text
        assert _made_on(runtime, "a", day_two) <= 1, (
            answer.json(),
            open_at(c, w1["id"]),
            open_at(c, w2["id"]),
        )


# -- services/promises._promise: "it has not shipped" of a parcel that left ------------------


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def test_an_order_a_parcel_of_which_left_its_only_location_is_not_said_unshipped(
    client: TestClient, runtime: Runtime
) -> None:
    """Two X, both at A (one fulfilment order). One leaves A on the day; the other has not,
    thirty days on: the note is that part of it has not shipped, not that it has not."""
    from aoms.services import handoff
    from tests.integration.test_promise_api import HISTORY, _order, _setup

    _setup(client, runtime, {("X", "a"): 5, ("X", "b"): 5})
    assert client.post("/v1/delivery-history", json={"deliveries": HISTORY}).status_code == 200
    fit = client.post("/v1/promise-model/fit", json={"confidence": 0.5, "prior_weight": 0})
    assert fit.status_code == 201, fit.text
    order_id = _order(client, "PO-SOME", 2)
    order = client.get(f"/v1/orders/{order_id}").json()
    assert [f["location_id"] for f in order["fulfilment_orders"]] == ["a"]
    [line] = order["lines"]
    with runtime.store.transaction() as tx:
        assert handoff.ship_outside(tx.handoff(), order_id, T0, {line["line_no"]: 1}, "a") == 1
    fos = client.get(f"/v1/orders/{order_id}").json()["fulfilment_orders"]
    assert [f["status"] for f in fos] == ["partly_shipped"], fos
    runtime.clock = lambda: T0 + timedelta(days=30)
    answer = client.get(f"/v1/orders/{order_id}/promise").json()
    [note] = [n for n in answer["notes"] if "counted from today" in n]
    assert "part of it has not shipped" in note, note


# -- domain/shipping.ServiceCard.price: a km card's surcharges ------------------------------


def test_a_distance_card_charges_a_far_zone_surcharge_only_in_far_zones(tmp_path: Any) -> None:
    """07030 to 07030 is zone 1 (0 km). The card's ground is priced by km (up to 100 km:
    5.00); the carrier's `*` surcharge for zones 5 and beyond does not apply next door."""
    import json

    from typer.testing import CliRunner

    from aoms.entrypoints.cli import app

    card = "carrier,service,max_km,max_weight_g,price,currency,transit_days\n"
    card += "acme,local,100,1000,5.00,USD,1\nacme,local,2000,1000,9.00,USD,3\n"
    (tmp_path / "rates.csv").write_text(card)
    extra = "carrier,service,name,kind,threshold,amount,currency\n"
    extra += "acme,*,far_zone,zone_at_least,5,2.00,USD\n"
    (tmp_path / "extra.csv").write_text(extra)
    args = ["shipping", "quote", str(tmp_path / "rates.csv"), "07030", "07030", "--grams", "800",
            "--length-mm", "200", "--width-mm", "150", "--height-mm", "100",
            "--surcharges", str(tmp_path / "extra.csv")]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    [row] = [json.loads(x) for x in out.stdout.splitlines()]
    assert row["zone"] == 1, row
    assert "far_zone" not in row["charges"] and row["amount"] == "5.00", row


# -- adapters/db/migrate._config: the script location is interpolated too ------------------


def test_migrations_run_from_a_folder_with_a_percent_in_its_name(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from aoms.adapters.db import migrate
    from aoms.adapters.db.engine import make_engine

    here = tmp_path / "100% aoms" / "migrations"
    shutil.copytree(migrate.MIGRATIONS, here)
    monkeypatch.setattr(migrate, "MIGRATIONS", here)
    engine = make_engine(f"sqlite:///{tmp_path / 'aoms.db'}")
    try:
        migrate.upgrade(engine)
        assert migrate.is_current(engine)
    finally:
        engine.dispose()


# -- entrypoints/demo.run_demo: a database path is not a URL -------------------------------


def test_the_demo_runs_in_a_folder_whose_name_has_a_percent_escape(tmp_path: Any) -> None:
    import io
    import shlex
    import socket

    from rich.console import Console
    from sqlalchemy.engine import make_url

    from aoms.entrypoints.demo import run_demo

    folder = tmp_path / "p%41q"
    folder.mkdir()
    database = folder / "demo.db"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = io.StringIO()
    run_demo(orders=30, host="127.0.0.1", port=port, database=database, stay=False,
             console=Console(file=out, width=400))  # fmt: skip
    assert database.exists()
    [serve] = [x for x in out.getvalue().splitlines() if x.startswith("Serve it:")]
    words = shlex.split(serve.removeprefix("Serve it: "))
    assert make_url(words[words.index("--database-url") + 1]).database == str(database), serve
