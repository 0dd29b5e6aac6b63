"""`aoms users` on a SQLite file: add users (password given or asked for), list them, set a
password; a taken name or an unknown role is refused with its code."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.store import SqlStore
from aoms.adapters.db.users import SqlUserStore
from aoms.domain.errors import Conflict, InvalidInput
from aoms.domain.users import Role
from aoms.entrypoints.cli import app


def test_users_are_added_listed_and_given_a_new_password(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aoms.db'}"
    env = {"AOMS_DATABASE_URL": url}
    runner = CliRunner()
    added = runner.invoke(
        app, ["users", "add", "Ops", "--role", "operator", "--password", "operator-pass-1"], env=env
    )
    assert added.exit_code == 0, added.output
    assert "added ops (operator)" in added.stdout
    asked = runner.invoke(app, ["users", "add", "vera"], env=env, input="viewer-pass-1\n" * 2)
    assert asked.exit_code == 0, asked.output
    listed = runner.invoke(app, ["users", "list"], env=env)
    assert "ops" in listed.stdout and "vera" in listed.stdout and "viewer" in listed.stdout
    as_json = runner.invoke(app, ["users", "list", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    assert sorted((u["username"], u["role"]) for u in json.loads(as_json.stdout)["users"]) == [
        ("ops", "operator"),
        ("vera", "viewer"),
    ]
    taken = runner.invoke(app, ["users", "add", "ops", "--password", "another-pass-1"], env=env)
    assert isinstance(taken.exception, Conflict)
    unknown = runner.invoke(app, ["users", "add", "x1", "--role", "root"], env=env)
    assert isinstance(unknown.exception, InvalidInput)
    assert unknown.exception.field == "role"
    changed = runner.invoke(
        app, ["users", "password", "ops", "--password", "brand-new-pass-1"], env=env
    )
    assert changed.exit_code == 0, changed.output
    engine = make_engine(url)
    users = SqlUserStore(SqlStore(engine))
    ops = users.authenticate("ops", "brand-new-pass-1")
    assert ops is not None and ops.role is Role.OPERATOR
    assert users.authenticate("ops", "operator-pass-1") is None
    vera = users.authenticate("vera", "viewer-pass-1")
    assert vera is not None and vera.role is Role.VIEWER
    engine.dispose()
