"""The pure lifecycle rules: the payment gate, fraud scoring, edits and the ledger chain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoms.domain.errors import BelowShipped, InvalidInput
from aoms.domain.ledger import GENESIS, Entry, chain, entry_hash, first_break
from aoms.domain.lifecycle import (
    FraudAction,
    FraudThresholds,
    LifecycleSettings,
    LineState,
    PaymentGate,
    RiskAssessment,
    RiskSignals,
    lifecycle_state,
    payment_satisfied,
    plan_quantity_changes,
    reservation_cuts,
    score_risk,
)
from aoms.domain.money import Money


@pytest.mark.parametrize(
    ("status", "paid", "authorized"),
    [
        ("paid", True, True),
        ("authorized", False, True),
        ("partially_paid", False, True),
        ("pending", False, False),
        ("voided", False, False),
        ("refunded", False, False),
        (None, True, True),  # a channel without payments: settled there
    ],
)
def test_the_payment_gate(status: str | None, paid: bool, authorized: bool) -> None:
    assert payment_satisfied(status, PaymentGate.PAID) is paid
    assert payment_satisfied(status, PaymentGate.AUTHORIZED) is authorized


def signals(**kw: object) -> RiskSignals:
    base: dict[str, object] = {
        "total": Money.of("50.00", "USD"),
        "shipping_country": "US",
        "billing_country": "US",
        "orders_by_customer": 1,
        "orders_to_address": 1,
    }
    return RiskSignals(**{**base, **kw})  # type: ignore[arg-type]


def test_a_quiet_order_scores_zero_and_is_accepted() -> None:
    decision = score_risk(signals(), FraudThresholds())
    assert (decision.score, decision.action, decision.reasons) == (0, FraudAction.ACCEPT, ())


def test_each_signal_adds_its_points_and_says_why() -> None:
    t = FraudThresholds(review_at=40, cancel_at=95, high_value=Money.of("200", "USD"))
    decision = score_risk(
        signals(
            total=Money.of("200.00", "USD"),  # +20 (at least the high value)
            shipping_country="NG",  # billed in US: +15 (mismatch)
            orders_by_customer=4,  # +25 (4 > 3 in the window)
            orders_to_address=3,  # not more than 3: nothing
            assessments=(RiskAssessment("MEDIUM", "Signifyd", (("proxy IP", "NEGATIVE"),)),),
        ),
        t,
    )
    assert decision.score == 30 + 20 + 25 + 15
    assert decision.action is FraudAction.REVIEW  # 90: at least 40, below 95
    assert decision.reasons == (
        "+30: Signifyd assessed the risk as MEDIUM (proxy IP)",
        "+20: order value 200.00 USD is at least 200.00 USD",
        "+25: 4 orders from this customer in 24 h (limit 3)",
        "+15: billed in US but shipped to NG",
    )


def test_the_score_is_capped_at_100_and_cancels_at_the_threshold() -> None:
    t = FraudThresholds(review_at=50, cancel_at=90, risky_countries=frozenset({"US"}))
    decision = score_risk(
        signals(
            orders_by_customer=9,
            orders_to_address=9,
            billing_country="CA",
            assessments=(RiskAssessment("HIGH"),),
        ),
        t,
    )
    assert decision.score == 100  # 70 + 25 + 25 + 15 + 20 = 155, capped
    assert decision.action is FraudAction.CANCEL


def test_the_worst_assessment_counts_once() -> None:
    two = (RiskAssessment("LOW"), RiskAssessment("HIGH"), RiskAssessment("MEDIUM"))
    assert score_risk(signals(assessments=two), FraudThresholds()).score == 70


def test_shopify_assessments_are_read_from_graphql_and_from_the_webhook() -> None:
    graphql = {
        "riskLevel": "HIGH",
        "provider": {"title": "Fraud app"},
        "facts": [{"description": "Card declined 3 times", "sentiment": "NEGATIVE"}],
    }
    assert RiskAssessment.from_shopify(graphql) == RiskAssessment(
        "HIGH", "Fraud app", (("Card declined 3 times", "NEGATIVE"),)
    )
    webhook = {"risk_level": "medium", "provider_title": None, "order_id": None}
    assert RiskAssessment.from_shopify(webhook) == RiskAssessment("MEDIUM", None, ())
    with pytest.raises(InvalidInput):
        RiskAssessment.from_shopify({"riskLevel": "SCARY"})


def test_settings_survive_a_round_trip() -> None:
    s = LifecycleSettings(
        payment_gate=PaymentGate.AUTHORIZED,
        fraud=FraudThresholds(
            review_at=30,
            cancel_at=80,
            high_value=Money.of("99.5", "EUR"),
            risky_countries=frozenset({"XX"}),
        ),
        hold_tags=frozenset({"hold"}),
    )
    assert LifecycleSettings.from_dict(s.as_dict()) == s
    with pytest.raises(InvalidInput):
        FraudThresholds(review_at=90, cancel_at=50)


def test_the_lifecycle_state() -> None:
    assert lifecycle_state("routed", 0).value == "ready_for_fulfilment"
    assert lifecycle_state("routed", 1).value == "on_hold"
    assert lifecycle_state("backordered", 0).value == "backordered"
    assert lifecycle_state("cancelled", 2).value == "cancelled"


def test_the_lifecycle_state_counts_what_has_shipped() -> None:
    assert lifecycle_state("routed", 0, to_ship=3, shipped=1).value == "partly_shipped"
    assert lifecycle_state("routed", 1, to_ship=3, shipped=1).value == "on_hold"
    assert lifecycle_state("backordered", 0, to_ship=3, shipped=1).value == "backordered"
    assert lifecycle_state("routed", 0, to_ship=3, shipped=3).value == "shipped"
    # a hold placed after everything left holds nothing back
    assert lifecycle_state("routed", 1, to_ship=3, shipped=3).value == "shipped"
    assert lifecycle_state("cancelled", 0, to_ship=3, shipped=3).value == "cancelled"
    # nothing to ship (a gift card): ready, never shipped
    assert lifecycle_state("routed", 0, to_ship=0, shipped=0).value == "ready_for_fulfilment"


LINES = [LineState(1, "X", 5, 2, 2, 1), LineState(2, "Y", 4, 0, 4, 0)]


def test_a_reduction_takes_backordered_units_first_then_reserved() -> None:
    changes = plan_quantity_changes(LINES, {1: 3, 2: 0})
    assert [(c.line_no, c.quantity, c.unbackorder, c.release) for c in changes] == [
        (1, 3, 1, 1),  # 2 fewer: the 1 backordered, then 1 of the 2 reserved
        (2, 0, 0, 4),
    ]


def test_a_reduction_below_shipped_is_refused_with_its_code() -> None:
    with pytest.raises(BelowShipped) as refused:
        plan_quantity_changes(LINES, {1: 1})
    assert refused.value.code == "quantity_below_shipped"
    assert refused.value.details == {"shipped": 2, "requested": 1}


@given(
    st.lists(st.integers(min_value=1, max_value=20), min_size=0, max_size=8),
    st.integers(min_value=0, max_value=200),
)
def test_reservation_cuts_take_exactly_what_is_asked_newest_first(
    quantities: list[int], units: int
) -> None:
    held = list(enumerate(quantities, start=1))
    cuts = reservation_cuts(held, units)
    assert sum(q for _, q in cuts) == min(units, sum(quantities))
    by_id = dict(held)
    assert all(0 < q <= by_id[rid] for rid, q in cuts)
    ids = [rid for rid, _ in cuts]
    assert ids == sorted(ids, reverse=True)
    # Only the last reservation touched may be cut partly.
    assert all(q == by_id[rid] for rid, q in cuts[:-1])


bodies = st.dictionaries(
    st.text(min_size=1, max_size=5),
    st.one_of(st.integers(), st.text(max_size=8), st.none(), st.booleans()),
    max_size=4,
)


@given(st.lists(bodies, min_size=1, max_size=12), st.data())
def test_changing_any_entry_breaks_the_chain_exactly_there(
    items: list[dict[str, object]], data: st.DataObject
) -> None:
    entries = chain(GENESIS, 1, [("k", b) for b in items])
    assert first_break(entries) is None
    i = data.draw(st.integers(min_value=0, max_value=len(entries) - 1))
    e = entries[i]
    tampered = Entry(e.seq, e.kind, {**e.body, "tampered": True}, e.prev_hash, e.hash)
    broken = first_break([*entries[:i], tampered, *entries[i + 1 :]])
    assert broken is not None and broken.seq == e.seq
    # Re-hashing the edited entry does not help: the next entry's prev_hash gives it away.
    if i + 1 < len(entries):
        rehashed = Entry(
            e.seq,
            e.kind,
            tampered.body,
            e.prev_hash,
            entry_hash(e.prev_hash, e.seq, e.kind, tampered.body),
        )
        broken = first_break([*entries[:i], rehashed, *entries[i + 1 :]])
        assert broken is not None and broken.seq == e.seq + 1


def test_the_hash_does_not_depend_on_key_order() -> None:
    assert entry_hash(GENESIS, 1, "k", {"a": 1, "b": 2}) == entry_hash(
        GENESIS, 1, "k", {"b": 2, "a": 1}
    )
