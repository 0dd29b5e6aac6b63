"""The promise commands end to end on a SQLite file: import a CSV history twice, then fit."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aoms.entrypoints.cli import app


def test_a_csv_history_is_imported_once_and_fitted_into_a_stored_model(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    # Lane BR-SP → BR-RJ: 2, 3 and 7 days (ordered 1–3 October, delivered 3, 5 and 10 October).
    history.write_text(
        "external_id,origin_country,origin_region,destination_country,destination_region,"
        "ordered_at,delivered_at\n"
        "o1,BR,SP,BR,RJ,2026-10-01T12:00:00Z,2026-10-03T12:00:00Z\n"
        "o2,BR,SP,BR,RJ,2026-10-02T12:00:00Z,2026-10-05T12:00:00Z\n"
        "o3,BR,SP,BR,RJ,2026-10-03T12:00:00Z,2026-10-10T12:00:00Z\n"
    )
    env = {"AOMS_DATABASE_URL": f"sqlite:///{tmp_path / 'aoms.db'}"}
    runner = CliRunner()
    first = runner.invoke(app, ["promise", "import", str(history)], env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"imported": 3, "duplicates": 0}
    again = runner.invoke(app, ["promise", "import", str(history)], env=env)
    assert json.loads(again.stdout) == {"imported": 0, "duplicates": 3}
    fitted = runner.invoke(
        app, ["promise", "fit", "--confidence", "0.6", "--prior-weight", "0"], env=env
    )
    assert fitted.exit_code == 0, fitted.output
    info = json.loads(fitted.stdout)
    assert (info["id"], info["deliveries"], info["lanes"], info["confidence"]) == (1, 3, 1, 0.6)


def test_a_bad_row_names_its_line_and_stores_nothing(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text(
        "origin_country,destination_country,ordered_at,delivered_at\n"
        "BR,BR,2026-10-01T12:00:00Z,2026-10-03T12:00:00Z\n"
        "BR,BR,yesterday,2026-10-03T12:00:00Z\n"
    )
    env = {"AOMS_DATABASE_URL": f"sqlite:///{tmp_path / 'aoms.db'}"}
    result = CliRunner().invoke(app, ["promise", "import", str(history)], env=env)
    assert result.exit_code == 2
    assert "row 2: ordered_at" in result.output
    assert not (tmp_path / "aoms.db").exists()  # refused before the database was opened
