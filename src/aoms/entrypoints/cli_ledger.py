"""`aoms ledger`: prove the hash-chained ledger intact, and check the stock counters."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

ledger_app = typer.Typer(
    help="The hash-chained ledger of stock movements and decisions.", no_args_is_help=True
)
if TYPE_CHECKING:
    from aoms.bootstrap import Runtime

console = Console(stderr=True)
DatabaseUrl = Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")]


def _runtime(database_url: str | None) -> Runtime:
    from aoms.bootstrap import build
    from aoms.config import Settings

    settings = Settings(database_url=database_url) if database_url else Settings()
    return build(settings)


@ledger_app.command("verify")
def verify(
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Walk the chain from its first entry; exit 1 naming the first broken entry."""
    from aoms.adapters.db import ledger

    runtime = _runtime(database_url)
    try:
        result = ledger.verify(runtime.store)
    finally:
        runtime.close()
    out = {
        "ok": result.ok,
        "entries": result.entries,
        "stock_movements": result.movements,
        "head": result.head,
        "first_broken": None
        if result.broken is None
        else {"seq": result.broken.seq, "problem": result.broken.problem},
    }
    if as_json:
        typer.echo(json.dumps(out))
    elif result.broken is None:
        console.print(
            f"ledger intact: {result.entries} entries ({result.movements} stock movements), "
            f"head {result.head[:16]}…"
        )
    else:
        console.print(
            f"[red]ledger broken[/] at entry {result.broken.seq}: {result.broken.problem} "
            f"({result.entries} entries before it are intact)"
        )
    if result.broken is not None:
        raise typer.Exit(1)


@ledger_app.command("check-stock")
def check_stock(
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the breaches as JSON.")] = False,
) -> None:
    """Check every stock counter against its reservations and movements; exit 1 on a breach
    (each breach is also raised as a `stock.invariant_broken` event)."""
    from aoms.adapters.db.lifecycle import SqlStockCheck
    from aoms.services.stock_checks import check_stock as run

    runtime = _runtime(database_url)
    try:
        with runtime.store.transaction() as tx:
            found = run(SqlStockCheck(tx), now=runtime.clock())
    finally:
        runtime.close()
    rows = [
        {"sku": b.sku, "location_id": b.location_id, "invariant": b.invariant, "detail": b.detail}
        for b in found
    ]
    if as_json:
        typer.echo(json.dumps({"ok": not found, "breaches": rows}))
    elif not found:
        console.print("stock invariants hold")
    else:
        for b in found:
            console.print(f"[red]{b.invariant}[/] {b.sku} at {b.location_id}: {b.detail}")
    if found:
        raise typer.Exit(1)
