"""`aoms handoff …`: connect locations to their 3PLs, hand off, poll file drops."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from aoms.config import Settings
from aoms.domain.errors import AomsError
from aoms.entrypoints.cli_common import json_default, say_error

handoff_app = typer.Typer(
    help="Hand fulfilment orders to warehouses and 3PLs (REST or file drop).",
    no_args_is_help=True,
)
console = Console(stderr=True)
DbUrl = Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")]


def _runtime(database_url: str | None) -> Any:
    from aoms.bootstrap import build

    settings = Settings(database_url=database_url) if database_url else Settings()
    runtime = build(settings)
    runtime.migrate()
    return runtime


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=json_default))


@handoff_app.command("connect")
def connect(
    location_id: Annotated[str, typer.Argument(help="The location the 3PL runs.")],
    secret: Annotated[str, typer.Option(envvar="AOMS_3PL_SECRET", help="HMAC key (16+ chars).")],
    base_url: Annotated[str | None, typer.Option(help="REST: the 3PL's base URL.")] = None,
    directory: Annotated[str | None, typer.Option(help="File drop: the location's folder.")] = None,
    database_url: DbUrl = None,
) -> None:
    """Say how a location's 3PL is reached: `--base-url` (REST) or `--directory` (files)."""
    from aoms.adapters.db.handoff import SqlHandoffStore

    if (base_url is None) == (directory is None):
        console.print("[red]give exactly one of --base-url and --directory[/]")
        raise typer.Exit(2)
    if len(secret) < 16:
        console.print("[red]the secret must have at least 16 characters[/]")
        raise typer.Exit(2)
    rt = _runtime(database_url)
    try:
        SqlHandoffStore(rt.store).set_connection(
            location_id,
            kind="rest" if base_url else "file",
            secret=secret,
            base_url=base_url,
            directory=directory,
            now=rt.clock(),
        )
    except AomsError as exc:
        say_error(exc)
        raise typer.Exit(1) from exc
    finally:
        rt.close()
    console.print(f"{location_id}: connected ({'rest' if base_url else 'file'})")


def _once(rt: Any) -> dict[str, Any]:
    from aoms.adapters.db.handoff import SqlHandoffStore
    from aoms.adapters.tpl import filedrop
    from aoms.adapters.tpl.channels import channels
    from aoms.services.handoff import send_pending

    store = SqlHandoffStore(rt.store)
    sent = send_pending(store, channels(rt.clock), clock=rt.clock).as_dict()
    files = [
        {
            "location_id": conn.location_id,
            "file": o.name,
            "kind": o.kind,
            "status": o.status,
            "detail": o.detail,
        }
        for conn in store.connections()
        if conn.kind == "file"
        for o in filedrop.poll(store, conn, rt.clock)
    ]
    return {"sent": sent, "files": files}


@handoff_app.command("run")
def run(
    every: Annotated[
        float, typer.Option(min=0.5, help="Seconds between passes (with --loop).")
    ] = 5.0,
    loop: Annotated[bool, typer.Option(help="Keep going until interrupted.")] = False,
    database_url: DbUrl = None,
) -> None:
    """Hand off what is ready, deliver cancel requests, and apply the files dropped in."""
    rt = _runtime(database_url)
    try:
        while True:
            _print(_once(rt))
            if not loop:
                break
            time.sleep(every)
    except KeyboardInterrupt:
        pass
    finally:
        rt.close()


@handoff_app.command("show")
def show(fo_id: Annotated[int, typer.Argument(min=1)], database_url: DbUrl = None) -> None:
    """A fulfilment order: state, lines, hand-off attempts, shipments."""
    from aoms.adapters.db.handoff import SqlHandoffStore

    rt = _runtime(database_url)
    try:
        found = SqlHandoffStore(rt.store).fulfilment_order(fo_id)
    finally:
        rt.close()
    if found is None:
        console.print(f"[red]not_found[/]: no fulfilment order {fo_id}")
        raise typer.Exit(1)
    _print(found)
