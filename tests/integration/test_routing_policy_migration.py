"""The routing-policy migration (0002) goes down and up again on SQLite and PostgreSQL,
with data in its tables, and leaves exactly the schema in code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from aoms.adapters.db import migrate
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.schema import metadata
from tests.conftest import PG_URL


def _go(engine: Engine, how: str, revision: str) -> None:
    cfg = migrate._config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, how)(cfg, revision)


@pytest.fixture(params=["sqlite", "postgres"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'rt.db'}")
        yield engine
        engine.dispose()
        return
    admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = f"aoms_rt_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no PostgreSQL here
        admin.dispose()
        pytest.skip(f"PostgreSQL is not available: {exc}")
    engine = make_engine(make_url(PG_URL).set(database=name).render_as_string(False))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_the_routing_policy_migration_goes_down_and_up_again(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    with fresh.begin() as conn:  # a version and an experiment, so the downgrade meets data
        conn.execute(
            text(
                "INSERT INTO routing_policies (shop, version, status, note, document, created_at)"
                " VALUES ('s', 1, 'active', 'n', '{}', '2026-01-01 00:00:00+00:00')"
            )
        )
    _go(fresh, "downgrade", "0001")
    assert migrate.current_revision(fresh) == "0001"
    _go(fresh, "upgrade", "head")
    with fresh.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    _go(fresh, "downgrade", "base")
    assert migrate.current_revision(fresh) is None
    _go(fresh, "upgrade", "head")
    assert migrate.is_current(fresh)
