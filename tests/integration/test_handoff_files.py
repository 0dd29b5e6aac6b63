"""The file-drop adapter on real files in a temporary directory, on SQLite and PostgreSQL.

Network (tests.builders): A 50 km from the customer, B 80 km; A holds 10 X and 4 Y, B 5 X and
5 Y. Location A's 3PL works by files in <tmp>/a.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.geocode import geocode
from aoms.adapters.tpl import filedrop
from aoms.adapters.tpl.channels import channels
from aoms.bootstrap import Runtime
from aoms.services import handoff as svc
from aoms.services import orders
from tests.builders import T0, later, network, order
from tests.integration.test_handoff import assert_nothing_stuck, movements, stock

HEAD = "fulfilment_order_id,shipment_id,sku,quantity,shipped_at,tracking_number,carrier\n"


@dataclass
class Drop:
    rt: Runtime
    hstore: SqlHandoffStore
    root: Path

    def send(self) -> dict[str, Any]:
        return svc.send_pending(self.hstore, channels(self.rt.clock), clock=self.rt.clock).as_dict()

    def poll(self) -> list[filedrop.FileOutcome]:
        conn = self.hstore.connection("a")
        assert conn is not None
        return filedrop.poll(self.hstore, conn, self.rt.clock)

    def drop(self, name: str, text: str) -> Path:
        path = self.root / "inbound" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def handed_off(self, *lines: tuple[str, int]) -> tuple[int, int]:
        with self.rt.store.transaction() as tx:
            oid = orders.receive_order(tx, order(*lines), geocode=geocode, now=T0).order_id
        assert self.send()["claimed"] == 1
        with self.hstore.handoff_transaction() as htx:
            [fo] = htx.order_fos(oid)
        return oid, fo.id


@pytest.fixture
def drop(runtime: Runtime, tmp_path: Path) -> Drop:
    runtime.clock = lambda: later(10)
    network(runtime.engine, {("X", "a"): 10, ("Y", "a"): 4, ("X", "b"): 5, ("Y", "b"): 5})
    hstore = SqlHandoffStore(runtime.store)
    root = tmp_path / "a"
    hstore.set_connection(
        "a", kind="file", secret="unused-for-files-0000", directory=str(root), now=T0
    )
    return Drop(runtime, hstore, root)


def test_an_fo_is_written_out_as_csv_one_row_per_line(drop: Drop) -> None:
    _, fo_id = drop.handed_off(("X", 3), ("Y", 1))
    path = drop.root / "outbound" / f"fo-{fo_id}.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["line_no"], r["sku"], r["quantity"]) for r in rows] == [
        ("1", "X", "3"),
        ("2", "Y", "1"),
    ]
    assert {r["fulfilment_order_id"] for r in rows} == {str(fo_id)}
    assert rows[0]["ship_country"] == "US"
    assert list(drop.root.joinpath("outbound").iterdir()) == [path]  # no temp file left


def test_shipment_files_apply_once_and_a_redelivered_file_changes_nothing(drop: Drop) -> None:
    _, fo_id = drop.handed_off(("X", 3), ("Y", 1))
    text = HEAD + f"{fo_id},S-1,X,2,2026-11-02T15:00:00+00:00,1Z1,UPS\n"
    drop.drop("shipments-001.csv", text)
    [first] = drop.poll()
    assert (first.status, first.kind) == ("processed", "shipments")
    assert stock(drop.rt)[("X", "a")] == (8, 1)
    assert (drop.root / "inbound" / "processed" / "shipments-001.csv").exists()
    count = movements(drop.rt)

    drop.drop("shipments-001.csv", text)  # the 3PL sends the same file again
    [again] = drop.poll()
    assert again.status == "duplicate"
    assert (stock(drop.rt)[("X", "a")], movements(drop.rt)) == ((8, 1), count)
    assert (drop.root / "inbound" / "processed" / "shipments-001.1.csv").exists()

    rest = (
        HEAD
        + f"{fo_id},S-2,X,1,2026-11-02T16:00:00+00:00,1Z2,UPS\n"
        + f"{fo_id},S-2,Y,1,2026-11-02T16:00:00+00:00,1Z2,UPS\n"
    )
    drop.drop("shipments-002.csv", rest)
    assert [o.status for o in drop.poll()] == ["processed"]
    assert stock(drop.rt) == {
        ("X", "a"): (7, 0),
        ("Y", "a"): (3, 0),
        ("X", "b"): (5, 0),
        ("Y", "b"): (5, 0),
    }
    assert drop.hstore.fulfilment_order(fo_id)["status"] == "shipped"  # type: ignore[index]
    assert list((drop.root / "inbound").glob("*.csv")) == []
    assert_nothing_stuck(drop.rt)


def test_a_bad_file_goes_to_failed_with_its_error_and_nothing_of_it_is_applied(
    drop: Drop,
) -> None:
    _, fo_id = drop.handed_off(("X", 3))
    before = (stock(drop.rt), movements(drop.rt))
    # the first row is fine, the second ships more than was asked: the whole file is refused
    drop.drop(
        "shipments-003.csv",
        HEAD + f"{fo_id},S-1,X,1,2026-11-02T15:00:00+00:00,,\n"
        f"{fo_id},S-2,X,5,2026-11-02T15:00:00+00:00,,\n",
    )
    drop.drop("stock-001.csv", "sku,on_hand\nX,12\nY,-3\n")
    drop.drop("hello.csv", "a,b\n1,2\n")
    drop.drop(".shipments-upload.csv", "still being written")
    outcomes = {o.name: o for o in drop.poll()}
    assert set(outcomes) == {"shipments-003.csv", "stock-001.csv", "hello.csv"}
    assert all(o.status == "failed" for o in outcomes.values())
    failed = drop.root / "inbound" / "failed"
    assert (failed / "shipments-003.csv.error.txt").read_text().startswith("over_shipment:")
    assert (
        "row 3: on_hand must be a whole number" in (failed / "stock-001.csv.error.txt").read_text()
    )
    assert "must start with one of" in outcomes["hello.csv"].detail
    assert (drop.root / "inbound" / ".shipments-upload.csv").exists()  # left alone
    assert (stock(drop.rt), movements(drop.rt)) == before


def test_stock_counts_set_on_hand_once_per_file(drop: Drop) -> None:
    drop.drop("stock-2026-11-02.csv", "sku,on_hand,reference\nX,12,cycle count 7\nZ,3,\n")
    [done] = drop.poll()
    assert (done.status, done.detail) == ("processed", "2 stock count(s) applied")
    levels = stock(drop.rt)
    assert (levels[("X", "a")], levels[("Z", "a")]) == ((12, 0), (3, 0))
    drop.drop("stock-2026-11-02.csv", "sku,on_hand,reference\nX,12,cycle count 7\nZ,3,\n")
    assert drop.poll()[0].status == "duplicate"
    assert stock(drop.rt) == levels


def test_a_rejection_file_zeroes_the_sku_and_routes_the_lines_elsewhere(drop: Drop) -> None:
    oid, fo_id = drop.handed_off(("X", 2), ("Y", 1))
    drop.drop(
        "rejections-1.csv",
        f"fulfilment_order_id,reason,sku,quantity,note\n{fo_id},not_in_stock,Y,,shelf empty\n",
    )
    [done] = drop.poll()
    assert done.status == "processed", done.detail
    # Y at A: available 0 (on_hand 4 → 0). X at A is not concerned: still 10.
    assert stock(drop.rt) == {
        ("X", "a"): (10, 0),
        ("Y", "a"): (0, 0),
        ("X", "b"): (5, 2),
        ("Y", "b"): (5, 1),
    }
    with drop.hstore.handoff_transaction() as htx:
        assert [(f.location_id, f.status.value) for f in htx.order_fos(oid)] == [
            ("a", "rejected"),
            ("b", "open"),
        ]


def test_cancel_after_hand_off_by_files(drop: Drop) -> None:
    _, fo_id = drop.handed_off(("X", 2))
    with drop.hstore.handoff_transaction() as htx:
        svc.request_cancel(htx, fo_id, drop.rt.clock())
    assert drop.send()["cancels_sent"] == 1
    assert (
        (drop.root / "outbound" / f"cancel-{fo_id}.csv")
        .read_text()
        .startswith("fulfilment_order_id,requested_at")
    )
    drop.drop("cancellations-1.csv", f"fulfilment_order_id,status\n{fo_id},cancelled\n")
    assert drop.poll()[0].status == "processed"
    assert stock(drop.rt)[("X", "a")] == (10, 0)
    assert drop.hstore.fulfilment_order(fo_id)["status"] == "cancelled"  # type: ignore[index]
