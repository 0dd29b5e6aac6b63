"""The hash-chained ledger in the database.

Every stock movement is written by `record_movements` (the one path `SqlTx` uses for them),
and every automated decision by `append`; both queue their entries on the transaction, and
`flush` chains and writes them just before it commits. On PostgreSQL `flush` first takes a
transaction-scoped advisory lock, so writers append one after another and the chain stays
linear; on SQLite the write transaction already holds the file's one write lock. The lock is
held only from the append to the commit. The position (`seq`) is the primary key, so a writer
that somehow skipped the lock would fail on it rather than fork the chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, text

from aoms.adapters.db import schema as t
from aoms.domain.ledger import GENESIS, Break, Entry, chain, first_break

if TYPE_CHECKING:
    from aoms.adapters.db.store import SqlStore, SqlTx

# Any fixed 64-bit number names the ledger's advisory lock; this one spells "aomsledg".
LEDGER_LOCK = 0x616F6D736C656467
INSERT_MOVEMENTS = insert(t.stock_movements).returning(
    t.stock_movements.c.id, sort_by_parameter_order=True
)
INSERT_ENTRIES = insert(t.ledger_entries)
_HEAD = (
    select(t.ledger_entries.c.seq, t.ledger_entries.c.hash)
    .order_by(t.ledger_entries.c.seq.desc())
    .limit(1)
)


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def movement_body(movement_id: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """What the ledger keeps of a stock movement (and what verify compares the row with)."""
    return {
        "movement_id": int(movement_id),
        "sku": row["sku"],
        "location_id": row["location_id"],
        "on_hand_delta": int(row["on_hand_delta"]),
        "reserved_delta": int(row["reserved_delta"]),
        "reason": row["reason"],
        "reference": row["reference"],
        "idempotency_key": row["idempotency_key"],
        "at": stamp(row["at"]),
    }


def record_movements(tx: SqlTx, rows: Sequence[dict[str, Any]]) -> None:
    """Insert stock movements and queue their ledger entries, in this transaction."""
    if not rows:
        return
    ids = tx.conn.execute(INSERT_MOVEMENTS, list(rows)).scalars().all()
    for movement_id, row in zip(ids, rows, strict=True):
        tx.ledger_queue.append(
            ("stock_movement", f"stock_movement:{movement_id}", movement_body(movement_id, row))
        )


def append(tx: SqlTx, kind: str, ref: str | None, body: Mapping[str, Any]) -> None:
    """Queue a decision (or any fact worth proving later) for the ledger. `body` must be
    plain JSON: strings, integers, booleans, None, lists and objects (money as strings)."""
    tx.ledger_queue.append((kind, ref, dict(body)))


def flush(tx: SqlTx, now: datetime) -> None:
    """Chain the queued entries after the current head and write them."""
    if not tx.ledger_queue:
        return
    if tx.dialect == "postgresql":
        tx.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEDGER_LOCK})
    head = tx.conn.execute(_HEAD).first()
    seq, prev = (int(head.seq) + 1, head.hash) if head else (1, GENESIS)
    entries = chain(prev, seq, [(kind, body) for kind, _, body in tx.ledger_queue])
    tx.conn.execute(
        INSERT_ENTRIES,
        [
            {"seq": e.seq, "kind": e.kind, "ref": ref, "body": dict(e.body),
             "prev_hash": e.prev_hash, "hash": e.hash, "at": now}
            for e, (_, ref, _) in zip(entries, tx.ledger_queue, strict=True)
        ],
    )  # fmt: skip
    tx.ledger_queue.clear()


# -- verification -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verification:
    entries: int
    movements: int
    broken: Break | None
    head: str

    @property
    def ok(self) -> bool:
        return self.broken is None


def _entries(conn: Connection, batch: int = 5000) -> Iterator[Entry]:
    c = t.ledger_entries.c
    after = 0
    while True:
        rows = conn.execute(
            select(c.seq, c.kind, c.body, c.prev_hash, c.hash)
            .where(c.seq > after)
            .order_by(c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        for r in rows:
            yield Entry(int(r.seq), r.kind, r.body, r.prev_hash, r.hash)
        after = int(rows[-1].seq)


def _movement_rows(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    m = t.stock_movements.c
    rows = conn.execute(select(t.stock_movements).where(m.id.in_(ids))).mappings().all()
    return {int(r["id"]): movement_body(r["id"], dict(r)) for r in rows}


def _check_movements(conn: Connection, entries: list[Entry]) -> Break | None:
    rows = _movement_rows(conn, [int(e.body["movement_id"]) for e in entries])
    for e in entries:
        movement_id = int(e.body["movement_id"])
        row = rows.get(movement_id)
        if row is None:
            return Break(e.seq, f"stock movement {movement_id} was deleted")
        if row != dict(e.body):
            return Break(
                e.seq,
                f"stock movement {movement_id} no longer matches its entry (the row was edited)",
            )
    return None


def verify(store: SqlStore, *, batch: int = 2000) -> Verification:
    """Walk the chain from the first entry: every prev_hash must be the hash before it and
    every hash must match its entry; every stock movement entry must match the movement row
    it names, and every movement row written since the ledger began must have an entry.
    Names the first entry that fails."""
    count = 0
    seq, head = 1, GENESIS
    chained: set[int] = set()
    with store.engine.connect() as raw:
        # On PostgreSQL one snapshot for the whole walk: a movement committed meanwhile is
        # either seen with its entry or not at all (they commit together).
        pg = store.dialect == "postgresql"
        conn = raw.execution_options(isolation_level="REPEATABLE READ") if pg else raw
        entries = _entries(conn, batch)
        while True:
            chunk = [e for _, e in zip(range(batch), entries, strict=False)]
            if not chunk:
                break
            broken = first_break(chunk, prev_hash=head, start_seq=seq)
            moved = [e for e in chunk if e.kind == "stock_movement"]
            broken = broken or _check_movements(conn, moved)
            if broken is not None:
                return Verification(count, len(chained), broken, head)
            chained.update(int(e.body["movement_id"]) for e in moved)
            count += len(chunk)
            seq, head = chunk[-1].seq + 1, chunk[-1].hash
        if chained:
            m = t.stock_movements.c
            ids = conn.execute(select(m.id).where(m.id >= min(chained)).order_by(m.id)).scalars()
            missing = next((i for i in ids if i not in chained), None)
            if missing is not None:
                gap = Break(seq, f"stock movement {missing} has no ledger entry")
                return Verification(count, len(chained), gap, head)
    return Verification(count, len(chained), None, head)
