"""The return lifecycle's state machine and the policy's automatic decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from aoms.domain.errors import InvalidInput, InvalidReturnTransition
from aoms.domain.returns import (
    ItemFacts,
    Outcome,
    RefundTiming,
    ReturnPolicy,
    ReturnStatus,
    decide,
    fees_waived,
    refund_due,
    transition,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def item(
    sku: str = "TEE", reason: str = "too_small", tags: tuple[str, ...] = (), photos: bool = False
) -> ItemFacts:
    return ItemFacts(sku, tags, reason, photos)


def test_a_return_within_the_window_is_approved() -> None:
    delivered = NOW - timedelta(days=30)
    d = decide(ReturnPolicy(window_days=30), [item()], now=NOW, delivered_at=delivered,
               fulfilled_at=None)  # fmt: skip
    assert d.outcome is Outcome.APPROVE
    assert d.window_ends == NOW


def test_the_window_counts_from_fulfilment_plus_transit_when_delivery_is_unknown() -> None:
    policy = ReturnPolicy(window_days=30, expected_transit_days=5)
    shipped = NOW - timedelta(days=36)  # window ends 35 days after shipping: yesterday
    d = decide(policy, [item()], now=NOW, delivered_at=None, fulfilled_at=shipped)
    assert d.outcome is Outcome.REJECT
    assert "closed on 2026-11-30" in d.reasons[0]
    ok = decide(policy, [item()], now=NOW, delivered_at=None, fulfilled_at=NOW - timedelta(days=35))
    assert ok.outcome is Outcome.APPROVE


def test_final_sale_is_rejected_even_when_photos_are_missing_too() -> None:
    d = decide(ReturnPolicy(), [item(tags=("Final-Sale",)), item("MUG", "damaged")], now=NOW,
               delivered_at=NOW, fulfilled_at=None)  # fmt: skip
    assert d.outcome is Outcome.REJECT
    assert d.reasons == ("TEE is final sale (tag final-sale)",)


def test_a_damaged_item_without_photos_goes_to_review_and_with_photos_is_approved() -> None:
    policy = ReturnPolicy()
    review = decide(policy, [item(reason="damaged")], now=NOW, delivered_at=NOW, fulfilled_at=None)
    assert review.outcome is Outcome.REVIEW
    ok = decide(policy, [item(reason="damaged", photos=True)], now=NOW, delivered_at=NOW,
                fulfilled_at=None)  # fmt: skip
    assert ok.outcome is Outcome.APPROVE


def test_a_market_overrides_the_store_policy() -> None:
    policy = ReturnPolicy.from_dict({"window_days": 14, "markets": {"de": {"window_days": 30}}})
    assert policy.for_country("DE").window_days == 30
    assert policy.for_country("US").window_days == 14
    assert ReturnPolicy.from_dict(policy.as_dict()) == policy


def test_bad_policy_fields_are_refused_with_the_field_named() -> None:
    with pytest.raises(InvalidInput) as exc:
        ReturnPolicy.from_dict({"restocking_fee_percent": "-5"})
    assert exc.value.field == "restocking_fee_percent"
    with pytest.raises(InvalidInput):
        ReturnPolicy.from_dict({"refund_timing": "whenever"})
    with pytest.raises(InvalidInput):
        ReturnPolicy.from_dict({"markets": {"DE": {"windw_days": 3}}})


def test_fees_are_waived_for_free_return_tags_and_merchant_fault_reasons() -> None:
    policy = ReturnPolicy(free_return_tags=("VIP",), restocking_fee_percent=Decimal(10))
    assert fees_waived(policy, ["too_small"], ["vip"])
    assert fees_waived(policy, ["damaged", "wrong_item"], [])
    assert not fees_waived(policy, ["damaged", "too_small"], [])


def test_the_lifecycle_moves_forward_only() -> None:
    s = transition(ReturnStatus.REQUESTED, ReturnStatus.APPROVED)
    s = transition(s, ReturnStatus.LABEL_ISSUED)
    s = transition(s, ReturnStatus.IN_TRANSIT)
    with pytest.raises(InvalidReturnTransition):
        transition(s, ReturnStatus.CANCELLED)  # the parcel is on its way
    s = transition(s, ReturnStatus.RECEIVED)
    with pytest.raises(InvalidReturnTransition):
        transition(ReturnStatus.REJECTED, ReturnStatus.APPROVED)


def test_the_refund_timing_rule_says_when_a_refund_is_due() -> None:
    assert refund_due(RefundTiming.LABEL_SCAN, ReturnStatus.IN_TRANSIT)
    assert not refund_due(RefundTiming.RECEIPT, ReturnStatus.IN_TRANSIT)
    assert refund_due(RefundTiming.RECEIPT, ReturnStatus.RECEIVED)
    assert not refund_due(RefundTiming.INSPECTION, ReturnStatus.RECEIVED)
    assert refund_due(RefundTiming.INSPECTION, ReturnStatus.INSPECTED)
