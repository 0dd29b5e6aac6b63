"""What the hash-chained ledger costs, and how fast it verifies.

Replays the first N Olist orders through the services twice into fresh databases, on SQLite
and (with --db postgres) PostgreSQL: the baseline with the ledger's append switched off (the
movements are written the same way, nothing is chained), then as shipped. Prints the
throughput of both, their ratio, and the time `verify` takes per entry.

    .venv/bin/python benchmarks/bench_ledger.py [--orders 3000] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aoms.adapters.db import ledger
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.store import SqlStore, SqlTx
from aoms.adapters.importers import olist
from aoms.domain.routing import Policy
from aoms.entrypoints.replay import replay

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/olist/sample_8k_orders_cab-g_bravida-analytics-case"
)
PG = os.environ.get("AOMS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _database(kind: str, tmp: Path, label: str) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{label}.db'}", None
    name = f"aoms_bench_ledger_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(PG), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(PG).set(database=name).render_as_string(hide_password=False), (admin, name)


def _drop(handle: Any) -> None:
    if handle is not None:
        admin, name = handle
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    data = olist.load(SAMPLE, locations=8, cover=0.8)
    data = replace(data, orders=data.orders[: args.orders])
    shipped = ledger.flush
    result: dict[str, Any] = {"orders": len(data.orders), "db": args.db}
    with tempfile.TemporaryDirectory() as tmp:
        for label in ("baseline", "ledger"):
            url, handle = _database(args.db, Path(tmp), label)
            try:
                if label == "baseline":  # chain nothing: drop the queued entries at commit

                    def off(tx: SqlTx, now: Any) -> None:
                        tx.ledger_queue.clear()

                    ledger.flush = off  # type: ignore[assignment]
                run = replay(data, Policy.LANDED_COST, database_url=url)
                ledger.flush = shipped  # type: ignore[assignment]
                result[f"{label}_orders_per_s"] = round(run.throughput, 1)
                if label == "ledger":
                    engine = make_engine(url)
                    started = time.perf_counter()
                    verified = ledger.verify(SqlStore(engine))
                    seconds = time.perf_counter() - started
                    engine.dispose()
                    assert verified.ok, verified.broken
                    result["entries"] = verified.entries
                    result["verify_seconds"] = round(seconds, 3)
                    result["verify_entries_per_s"] = round(verified.entries / seconds)
            finally:
                ledger.flush = shipped  # type: ignore[assignment]
                _drop(handle)
    result["throughput_ratio_ledger_to_baseline"] = round(
        result["ledger_orders_per_s"] / result["baseline_orders_per_s"], 3
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
