"""The hold use cases through fakes of their ports: no database, a few milliseconds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pytest

from aoms.domain.errors import HoldNotOpen, NotFound
from aoms.domain.events import Event
from aoms.domain.lifecycle import (
    FraudDecision,
    HoldKind,
    HoldStatus,
    LifecycleSettings,
    PaymentGate,
)
from aoms.domain.money import Money
from aoms.domain.orders import OrderStatus
from aoms.services import holds
from aoms.services.holds import Hold, OrderFacts
from tests.builders import T0, later, order


class FakeTx:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.locked: list[int] = []

    def emit(self, events: Iterable[Event], now: datetime) -> None:
        self.events.extend(events)

    def get_order(self, order_id: int) -> object:
        self.locked.append(order_id)
        return object()

    def handed_off(self, order_id: int) -> bool:
        return False  # no warehouse has any of it: a hold stops nothing


class FakeRepo:
    """Holds, facts and the ledger in memory."""

    def __init__(self, facts: OrderFacts, settings: LifecycleSettings) -> None:
        self._tx = FakeTx()
        self.facts = {facts.id: facts}
        self._settings = settings
        self.holds: dict[int, Hold] = {}
        self.released: dict[int, datetime] = {}
        self.signals: dict[int, dict[str, Any]] = {}
        self.decisions: list[FraudDecision] = []
        self.entries: list[tuple[str, str | None, dict[str, Any]]] = []

    @property
    def tx(self) -> FakeTx:
        return self._tx

    def settings(self, shop: str) -> LifecycleSettings:
        return self._settings

    def order_facts(self, order_id: int) -> OrderFacts | None:
        return self.facts.get(order_id)

    def holds_of(self, order_id: int, status: HoldStatus | None = None) -> list[Hold]:
        return [
            h
            for h in self.holds.values()
            if h.order_id == order_id and (status is None or h.status is status)
        ]

    def hold(self, hold_id: int) -> Hold | None:
        return self.holds.get(hold_id)

    lock_hold = hold

    def add_hold(
        self, order_id: int, kind: HoldKind, reason: str, detail: Mapping[str, Any], now: datetime
    ) -> int:
        hold_id = len(self.holds) + 1
        self.holds[hold_id] = Hold(hold_id, order_id, kind, reason, HoldStatus.OPEN)
        return hold_id

    def resolve_hold(
        self, hold_id: int, status: HoldStatus, actor: str, note: str | None, now: datetime
    ) -> None:
        h = self.holds[hold_id]
        self.holds[hold_id] = Hold(h.id, h.order_id, h.kind, h.reason, status)

    def released_at(self, order_id: int) -> datetime | None:
        return self.released.get(order_id)

    def mark_released(self, order_id: int, now: datetime) -> None:
        self.released[order_id] = now

    def remember_signals(self, order_id: int, **kw: Any) -> None:
        self.signals[order_id] = kw

    def orders_since(
        self, customer_key: str | None, address_key: str | None, since: datetime
    ) -> tuple[int, int]:
        return 1, 1

    def signals_of(self, order_id: int) -> dict[str, Any] | None:
        return self.signals.get(order_id)

    def add_fraud_decision(
        self, order_id: int, decision: FraudDecision, signals: Mapping[str, Any], now: datetime
    ) -> int:
        self.decisions.append(decision)
        return len(self.decisions)

    def ledger(self, kind: str, ref: str | None, body: Mapping[str, Any]) -> None:
        self.entries.append((kind, ref, dict(body)))


def facts(financial_status: str | None, status: OrderStatus = OrderStatus.ROUTED) -> OrderFacts:
    return OrderFacts(
        1, "shop", status, financial_status, Money.of("20.00", "USD"), "US", True, T0, ()
    )


def names(repo: FakeRepo) -> list[str]:
    return [e.name for e in repo.tx.events]


def test_an_authorised_order_is_held_under_the_paid_gate_and_released_when_paid() -> None:
    repo = FakeRepo(facts("authorized"), LifecycleSettings(payment_gate=PaymentGate.PAID))
    holds.check_order(repo, 1, order(("X", 1)), now=T0, created=True)
    assert [(h.kind, h.status) for h in repo.holds.values()] == [
        (HoldKind.AWAITING_PAYMENT, HoldStatus.OPEN)
    ]
    assert not holds.ready_for_fulfilment(repo, 1)
    repo.facts[1] = facts("paid")
    holds.check_order(repo, 1, order(("X", 1)), now=later(1), created=False)
    assert holds.ready_for_fulfilment(repo, 1)
    assert names(repo) == [
        "order.hold_placed",
        "order.fraud_assessed",
        "order.hold_released",
        "order.released_for_fulfilment",
    ]
    assert [k for k, _, _ in repo.entries] == [
        "hold_placed",
        "fraud_decision",
        "hold_resolved",
        "released_for_fulfilment",
    ]
    holds.check_order(repo, 1, order(("X", 1)), now=later(2), created=False)
    assert names(repo).count("order.released_for_fulfilment") == 1


def test_a_backordered_order_is_never_ready_even_without_holds() -> None:
    repo = FakeRepo(facts("paid", OrderStatus.BACKORDERED), LifecycleSettings())
    holds.check_order(repo, 1, order(("X", 1)), now=T0, created=True)
    assert repo.holds == {}
    assert not holds.ready_for_fulfilment(repo, 1)
    assert "order.released_for_fulfilment" not in names(repo)


def test_releasing_locks_the_order_first_and_twice_is_refused() -> None:
    repo = FakeRepo(facts("paid"), LifecycleSettings())
    hold_id = holds.place_hold(repo, 1, HoldKind.MANUAL_REVIEW, "look", now=T0)
    assert hold_id == holds.place_hold(repo, 1, HoldKind.MANUAL_REVIEW, "again", now=T0)
    assert hold_id is not None
    assert repo.tx.locked == [1, 1]  # placing a hold locks the order first too
    repo.tx.locked.clear()
    holds.release_hold(repo, hold_id, actor="ann", note=None, now=later(1))
    assert repo.tx.locked == [1]
    assert names(repo)[-1] == "order.released_for_fulfilment"
    with pytest.raises(HoldNotOpen):
        holds.release_hold(repo, hold_id, actor="ann", note=None, now=later(2))
    with pytest.raises(NotFound):
        holds.release_hold(repo, 99, actor="ann", note=None, now=later(2))
