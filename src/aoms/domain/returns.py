"""Returns: the lifecycle as a state machine, and the return policy that decides them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from aoms.domain.errors import InvalidInput, InvalidReturnTransition
from aoms.domain.refunds import FeeRule


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    REVIEW = "review"  # a person decides
    APPROVED = "approved"
    REJECTED = "rejected"
    LABEL_ISSUED = "label_issued"
    IN_TRANSIT = "in_transit"  # the carrier scanned the return label
    RECEIVED = "received"  # at a location
    INSPECTED = "inspected"  # every unit has its disposition
    CLOSED = "closed"  # inspected and refunded
    CANCELLED = "cancelled"


S = ReturnStatus
TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    S.REQUESTED: frozenset({S.APPROVED, S.REJECTED, S.REVIEW, S.CANCELLED}),
    S.REVIEW: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED}),
    S.APPROVED: frozenset({S.LABEL_ISSUED, S.RECEIVED, S.CANCELLED}),
    S.LABEL_ISSUED: frozenset({S.IN_TRANSIT, S.RECEIVED, S.CANCELLED}),
    S.IN_TRANSIT: frozenset({S.RECEIVED}),
    S.RECEIVED: frozenset({S.INSPECTED}),
    S.INSPECTED: frozenset({S.CLOSED}),
    S.REJECTED: frozenset(),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}
# Statuses whose units count as on their way back (or back): they cannot be asked for again.
OPEN = frozenset(set(S) - {S.REJECTED, S.CANCELLED})


def transition(current: ReturnStatus, target: ReturnStatus) -> ReturnStatus:
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is final)"
        raise InvalidReturnTransition(
            f"a return that is {current} cannot become {target}; it can become {allowed}",
            current=current.value,
            target=target.value,
        )
    return target


class RefundTiming(StrEnum):
    LABEL_SCAN = "label_scan"  # refund as soon as the carrier scans the return parcel
    RECEIPT = "receipt"  # when it is received at a location
    INSPECTION = "inspection"  # after every unit has its disposition


_REACHED = {
    RefundTiming.LABEL_SCAN: {S.IN_TRANSIT, S.RECEIVED, S.INSPECTED},
    RefundTiming.RECEIPT: {S.RECEIVED, S.INSPECTED},
    RefundTiming.INSPECTION: {S.INSPECTED},
}


def refund_due(timing: RefundTiming, status: ReturnStatus) -> bool:
    """Whether a return in `status` is to be refunded under the store's timing rule."""
    return status in _REACHED[timing]


class Disposition(StrEnum):
    RESTOCK = "restock"  # back to the location's on_hand
    REFURBISH = "refurbish"  # out of sellable stock, to be repaired
    DISPOSE = "dispose"  # written off


class RefundDestination(StrEnum):
    ORIGINAL = "original"  # the order's payments, in the policy's method order
    STORE_CREDIT = "store_credit"


# -- policy ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReturnPolicy:
    """A store's return policy (one per market may override any field)."""

    window_days: int = 30
    expected_transit_days: int = 5  # when only the fulfilment date is known
    final_sale_tags: tuple[str, ...] = ("final-sale",)
    final_sale_skus: tuple[str, ...] = ()
    photo_reasons: tuple[str, ...] = ("damaged", "defective")  # review unless photos came
    inspection_reasons: tuple[str, ...] = ()  # always reviewed by a person
    fee_free_reasons: tuple[str, ...] = ("damaged", "defective", "wrong_item")
    return_shipping_fee: Decimal | None = None  # per return
    restocking_fee_percent: Decimal | None = None  # of the items refunded
    restocking_fee_per_unit: Decimal | None = None
    free_return_tags: tuple[str, ...] = ()  # customer or order tags that waive the fees
    refund_shipping: bool = False
    refund_timing: RefundTiming = RefundTiming.RECEIPT
    refund_to: RefundDestination = RefundDestination.ORIGINAL
    store_credit_bonus_percent: Decimal = Decimal(0)
    payment_order: tuple[str, ...] = ("gift_card",)  # methods refunded first, in this order
    exchange_deadline_days: int = 14  # an instant exchange's return must arrive by then
    markets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def for_country(self, country: str | None) -> ReturnPolicy:
        overrides = self.markets.get((country or "").upper())
        if not overrides:
            return self
        return replace(_policy_fields(dict(overrides), base=self), markets={})

    def fee_rules(self) -> list[FeeRule]:
        rules = []
        if self.restocking_fee_percent is not None or self.restocking_fee_per_unit is not None:
            rules.append(FeeRule("restocking", percent=self.restocking_fee_percent,
                                 per_unit=self.restocking_fee_per_unit))  # fmt: skip
        if self.return_shipping_fee is not None:
            rules.append(FeeRule("return_shipping", fixed=self.return_shipping_fee))
        return rules

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, Mapping):
                value = {k: dict(v) for k, v in value.items()}
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ReturnPolicy:
        markets = raw.get("markets") or {}
        if not isinstance(markets, Mapping):
            raise InvalidInput("markets must map country codes to overrides", field="markets")
        policy = _policy_fields({k: v for k, v in raw.items() if k != "markets"}, base=cls())
        for country, overrides in markets.items():
            if not isinstance(overrides, Mapping) or "markets" in overrides:
                raise InvalidInput(f"markets.{country} must be an object of policy fields",
                                   field=f"markets.{country}")  # fmt: skip
            _policy_fields(dict(overrides), base=policy)  # refuse bad overrides now
        return replace(policy, markets={str(k).upper(): dict(v) for k, v in markets.items()})


_DECIMALS = {"return_shipping_fee", "restocking_fee_percent", "restocking_fee_per_unit",
             "store_credit_bonus_percent"}  # fmt: skip
_TUPLES = {"final_sale_tags", "final_sale_skus", "photo_reasons", "inspection_reasons",
           "fee_free_reasons", "free_return_tags", "payment_order"}  # fmt: skip
_INTS = {"window_days", "expected_transit_days", "exchange_deadline_days"}


def _policy_fields(raw: dict[str, Any], *, base: ReturnPolicy) -> ReturnPolicy:
    known = {f.name for f in fields(ReturnPolicy)} - {"markets"}
    values: dict[str, Any] = {}
    for name, given in raw.items():
        value = given
        if name not in known:
            raise InvalidInput(f"unknown return policy field {name!r}", field=name)
        try:
            if name in _DECIMALS:
                if value is not None:
                    if isinstance(value, float | bool):
                        raise InvalidInput(f"{name} must be a decimal string", field=name)
                    value = Decimal(str(value))
                    if not value.is_finite() or value < 0:
                        raise InvalidInput(f"{name} must not be negative", field=name)
            elif name in _TUPLES:
                if not isinstance(value, list | tuple) or not all(
                    isinstance(v, str) for v in value
                ):
                    raise InvalidInput(f"{name} must be a list of strings", field=name)
                value = tuple(value)
            elif name in _INTS:
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3650:
                    raise InvalidInput(f"{name} must be a whole number of days", field=name)
            elif name == "refund_shipping":
                if not isinstance(value, bool):
                    raise InvalidInput(f"{name} must be true or false", field=name)
            elif name == "refund_timing":
                value = RefundTiming(value)
            elif name == "refund_to":
                value = RefundDestination(value)
        except (ValueError, InvalidOperation) as exc:
            raise InvalidInput(f"{name}: {value!r} is not allowed", field=name) from exc
        values[name] = value
    return replace(base, **values)


# -- the automatic decision -----------------------------------------------------------------


class Outcome(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class ItemFacts:
    sku: str
    product_tags: tuple[str, ...]
    reason: str
    has_photos: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reasons: tuple[str, ...]
    window_ends: datetime | None


def window_start(
    policy: ReturnPolicy, delivered_at: datetime | None, fulfilled_at: datetime | None
) -> datetime | None:
    if delivered_at is not None:
        return delivered_at
    if fulfilled_at is not None:
        return fulfilled_at + timedelta(days=policy.expected_transit_days)
    return None


def decide(
    policy: ReturnPolicy,
    items: Sequence[ItemFacts],
    *,
    now: datetime,
    delivered_at: datetime | None,
    fulfilled_at: datetime | None,
) -> Decision:
    """Approve, reject with the reasons, or send to review. Rejections win over reviews."""
    start = window_start(policy, delivered_at, fulfilled_at)
    ends = start + timedelta(days=policy.window_days) if start else None
    rejections: list[str] = []
    reviews: list[str] = []
    if ends is not None and now > ends:
        rejections.append(f"the return window of {policy.window_days} days closed on "
                          f"{ends.date().isoformat()}")  # fmt: skip
    final_tags = {t.lower() for t in policy.final_sale_tags}
    for item in items:
        tags = final_tags & {t.lower() for t in item.product_tags}
        if item.sku in policy.final_sale_skus or tags:
            why = f"tag {sorted(tags)[0]}" if tags else "its SKU"
            rejections.append(f"{item.sku} is final sale ({why})")
        if item.reason in policy.photo_reasons and not item.has_photos:
            reviews.append(f"{item.sku}: reason {item.reason!r} needs photos")
        if item.reason in policy.inspection_reasons:
            reviews.append(f"{item.sku}: reason {item.reason!r} is reviewed by a person")
    if rejections:
        return Decision(Outcome.REJECT, tuple(dict.fromkeys(rejections)), ends)
    if reviews:
        return Decision(Outcome.REVIEW, tuple(dict.fromkeys(reviews)), ends)
    return Decision(Outcome.APPROVE, ("within the window and policy",), ends)


def fees_waived(policy: ReturnPolicy, reasons: Sequence[str], customer_tags: Sequence[str]) -> bool:
    """No fees for customers with a free-returns tag, or when every unit comes back for a
    reason that is the merchant's fault."""
    free = {t.lower() for t in policy.free_return_tags}
    if free & {t.lower() for t in customer_tags}:
        return True
    return bool(reasons) and all(r in policy.fee_free_reasons for r in reasons)
