"""Shared fixtures: a real database per test, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from aoms.adapters.db import migrate
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.schema import metadata
from aoms.bootstrap import Runtime, build
from aoms.config import Settings

PG_URL = os.environ.get(
    "AOMS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE = os.environ.get("AOMS_REQUIRE_SERVICES") == "1"
SECRET = "test-webhook-secret-0123"


def _skip_or_fail(message: str) -> None:
    if REQUIRE:
        pytest.fail(f"{message} (AOMS_REQUIRE_SERVICES=1 turns this skip into a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (one per xdist worker)."""
    admin_url = make_url(PG_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        _skip_or_fail(f"PostgreSQL is not reachable at {admin_url.render_as_string()}: {exc}")
    name = f"aoms_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "aoms.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        return url
    url: str = request.getfixturevalue("pg_database")
    engine = make_engine(url)
    _truncate(engine)
    engine.dispose()
    return url


@pytest.fixture
def runtime(db_url: str) -> Iterator[Runtime]:
    rt = build(Settings(database_url=db_url, shopify_webhook_secret=SECRET, run_workers=False))
    yield rt
    rt.close()
