from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from aoms.adapters.db import migrate
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.schema import metadata


def test_the_migrations_build_exactly_the_schema_in_code(db_url: str) -> None:
    engine = make_engine(db_url)  # the fixture has migrated it to head
    try:
        assert migrate.is_current(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
