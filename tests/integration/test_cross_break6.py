"""A wave that swaps an order routed again today out of a capped location; promises of orders
partly shipped, shipped with a backorder, or shipped before their warehouse gave up the rest;
the demo's serve line and migrations under a path or password with brackets or a percent; a
distance card's missing price. On SQLite and PostgreSQL where a database is used."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from aoms.services import handoff
from tests.builders import T0
from tests.integration.test_promise_api import HISTORY, _order, _setup


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: T0
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def _fos(client: TestClient, order_id: int) -> list[dict[str, Any]]:
    return list(client.get(f"/v1/orders/{order_id}").json()["fulfilment_orders"])


# -- services/waves.replan_wave: `earlier` taken out of `own` ----------------------------------


def test_a_wave_may_swap_an_order_routed_again_today_out_of_a_capped_location(
    runtime: Runtime,
) -> None:
    """A (0 km from W2's customer) ships one parcel a day; B is 700 km east, at W1's customer.
    Day 1, 23:00: W1 goes to A (B is empty). Day 2, 00:05: W1 is routed again (B still empty):
    it keeps its place at A, on a new fulfilment order made today. B gets stock; W2 comes and A
    is full, so it goes to B. The wave should swap them (W1 to B, W2 to A: 11.00 instead of
    19.00): A then ships one parcel on day 2 (W2's), within its capacity; W2 must not be kept
    from A as if W1 still took A's place (which saved 4.00, not 8.00)."""
    from tests.integration.test_waves_edges import (
        DAY_TWO,
        WAVE,
        a_capped_late_on_day_one,
        open_at,
        order_now,
        setup,
    )

    def post(ref: str, km: float, *lines: tuple[str, int]) -> dict[str, Any]:
        return order_now(c, runtime, ref, km, *lines)

    day_two = DAY_TWO
    setup(runtime, a=5, b=0)
    with a_capped_late_on_day_one(runtime) as c:
        w1 = post("W1", 700, ("X", 1))
        assert open_at(c, w1["id"]) == ["a"]
        runtime.clock = lambda: day_two + timedelta(minutes=5)
        assert c.post(f"/v1/orders/{w1['id']}/route").status_code == 200
        assert open_at(c, w1["id"]) == ["a"]  # its place of day 1, on a new FO of day 2
        stock = {"sku": "X", "location_id": "b", "delta": 5, "reason": "receipt"}
        assert c.post("/v1/inventory/adjustments", json=stock).status_code == 200
        w2 = post("W2", 0, ("X", 1))
        assert open_at(c, w2["id"]) == ["b"]  # A has shipped its one parcel of day 2
        since = (day_two - timedelta(hours=2)).isoformat()
        answer = c.post(WAVE, json={"since": since})
        assert answer.status_code == 200, answer.text
        assert (open_at(c, w1["id"]), open_at(c, w2["id"])) == (["b"], ["a"]), answer.json()
        assert answer.json()["saved_minor"] == 800, answer.json()


# -- adapters/db/promises.order_to_promise: what shipped from a rejected FO --------------------


def test_a_parcel_that_left_before_its_warehouse_rejected_the_rest_is_in_the_promise(
    client: TestClient, runtime: Runtime
) -> None:
    """Two X, both at A (NJ→CA: 6 days). A ships one, then rejects the other, which goes to B
    (NY→CA: 3 days). The order arrives when A's parcel does: placed 2026-11-02, by 2026-11-08,
    not 2026-11-05 (B's alone)."""
    from aoms.adapters.db.handoff import SqlHandoffStore
    from aoms.domain.handoff import RejectReason
    from aoms.services.handoff_ports import Shipment

    _setup(client, runtime, {("X", "a"): 5, ("X", "b"): 5})
    assert client.post("/v1/delivery-history", json={"deliveries": HISTORY}).status_code == 200
    fit = client.post("/v1/promise-model/fit", json={"confidence": 0.5, "prior_weight": 0})
    assert fit.status_code == 201, fit.text
    order_id = _order(client, "PO-PART", 2)
    [fo_a] = [f["id"] for f in _fos(client, order_id) if f["location_id"] == "a"]
    assert client.get(f"/v1/orders/{order_id}/promise").json()["arrives_by"] == "2026-11-08"
    hstore = SqlHandoffStore(runtime.store)
    hstore.set_connection("a", kind="rest", secret="s" * 24, base_url="http://x", now=T0)
    with hstore.handoff_transaction() as htx:
        handoff.hand_off(htx, fo_a, T0)
    with hstore.handoff_transaction() as htx:
        handoff.ship(htx, fo_a, Shipment("3pl-1", {"X": 1}, T0), T0)
    with hstore.handoff_transaction() as htx:
        handoff.reject(htx, fo_a, RejectReason.OTHER, T0)
    statuses = {f["location_id"]: f["status"] for f in _fos(client, order_id)}
    assert statuses == {"a": "rejected", "b": "open"}, statuses
    answer = client.get(f"/v1/orders/{order_id}/promise").json()
    assert answer["arrives_by"] == "2026-11-08", answer


# -- services/promises._promise: the note when everything routed has shipped -------------------


def test_an_order_whose_shipments_all_left_is_not_said_unshipped_for_its_backorder(
    client: TestClient, runtime: Runtime
) -> None:
    """Three X, one at A: one ships from A, two are backordered. Thirty days on, the date
    (of A's parcel, which left) has passed: it is not 'not shipped'; the backorder note says
    the other two are not covered."""
    _setup(client, runtime, {("X", "a"): 1})
    assert client.post("/v1/delivery-history", json={"deliveries": HISTORY}).status_code == 200
    assert client.post("/v1/promise-model/fit", json={"prior_weight": 0}).status_code == 201
    order_id = _order(client, "PO-BACK", 3)
    assert client.get(f"/v1/orders/{order_id}").json()["status"] == "backordered"
    with runtime.store.transaction() as tx:
        assert handoff.ship_outside(tx.handoff(), order_id, T0) == 1
    assert [f["status"] for f in _fos(client, order_id)] == ["shipped"]
    runtime.clock = lambda: T0 + timedelta(days=30)
    answer = client.get(f"/v1/orders/{order_id}/promise")
    assert answer.status_code == 200, answer.text
    notes: list[str] = answer.json()["notes"]
    assert any("2 backordered unit(s)" in n for n in notes), notes
    assert not any("has not shipped" in n for n in notes), notes


# -- entrypoints/demo.py: the "Serve it:" line -------------------------------------------------


def test_the_serve_command_names_the_demo_database_whatever_its_folder(tmp_path: Any) -> None:
    import io
    import shlex
    import socket

    from rich.console import Console
    from sqlalchemy.engine import make_url

    from aoms.entrypoints.demo import run_demo

    folder = tmp_path / "demos [old]"
    folder.mkdir()
    database = folder / "demo.db"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = io.StringIO()
    run_demo(orders=30, host="127.0.0.1", port=port, database=database, stay=False,
             console=Console(file=out, width=400))  # fmt: skip
    [serve] = [x for x in out.getvalue().splitlines() if x.startswith("Serve it:")]
    words = shlex.split(serve.removeprefix("Serve it: "))
    assert make_url(words[words.index("--database-url") + 1]).database == str(database), serve


# -- adapters/db/migrate._config (met through the demo above) --------------------------------------


def test_a_distance_card_without_a_price_for_the_weight_names_its_km_band(tmp_path: Any) -> None:
    """Up to 100 km the card prices only up to 500 g; an 800 g parcel next door has no price
    there. The reason names the 100 km band, not a 'zone 100' no chart has."""
    from typer.testing import CliRunner

    from aoms.entrypoints.cli import app

    card = "carrier,service,max_km,max_weight_g,price,currency,transit_days\n"
    card += "acme,local,100,500,5.00,USD,1\nacme,local,500,1000,9.00,USD,2\n"
    (tmp_path / "rates.csv").write_text(card)
    args = ["shipping", "quote", str(tmp_path / "rates.csv"), "07030", "07030", "--grams", "800",
            "--length-mm", "200", "--width-mm", "150", "--height-mm", "100"]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 1 and out.stdout == ""
    assert "zone 100" not in out.stderr and "100 km" in out.stderr, out.stderr


# -- services/promises._promise: a partly shipped order counted from today ---------------------


def test_a_partly_shipped_order_counted_from_today_waits_only_for_what_has_not_left(
    client: TestClient, runtime: Runtime
) -> None:
    """Two X, one at A (NJ→CA: 6 days), one at B (NY→CA: 3 days). A's parcel leaves on the
    day. Thirty days on (2026-12-02) B's has not: counted from today the order arrives when
    B's would, 2026-12-05, not 2026-12-08 as if A's were still to leave."""
    _setup(client, runtime, {("X", "a"): 1, ("X", "b"): 1})
    assert client.post("/v1/delivery-history", json={"deliveries": HISTORY}).status_code == 200
    fit = client.post("/v1/promise-model/fit", json={"confidence": 0.5, "prior_weight": 0})
    assert fit.status_code == 201, fit.text
    order_id = _order(client, "PO-HALF", 2)
    assert sorted(f["location_id"] for f in _fos(client, order_id)) == ["a", "b"]
    [line] = client.get(f"/v1/orders/{order_id}").json()["lines"]
    with runtime.store.transaction() as tx:
        assert handoff.ship_outside(tx.handoff(), order_id, T0, {line["line_no"]: 1}, "a") == 1
    statuses = {f["location_id"]: f["status"] for f in _fos(client, order_id)}
    assert statuses == {"a": "shipped", "b": "open"}, statuses
    runtime.clock = lambda: T0 + timedelta(days=30)
    answer = client.get(f"/v1/orders/{order_id}/promise").json()
    assert answer["arrives_by"] == "2026-11-08", answer
    [note] = [n for n in answer["notes"] if "counted from today" in n]
    assert note.endswith("counted from today it would arrive by 2026-12-05"), note
