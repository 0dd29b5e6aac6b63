"""`aoms returns …`: the jobs of the returns flow that run on a schedule."""

from __future__ import annotations

import json
from typing import Annotated

import typer

returns_app = typer.Typer(help="Returns, refunds and exchanges.", no_args_is_help=True)


@returns_app.command("check-deadlines")
def check_deadlines(
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Flag instant exchanges whose return did not arrive by its deadline (run it daily): the
    replacement's price becomes due and `exchange.return_overdue` is emitted."""
    from aoms.adapters.db.returns import SqlReturnStore
    from aoms.bootstrap import build
    from aoms.config import Settings
    from aoms.services.returns import check_exchange_deadlines

    settings = Settings(database_url=database_url) if database_url else Settings()
    runtime = build(settings)
    try:
        runtime.migrate()
        with SqlReturnStore(runtime.store).writing() as rtx:
            overdue = check_exchange_deadlines(rtx, now=runtime.clock())
        print(json.dumps({"overdue": overdue}))
    finally:
        runtime.close()
