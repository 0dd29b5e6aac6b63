"""The one `aoms` command."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aoms.domain.errors import AomsError
from aoms.entrypoints import cli_shipping
from aoms.entrypoints.cli_common import console, say_error, settings_or_exit
from aoms.entrypoints.cli_handoff import handoff_app
from aoms.entrypoints.cli_lab import replay_app, simulate_app
from aoms.entrypoints.cli_ledger import ledger_app
from aoms.entrypoints.cli_promise import promise_app
from aoms.entrypoints.cli_returns import returns_app
from aoms.entrypoints.cli_shopify import shopify_app
from aoms.entrypoints.cli_users import users_app

app = typer.Typer(
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    help="aoms: automated order management for Shopify merchants.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(replay_app, name="replay")
app.add_typer(simulate_app, name="simulate")
app.add_typer(promise_app, name="promise")
app.add_typer(handoff_app, name="handoff")
app.add_typer(returns_app, name="returns")
app.add_typer(cli_shipping.app, name="shipping")
app.add_typer(ledger_app, name="ledger")
app.add_typer(shopify_app, name="shopify")
app.add_typer(users_app, name="users")
_settings = settings_or_exit  # the name sub-command modules have used


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
    workers: Annotated[
        bool, typer.Option(help="Run the inbox/outbox workers in this process (else: aoms worker).")
    ] = True,
) -> None:
    """Run the API (and by default the workers); migrates an empty database first."""
    import uvicorn

    from aoms.bootstrap import build
    from aoms.entrypoints.api.app import create_app

    settings = _settings(database_url=database_url, run_workers=workers)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(create_app(build(settings)), host=host, port=port, log_level="info")


@app.command()
def worker(
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Run only the workers: process stored webhooks and relay events (with serve --no-workers).

    Any number of workers may run against PostgreSQL: each delivery is claimed with a row lock.
    """
    import signal
    import threading

    from aoms.bootstrap import Workers, build

    settings = _settings(database_url=database_url)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    runtime = build(settings)
    runtime.migrate()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workers = Workers(runtime, dedicated=True)
    workers.start()
    console.print("aoms worker running; Ctrl-C to stop")
    stop.wait()
    workers.stop()
    runtime.close()


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Migrate the database to the latest schema."""
    from aoms.adapters.db import migrate
    from aoms.bootstrap import build

    runtime = build(_settings(database_url=database_url))
    runtime.migrate()
    console.print(f"database at revision {migrate.current_revision(runtime.engine)}")


@db_app.command("current")
def db_current(
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Print the database's schema revision and the latest one."""
    from aoms.adapters.db import migrate
    from aoms.bootstrap import build

    runtime = build(_settings(database_url=database_url))
    print(
        json.dumps(
            {
                "current": migrate.current_revision(runtime.engine),
                "head": migrate.head_revision(runtime.engine),
            }
        )
    )


@app.command()
def demo(
    orders: Annotated[int, typer.Option(min=1, max=100_000, help="Orders to generate.")] = 300,
    host: str = "127.0.0.1",
    port: int = 8000,
    database: Annotated[Path, typer.Option(help="SQLite file (recreated).")] = Path("aoms-demo.db"),
    stay: Annotated[bool, typer.Option(help="Keep the API running afterwards.")] = True,
) -> None:
    """Load the demo store, send signed Shopify webhooks through the API, and keep it running."""
    from aoms.entrypoints.demo import run_demo

    run_demo(orders=orders, host=host, port=port, database=database, stay=stay, console=Console())


def main() -> None:
    from sqlalchemy.exc import OperationalError

    try:
        app()
    except AomsError as exc:
        say_error(exc)
        sys.exit(2)
    except FileNotFoundError as exc:
        console.print(f"[red]not found[/]: {exc}")
        sys.exit(2)
    except OperationalError as exc:
        console.print(f"[red]database unavailable[/]: {str(exc.orig).strip().splitlines()[0]}")
        sys.exit(3)


if __name__ == "__main__":
    main()
