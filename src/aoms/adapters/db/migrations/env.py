"""Alembic environment: the connection is handed in by aoms.adapters.db.migrate."""

from alembic import context

from aoms.adapters.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
