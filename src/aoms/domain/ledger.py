"""The hash-chained ledger: each entry's hash covers its body and the previous entry's hash,
so editing, removing or reordering any entry breaks every hash after it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64  # the previous hash of the first entry


def canonical(body: Mapping[str, Any]) -> bytes:
    """One byte string per body whatever the key order: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev_hash: str, seq: int, kind: str, body: Mapping[str, Any]) -> str:
    """sha256 over the previous hash, the position, the kind and the canonical body."""
    head = f"{prev_hash}|{seq}|{kind}|".encode()
    return hashlib.sha256(head + canonical(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    kind: str
    body: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Break:
    seq: int
    problem: str


def chain(
    prev_hash: str, start_seq: int, items: Iterable[tuple[str, Mapping[str, Any]]]
) -> list[Entry]:
    """Entries for `items` (kind, body) appended after the entry whose hash is `prev_hash`."""
    out: list[Entry] = []
    seq, prev = start_seq, prev_hash
    for kind, body in items:
        h = entry_hash(prev, seq, kind, body)
        out.append(Entry(seq, kind, body, prev, h))
        seq, prev = seq + 1, h
    return out


def first_break(
    entries: Iterable[Entry], *, prev_hash: str = GENESIS, start_seq: int = 1
) -> Break | None:
    """The first entry that does not follow from the ones before it, or None if all do."""
    expected_seq, prev = start_seq, prev_hash
    for e in entries:
        if e.seq != expected_seq:
            return Break(e.seq, f"entry {expected_seq} is missing (found {e.seq} next)")
        if e.prev_hash != prev:
            return Break(e.seq, "its prev_hash is not the hash of the entry before it")
        if entry_hash(e.prev_hash, e.seq, e.kind, e.body) != e.hash:
            return Break(e.seq, "its content does not match its hash (the entry was edited)")
        expected_seq, prev = e.seq + 1, e.hash
    return None
