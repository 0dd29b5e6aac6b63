"""Holds and the fulfilment gate: an order is routed and reserved whatever holds it (its stock
is protected), but it is released for fulfilment only when it is fully routed and no hold is
open. Payment, address, fraud and merchant-rule checks run when an order arrives or changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from aoms.domain import events as ev
from aoms.domain.errors import HoldNotOpen, InvalidInput, NotFound
from aoms.domain.events import Event
from aoms.domain.handoff import AT_WAREHOUSE, TERMINAL, FoStatus
from aoms.domain.lifecycle import (
    FraudAction,
    FraudDecision,
    HoldKind,
    HoldStatus,
    LifecycleSettings,
    RiskAssessment,
    RiskSignals,
    payment_satisfied,
    score_risk,
)
from aoms.domain.money import Money
from aoms.domain.orders import Order, OrderStatus
from aoms.services import handoff
from aoms.services import orders as order_cases
from aoms.services.ports import Tx


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    order_id: int
    kind: HoldKind
    reason: str
    status: HoldStatus


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the checks read of a stored order."""

    id: int
    shop: str
    status: OrderStatus
    financial_status: str | None
    total: Money
    shipping_country: str | None
    located: bool  # whether the shipping address could be placed
    placed_at: datetime
    tags: tuple[str, ...]
    shipped_in_full: bool = False  # every unit to ship has left


class LifecycleRepo(Protocol):
    """What the lifecycle use cases need from storage, inside one transaction (`tx`)."""

    @property
    def tx(self) -> Tx: ...
    def settings(self, shop: str) -> LifecycleSettings: ...
    def order_facts(self, order_id: int) -> OrderFacts | None: ...
    def holds_of(self, order_id: int, status: HoldStatus | None = None) -> list[Hold]: ...
    def hold(self, hold_id: int) -> Hold | None: ...
    def lock_hold(self, hold_id: int) -> Hold | None: ...
    def add_hold(
        self, order_id: int, kind: HoldKind, reason: str, detail: Mapping[str, Any], now: datetime
    ) -> int: ...
    def resolve_hold(
        self, hold_id: int, status: HoldStatus, actor: str, note: str | None, now: datetime
    ) -> None: ...
    def released_at(self, order_id: int) -> datetime | None: ...
    def mark_released(self, order_id: int, now: datetime) -> None: ...
    def remember_signals(
        self,
        order_id: int,
        *,
        customer_key: str | None,
        address_key: str | None,
        billing_country: str | None,
        placed_at: datetime,
    ) -> None: ...
    def orders_since(
        self, customer_key: str | None, address_key: str | None, since: datetime
    ) -> tuple[int, int]: ...
    def signals_of(self, order_id: int) -> dict[str, Any] | None: ...
    def add_fraud_decision(
        self, order_id: int, decision: FraudDecision, signals: Mapping[str, Any], now: datetime
    ) -> int: ...
    def ledger(self, kind: str, ref: str | None, body: Mapping[str, Any]) -> None: ...


SYSTEM = "aoms"  # the actor of automatic releases
# Fulfilment orders a hold asks their warehouse to stop: handed off, not finished, and not
# already being stopped.
STOPPABLE = AT_WAREHOUSE - TERMINAL - {FoStatus.CANCEL_REQUESTED}


def address_key(order: Order) -> str | None:
    """A digest of the normalised shipping address: the same door whatever the spelling of
    case and spaces."""
    a = order.shipping_address
    parts = [a.address1, a.zip, a.city, a.country_code]
    if not any(parts):
        return None
    norm = "|".join(" ".join((p or "").lower().split()) for p in parts)
    return hashlib.sha256(norm.encode()).hexdigest()[:32]


# -- holds ------------------------------------------------------------------------------------


def place_hold(
    repo: LifecycleRepo,
    order_id: int,
    kind: HoldKind,
    reason: str,
    *,
    now: datetime,
    detail: Mapping[str, Any] | None = None,
    unless_released: bool = False,
) -> int | None:
    """Hold the order; an open hold of the same kind is kept as it is (returns its id).
    `unless_released`: not again if a hold of this kind was released before (a person
    decided; an automatic check must not overrule them on the next update).

    A warehouse that already has part of the order is asked to stop (a cancel request, as
    for a cancelled order): the parcel must not leave while the order is held. The hold's
    detail lists those fulfilment orders (`stopped_fulfilment_orders`); when the warehouse
    confirms, their units are routed and reserved again, and handed off once no hold is
    open (`services.handoff.confirm_cancel`)."""
    tx = repo.tx
    tx.get_order(order_id)  # the order's row first, as every order write takes it
    for hold in repo.holds_of(order_id):
        if hold.kind is kind and hold.status is HoldStatus.OPEN:
            return hold.id
        if hold.kind is kind and unless_released and hold.status is HoldStatus.RELEASED:
            return None
    htx = tx.handoff() if tx.handed_off(order_id) else None
    stop = [fo.id for fo in htx.order_fos(order_id) if fo.status in STOPPABLE] if htx else []
    if stop:
        detail = {**(detail or {}), "stopped_fulfilment_orders": stop}
    hold_id = repo.add_hold(order_id, kind, reason, detail or {}, now)
    data = {"hold_id": hold_id, "kind": kind.value, "reason": reason}
    tx.emit([Event(ev.HOLD_PLACED, f"order:{order_id}", data)], now)
    repo.ledger("hold_placed", f"order:{order_id}", {"order_id": order_id, **data})
    if htx is not None:
        for fo_id in stop:
            handoff.request_cancel(htx, fo_id, now)
    return hold_id


def release_hold(
    repo: LifecycleRepo, hold_id: int, *, actor: str, note: str | None, now: datetime
) -> Hold:
    """Release an open hold; when it was the last one, the order goes on to fulfilment."""
    if not actor.strip():
        raise InvalidInput("say who releases the hold", field="actor")
    found = repo.hold(hold_id)
    if found is None:
        raise NotFound(f"no hold {hold_id}", field="hold_id")
    # Lock the order row first, as every order write does, then the hold: the other way round
    # could deadlock with a webhook updating the same order's holds.
    repo.tx.get_order(found.order_id)
    hold = repo.lock_hold(hold_id)
    assert hold is not None
    if hold.status is not HoldStatus.OPEN:
        raise HoldNotOpen(f"hold {hold_id} is {hold.status.value} already", field="hold_id")
    _resolve(repo, hold, HoldStatus.RELEASED, actor, note, now)
    gate(repo, hold.order_id, now=now)
    return Hold(hold.id, hold.order_id, hold.kind, hold.reason, HoldStatus.RELEASED)


def _resolve(
    repo: LifecycleRepo,
    hold: Hold,
    status: HoldStatus,
    actor: str,
    note: str | None,
    now: datetime,
) -> None:
    repo.resolve_hold(hold.id, status, actor, note, now)
    data = {"hold_id": hold.id, "kind": hold.kind.value, "status": status.value,
            "actor": actor, "note": note}  # fmt: skip
    repo.tx.emit([Event(ev.HOLD_RELEASED, f"order:{hold.order_id}", data)], now)
    repo.ledger("hold_resolved", f"order:{hold.order_id}", {"order_id": hold.order_id, **data})


def _release_kind(
    repo: LifecycleRepo, order_id: int, kind: HoldKind, why: str, now: datetime,
    among: Sequence[Hold] | None = None,
) -> None:  # fmt: skip
    """Release the order's open holds of `kind` (`among`: the open holds, when just read)."""
    for hold in repo.holds_of(order_id, HoldStatus.OPEN) if among is None else among:
        if hold.kind is kind:
            _resolve(repo, hold, HoldStatus.RELEASED, SYSTEM, why, now)


class LifecycleStore(Protocol):
    def transaction(self) -> AbstractContextManager[LifecycleRepo]: ...


def ready_for_fulfilment(
    tx_or_store: LifecycleRepo | LifecycleStore, order_id: int, facts: OrderFacts | None = None
) -> bool:
    """Whether the order may be handed to a warehouse now: fully routed (every unit
    reserved), not cancelled, not shipped in full, and no hold open. Given a repository it
    reads inside that transaction; given a store, in a transaction of its own. (With a
    `SqlTx` or `SqlStore`, use `aoms.adapters.db.lifecycle.ready_for_fulfilment`.) `facts`:
    the order's, read earlier in the same transaction and unchanged since."""
    if not hasattr(tx_or_store, "order_facts"):
        with tx_or_store.transaction() as inner:
            return ready_for_fulfilment(inner, order_id)
    repo = cast(LifecycleRepo, tx_or_store)
    facts = facts or repo.order_facts(order_id)
    if facts is None or facts.status is not OrderStatus.ROUTED or facts.shipped_in_full:
        return False
    return not repo.holds_of(order_id, HoldStatus.OPEN)


def gate(
    repo: LifecycleRepo, order_id: int, *, now: datetime, facts: OrderFacts | None = None
) -> bool:
    """Release the order for fulfilment if it is ready and was not released before; emits
    OrderReleasedForFulfilment in this transaction. True when it released it now. `facts`:
    as for `ready_for_fulfilment`."""
    if not ready_for_fulfilment(repo, order_id, facts) or repo.released_at(order_id) is not None:
        return False
    repo.mark_released(order_id, now)
    repo.tx.emit([Event(ev.ORDER_RELEASED_FOR_FULFILMENT, f"order:{order_id}", {})], now)
    repo.ledger("released_for_fulfilment", f"order:{order_id}", {"order_id": order_id})
    return True


def cancel_with_holds(repo: LifecycleRepo, order_id: int, *, now: datetime, actor: str,
                      note: str | None = None) -> None:  # fmt: skip
    """Cancel the order (releasing its stock) and close its open holds as cancelled."""
    order_cases.cancel_order(repo.tx, order_id, now=now)
    for hold in repo.holds_of(order_id, HoldStatus.OPEN):
        _resolve(repo, hold, HoldStatus.CANCELLED, actor, note, now)


# -- the checks ---------------------------------------------------------------------------------


def check_order(
    repo: LifecycleRepo,
    order_id: int,
    order: Order,
    *,
    now: datetime,
    created: bool,
    assessments: Sequence[RiskAssessment] = (),
) -> None:
    """Run the store's checks on an order that arrived (`created`) or changed, then release
    it for fulfilment if nothing holds it."""
    facts = repo.order_facts(order_id)
    if facts is None:
        return
    if facts.status is OrderStatus.CANCELLED:
        for hold in repo.holds_of(order_id, HoldStatus.OPEN):
            _resolve(repo, hold, HoldStatus.CANCELLED, SYSTEM, "the order was cancelled", now)
        return
    settings = repo.settings(facts.shop)
    known = None
    if created:
        known = {
            "customer_key": order.customer_key,
            "address_key": address_key(order),
            "billing_country": order.billing_address.country_code
            if order.billing_address
            else None,
        }
        repo.remember_signals(order_id, **known, placed_at=order.placed_at)
    open_now = repo.holds_of(order_id, HoldStatus.OPEN)  # each kind below is released once
    # Payment.
    status = facts.financial_status
    if payment_satisfied(status, settings.payment_gate):
        _release_kind(repo, order_id, HoldKind.AWAITING_PAYMENT,
                      f"financial status is {status}", now, open_now)  # fmt: skip
    else:
        place_hold(
            repo, order_id, HoldKind.AWAITING_PAYMENT,
            f"financial status is {status}; the store fulfils when "
            f"{settings.payment_gate.value}",
            now=now, detail={"financial_status": status, "gate": settings.payment_gate.value},
        )  # fmt: skip
    # Address: an address that cannot be placed is held for a person to correct.
    if facts.located:
        _release_kind(repo, order_id, HoldKind.INCORRECT_ADDRESS, "the address was placed", now,
                      open_now)  # fmt: skip
    else:
        place_hold(repo, order_id, HoldKind.INCORRECT_ADDRESS,
                   "the shipping address could not be located", now=now,
                   unless_released=True)  # fmt: skip
    # Merchant rules: the store's hold tags.
    tagged = sorted(set(facts.tags) & settings.hold_tags)
    if tagged:
        place_hold(repo, order_id, HoldKind.MERCHANT_RULE,
                   f"tagged {', '.join(tagged)}", now=now, detail={"tags": tagged},
                   unless_released=True)  # fmt: skip
    # Fraud: scored when the order arrives, and again when new assessments come.
    if created or assessments:
        decision = assess_fraud(repo, order_id, settings, facts, assessments, now=now,
                                known=known)  # fmt: skip
        if decision.action is FraudAction.CANCEL:
            cancel_with_holds(repo, order_id, now=now, actor=SYSTEM,
                              note=f"fraud score {decision.score}")  # fmt: skip
            return
    gate(repo, order_id, now=now, facts=facts)  # nothing above changed its status or shipping


def assess_fraud(
    repo: LifecycleRepo,
    order_id: int,
    settings: LifecycleSettings,
    facts: OrderFacts,
    assessments: Sequence[RiskAssessment],
    *,
    now: datetime,
    known: Mapping[str, Any] | None = None,
) -> FraudDecision:
    """Score the order (pure), store the decision with its reasons and inputs, and hold it
    for review when the score reaches the store's review threshold. `known`: the order's
    signals, when just stored."""
    known = known if known is not None else (repo.signals_of(order_id) or {})
    t = settings.fraud
    since = facts.placed_at - timedelta(hours=t.velocity_window_hours)
    by_customer, to_address = repo.orders_since(
        known.get("customer_key"), known.get("address_key"), since
    )
    signals = RiskSignals(
        total=facts.total,
        shipping_country=facts.shipping_country,
        billing_country=known.get("billing_country"),
        orders_by_customer=by_customer,
        orders_to_address=to_address,
        assessments=tuple(assessments),
    )
    decision = score_risk(signals, t)
    inputs = {
        "total": str(facts.total.amount),
        "currency": facts.total.currency,
        "shipping_country": signals.shipping_country,
        "billing_country": signals.billing_country,
        "orders_by_customer": by_customer,
        "orders_to_address": to_address,
        "assessments": [
            {"risk_level": a.risk_level, "provider": a.provider,
             "facts": [list(f) for f in a.facts]}
            for a in assessments
        ],
    }  # fmt: skip
    decision_id = repo.add_fraud_decision(order_id, decision, inputs, now)
    data = {"decision_id": decision_id, "score": decision.score,
            "action": decision.action.value, "reasons": list(decision.reasons)}  # fmt: skip
    repo.tx.emit([Event(ev.FRAUD_ASSESSED, f"order:{order_id}", data)], now)
    repo.ledger("fraud_decision", f"order:{order_id}", {"order_id": order_id, **data,
                                                        "signals": inputs})  # fmt: skip
    if decision.action is FraudAction.REVIEW:
        place_hold(
            repo, order_id, HoldKind.HIGH_FRAUD_RISK,
            f"fraud score {decision.score} reaches the review threshold {t.review_at}",
            now=now, detail={"score": decision.score, "reasons": list(decision.reasons)},
        )  # fmt: skip
    return decision
