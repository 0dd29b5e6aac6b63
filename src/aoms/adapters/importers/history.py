"""Read a delivery history in the neutral format: CSV with a header, or JSON lines.

Columns / keys: external_id, origin_location_id | origin_country (+ origin_region),
destination_country, destination_region, service, ordered_at, shipped_at, delivered_at,
promised_at (ISO 8601 with a time zone). Empty CSV cells are missing values."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aoms.domain.errors import InvalidInput

COLUMNS = (
    "external_id",
    "origin_location_id",
    "origin_country",
    "origin_region",
    "destination_country",
    "destination_region",
    "service",
    "ordered_at",
    "shipped_at",
    "delivered_at",
    "promised_at",
)


def read_history(path: Path) -> Iterator[dict[str, Any]]:
    """Rows as dicts, missing values dropped. `.jsonl`/`.ndjson`/`.json` are JSON lines,
    anything else CSV."""
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file", field="file")
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{path}:{n}: not JSON: {exc.msg}", field="file") from exc
                if not isinstance(row, dict):
                    raise InvalidInput(f"{path}:{n}: each line must be an object", field="file")
                yield {k: v for k, v in row.items() if v not in (None, "")}
        return
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        unknown = set(reader.fieldnames or ()) - set(COLUMNS)
        if unknown:
            raise InvalidInput(
                f"{path}: unknown columns {sorted(unknown)}; known: {list(COLUMNS)}", field="file"
            )
        for row in reader:
            yield {k: v for k, v in row.items() if v not in (None, "")}
