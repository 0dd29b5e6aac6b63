"""Engines: SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite


def begin_immediate(dbapi_conn: Any, wait_seconds: float = 30.0) -> None:
    """Take SQLite's write lock, polling every half millisecond.

    SQLite's own busy handler sleeps 1, 2, 5, 10 … 100 ms between tries, so a writer that
    meets a busy worker waits far longer than the lock is held — and another process that
    keeps writing takes it first every time. Polling briefly gives the lock to whoever waits
    within half a millisecond of its release.
    """
    deadline = time.monotonic() + wait_seconds
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.0005)
    finally:
        dbapi_conn.execute("PRAGMA busy_timeout=5000")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # Statements wait at most this long for a lock; taking the write lock itself is
            # retried below, more often than SQLite's busy handler would.
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            begin_immediate(conn.connection.dbapi_connection)

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def upsert_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The connection's dialect's INSERT into `table`, which takes ON CONFLICT (do nothing,
    or do update) on PostgreSQL and SQLite alike."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
