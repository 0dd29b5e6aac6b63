"""The outbox relay: deliver committed events, oldest first, at least once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select, update

from aoms.adapters.db import schema as t
from aoms.adapters.db.store import SqlStore
from aoms.domain.events import Event

Publisher = Callable[[Sequence[tuple[int, Event]]], None]


def relay_once(store: SqlStore, publish: Publisher, now: datetime, limit: int = 500) -> int:
    """Publish up to `limit` undelivered events, then mark them delivered.

    If publishing raises, nothing is marked and the same events go out again next time:
    consumers key on the event id to stay idempotent.
    """
    o = t.outbox.c
    with store.read() as conn:
        rows = conn.execute(
            select(o.id, o.name, o.aggregate, o.data)
            .where(o.delivered_at.is_(None))
            .order_by(o.id)
            .limit(limit)
        ).all()
    if not rows:
        return 0
    publish([(r.id, Event(r.name, r.aggregate, dict(r.data))) for r in rows])
    with store.writer() as conn:
        conn.execute(
            update(t.outbox).where(o.id.in_([r.id for r in rows])).values(delivered_at=now)
        )
    return len(rows)
