"""The neutral delivery-history file: CSV with a header or JSON lines."""

from pathlib import Path

import pytest

from aoms.adapters.importers.history import read_history
from aoms.domain.errors import InvalidInput


def test_csv_and_json_lines_read_the_same_rows_and_empty_cells_are_missing(
    tmp_path: Path,
) -> None:
    csv_file = tmp_path / "h.csv"
    csv_file.write_text(
        "external_id,origin_country,origin_region,destination_country,destination_region,"
        "service,ordered_at,delivered_at\n"
        "d1,US,NJ,US,CA,,2026-10-01T10:00:00Z,2026-10-04T10:00:00Z\n"
    )
    jsonl = tmp_path / "h.jsonl"
    jsonl.write_text(
        '{"external_id": "d1", "origin_country": "US", "origin_region": "NJ", '
        '"destination_country": "US", "destination_region": "CA", "service": null, '
        '"ordered_at": "2026-10-01T10:00:00Z", "delivered_at": "2026-10-04T10:00:00Z"}\n\n'
    )
    expected = {
        "external_id": "d1",
        "origin_country": "US",
        "origin_region": "NJ",
        "destination_country": "US",
        "destination_region": "CA",
        "ordered_at": "2026-10-01T10:00:00Z",
        "delivered_at": "2026-10-04T10:00:00Z",
    }
    assert list(read_history(csv_file)) == [expected]
    assert list(read_history(jsonl)) == [expected]


def test_an_unknown_column_or_a_broken_line_is_refused(tmp_path: Path) -> None:
    bad_csv = tmp_path / "h.csv"
    bad_csv.write_text("ordered_at,carrier\n2026-10-01T10:00:00Z,ups\n")
    with pytest.raises(InvalidInput, match="carrier"):
        list(read_history(bad_csv))
    bad_jsonl = tmp_path / "h.jsonl"
    bad_jsonl.write_text('{"ordered_at": "x"}\n[1, 2]\n')
    with pytest.raises(InvalidInput, match=r"h\.jsonl:2"):
        list(read_history(bad_jsonl))
