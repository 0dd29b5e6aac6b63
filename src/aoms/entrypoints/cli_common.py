"""What the `aoms` sub-commands share: the error console and the settings they start from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from aoms.config import Settings
from aoms.domain.errors import AomsError

console = Console(stderr=True)


def settings_or_exit(**overrides: Any) -> Settings:
    """The settings, with the options given on the command line; exits 2 if they are invalid."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        console.print(f"[red]invalid settings[/]: {exc}")
        raise typer.Exit(2) from exc


def json_default(value: Any) -> str:
    """For `json.dumps(default=...)`: dates and times as ISO 8601 (as the API writes them),
    anything else as its string."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def say_error(exc: AomsError) -> None:
    """An aoms error on stderr: its stable code, the field it is about (if any), the words."""
    where = f" ({escape(exc.field)})" if exc.field else ""  # the user's words, not markup
    console.print(f"[red]{exc.code}[/]{where}: {escape(exc.message)}", highlight=False)
