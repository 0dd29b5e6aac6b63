"""`aoms users …`: the dashboard's users (add, set a password, list)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from aoms.config import Settings

if TYPE_CHECKING:
    from aoms.adapters.db.users import SqlUserStore
    from aoms.bootstrap import Runtime

users_app = typer.Typer(help="Dashboard users and their roles.", no_args_is_help=True)
console = Console()
DbOpt = Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        envvar="AOMS_NEW_USER_PASSWORD",
        help="The password (asked for when not given; at least 10 characters).",
    ),
]


def _store(database_url: str | None) -> tuple[Runtime, SqlUserStore]:
    from aoms.adapters.db.users import SqlUserStore
    from aoms.bootstrap import build

    try:
        settings = Settings(database_url=database_url) if database_url else Settings()
    except ValidationError as exc:
        console.print(f"[red]invalid settings[/]: {exc}")
        raise typer.Exit(2) from exc
    runtime = build(settings)
    runtime.migrate()
    return runtime, SqlUserStore(runtime.store)


def _password(password: str | None) -> str:
    if password is not None:
        return password
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@users_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="2–64 characters: letters, digits, . _ @ -")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "viewer",
    password: PasswordOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Add a dashboard user with a role: a viewer reads every page, an operator also acts on
    orders and stock, an admin also manages users."""
    from aoms.domain.users import Role

    parsed = Role.parse(role)
    runtime, store = _store(database_url)
    try:
        user = store.add_user(username, _password(password), parsed, runtime.clock())
    finally:
        runtime.close()
    console.print(f"added {user.username} ({user.role.label})")


@users_app.command("password")
def set_password(username: str, password: PasswordOpt = None, database_url: DbOpt = None) -> None:
    """Set a user's password (their open sessions end)."""
    runtime, store = _store(database_url)
    try:
        store.set_password(username, _password(password), runtime.clock())
    finally:
        runtime.close()
    console.print(f"password set for {username.strip().lower()}")


@users_app.command("list")
def list_users(
    database_url: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the users as JSON.")] = False,
) -> None:
    """List the dashboard's users."""
    runtime, store = _store(database_url)
    try:
        found = store.users()
    finally:
        runtime.close()
    if as_json:
        rows = [{"username": u.username, "role": u.role.label} for u in found]
        print(json.dumps({"users": rows}, indent=2))
        return
    table = Table(title="Dashboard users")
    table.add_column("username")
    table.add_column("role")
    for u in found:
        table.add_row(u.username, u.role.label)
    console.print(table)
