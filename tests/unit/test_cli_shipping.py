"""`aoms shipping` commands on real files in a temp dir."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from typer.testing import CliRunner

from aoms.entrypoints.cli import app
from tests.unit.test_table_rate import RATES

runner = CliRunner()


def test_zone_and_quote_from_the_shipped_chart(tmp_path: Path) -> None:
    out = runner.invoke(app, ["shipping", "zone", "07030", "02108"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {"origin": "07030", "destination": "02108", "zone": 3,
                                      "source": "chart"}  # fmt: skip
    (tmp_path / "rates.csv").write_text(RATES)
    args = ["shipping", "quote", str(tmp_path / "rates.csv"), "07030", "02108", "--grams", "800",
            "--length-mm", "200", "--width-mm", "150", "--height-mm", "100"]  # fmt: skip
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["service"], r["amount"]) for r in rows] == [("ground_advantage", "6.05"),
                                                          ("priority", "9.10")]  # fmt: skip


def test_a_parcel_the_card_does_not_price_is_said_so(tmp_path: Path) -> None:
    """The card prices zones 1 and 8 only; 07030 -> 02108 is zone 3 on the shipped chart."""
    card = "carrier,service,zone,max_weight_g,price,currency,transit_days\n"
    card += "acme,ground,1,1000,5.00,USD,2\nacme,ground,8,1000,9.00,USD,5\n"
    (tmp_path / "rates.csv").write_text(card)
    args = ["shipping", "quote", str(tmp_path / "rates.csv"), "07030", "02108", "--grams", "800",
            "--length-mm", "200", "--width-mm", "150", "--height-mm", "100"]  # fmt: skip
    out = runner.invoke(app, args)
    assert out.exit_code == 1 and out.stdout == ""
    assert "no quote: acme/ground: zone 3 is not on the card" in out.stderr


def test_build_zones_writes_the_compact_table(tmp_path: Path) -> None:
    src = tmp_path / "chart.csv"
    src.write_text("origin_zip,dest_zip,zone\n070,021,3\n070,103,1\n900,331,8\n070,90210,7\n")
    out = runner.invoke(app, ["shipping", "build-zones", str(src), str(tmp_path / "z.txt.gz")])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["pairs"] == 3  # the 5-digit exception is not kept
    lines = gzip.decompress((tmp_path / "z.txt.gz").read_bytes()).decode().splitlines()
    assert [x[:3] for x in lines] == ["070", "900"]
    assert lines[0][4 + 21] == "3" and lines[0][4 + 103] == "1" and lines[1][4 + 331] == "8"
