"""An order's life after routing: typed holds, the payment gate, fraud scoring, edits.

Pure: the callers pass in what was stored (financial status, risk assessments, the customer's
recent orders) and `now`; these functions return decisions and their reasons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aoms.domain.errors import BelowShipped, InvalidInput
from aoms.domain.money import Money


class HoldKind(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    HIGH_FRAUD_RISK = "high_fraud_risk"
    INCORRECT_ADDRESS = "incorrect_address"
    MANUAL_REVIEW = "manual_review"
    MERCHANT_RULE = "merchant_rule"


class HoldStatus(StrEnum):
    OPEN = "open"
    RELEASED = "released"
    CANCELLED = "cancelled"  # the order was cancelled while the hold was open


class LifecycleState(StrEnum):
    """What an order waits for, derived from its routing status, its open holds and how much
    of it has shipped."""

    UNROUTABLE = "unroutable"  # no usable destination: nothing reserved
    BACKORDERED = "backordered"  # part of it is short of stock
    ON_HOLD = "on_hold"  # routed and reserved, but a hold keeps it from fulfilment
    READY = "ready_for_fulfilment"  # routed, reserved, no open hold: may be handed on
    PARTLY_SHIPPED = "partly_shipped"  # some units left; the rest is reserved, no hold
    SHIPPED = "shipped"  # every unit to ship has left: nothing more to hand on
    CANCELLED = "cancelled"


def lifecycle_state(
    routing_status: str, open_holds: int, *, to_ship: int = 0, shipped: int = 0
) -> LifecycleState:
    """`to_ship`: the order's units that need shipping; `shipped`: those of them that left."""
    if routing_status == "cancelled":
        return LifecycleState.CANCELLED
    if to_ship and shipped >= to_ship:
        return LifecycleState.SHIPPED  # a hold placed after it left holds nothing back
    if open_holds:
        return LifecycleState.ON_HOLD
    if routing_status == "routed":
        return LifecycleState.PARTLY_SHIPPED if shipped else LifecycleState.READY
    return LifecycleState(routing_status)


# -- payment ----------------------------------------------------------------------------------


class PaymentGate(StrEnum):
    PAID = "paid"  # fulfil only once the payment is captured
    AUTHORIZED = "authorized"  # an authorisation is enough


# Shopify's financial_status values, and which gate each one passes.
_PASSES: dict[str, frozenset[PaymentGate]] = {
    "paid": frozenset({PaymentGate.PAID, PaymentGate.AUTHORIZED}),
    "partially_refunded": frozenset({PaymentGate.PAID, PaymentGate.AUTHORIZED}),
    "refunded": frozenset(),
    "authorized": frozenset({PaymentGate.AUTHORIZED}),
    "partially_paid": frozenset({PaymentGate.AUTHORIZED}),
    "pending": frozenset(),
    "voided": frozenset(),
    "expired": frozenset(),
}


def payment_satisfied(financial_status: str | None, gate: PaymentGate) -> bool:
    """Whether the order's payment lets it be fulfilled under the store's gate. An order
    from a channel that sends no financial status is taken as paid (it was settled there)."""
    if financial_status is None:
        return True
    return gate in _PASSES.get(financial_status.lower(), frozenset())


# -- fraud ------------------------------------------------------------------------------------


class FraudAction(StrEnum):
    ACCEPT = "accept"
    REVIEW = "review"  # hold for a person (high_fraud_risk hold)
    CANCEL = "cancel"


# Shopify's RiskAssessmentResult (GraphQL riskLevel; "risk_level" in lower case in the
# orders/risk_assessment_changed webhook) as points out of 100.
SHOPIFY_RISK_POINTS: dict[str, int] = {"HIGH": 70, "MEDIUM": 30, "LOW": 0, "NONE": 0, "PENDING": 0}


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """One provider's assessment, as Shopify reports it."""

    risk_level: str  # HIGH | MEDIUM | LOW | NONE | PENDING
    provider: str | None = None  # None when Shopify made it
    facts: tuple[tuple[str, str], ...] = ()  # (description, sentiment)

    @classmethod
    def from_shopify(cls, raw: Mapping[str, Any]) -> RiskAssessment:
        """From a GraphQL OrderRiskAssessment ({riskLevel, facts, provider{title}}) or an
        orders/risk_assessment_changed webhook body ({risk_level, provider_title})."""
        level = raw.get("riskLevel", raw.get("risk_level"))
        if not isinstance(level, str) or level.upper() not in SHOPIFY_RISK_POINTS:
            raise InvalidInput(
                f"risk level {level!r} is not one of {sorted(SHOPIFY_RISK_POINTS)}",
                field="risk_level",
            )
        provider = raw.get("provider")
        title = (
            provider.get("title") if isinstance(provider, Mapping) else raw.get("provider_title")
        )
        facts = tuple(
            (str(f.get("description", "")), str(f.get("sentiment", "NEUTRAL")).upper())
            for f in raw.get("facts") or []
            if isinstance(f, Mapping)
        )
        return cls(level.upper(), str(title) if title else None, facts)


@dataclass(frozen=True, slots=True)
class FraudThresholds:
    """A store's fraud settings. Scores run from 0 to 100."""

    review_at: int = 50
    cancel_at: int = 90
    high_value: Money | None = None  # orders worth at least this add `high_value_points`
    high_value_points: int = 20
    velocity_window_hours: int = 24
    velocity_limit: int = 3  # more orders than this in the window, per customer or address
    velocity_points: int = 25
    mismatch_points: int = 15  # billing country differs from shipping country
    risky_countries: frozenset[str] = frozenset()
    country_points: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.review_at <= self.cancel_at <= 100:
            raise InvalidInput(
                "thresholds need 0 < review_at <= cancel_at <= 100", field="review_at"
            )


@dataclass(frozen=True, slots=True)
class RiskSignals:
    """What aoms knows about an order beyond the providers' assessments."""

    total: Money
    shipping_country: str | None
    billing_country: str | None
    orders_by_customer: int  # in the window, this order included
    orders_to_address: int  # in the window, this order included
    assessments: tuple[RiskAssessment, ...] = ()


@dataclass(frozen=True, slots=True)
class FraudDecision:
    score: int
    action: FraudAction
    reasons: tuple[str, ...] = field(default=())


def score_risk(signals: RiskSignals, t: FraudThresholds) -> FraudDecision:
    """Add up the points of every signal that fires (capped at 100) and compare with the
    store's thresholds. Every point is explained by a reason."""
    points = 0
    reasons: list[str] = []
    worst = max(signals.assessments, key=lambda a: SHOPIFY_RISK_POINTS[a.risk_level], default=None)
    if worst is not None and SHOPIFY_RISK_POINTS[worst.risk_level]:
        p = SHOPIFY_RISK_POINTS[worst.risk_level]
        points += p
        who = worst.provider or "Shopify"
        negatives = [d for d, s in worst.facts if s == "NEGATIVE"]
        why = f" ({'; '.join(negatives)})" if negatives else ""
        reasons.append(f"+{p}: {who} assessed the risk as {worst.risk_level}{why}")
    high = t.high_value
    same_currency = high is not None and signals.total.currency == high.currency
    if high is not None and same_currency and signals.total.amount >= high.amount:
        points += t.high_value_points
        reasons.append(
            f"+{t.high_value_points}: order value {signals.total} is at least {t.high_value}"
        )
    for count, who in (
        (signals.orders_by_customer, "this customer"),
        (signals.orders_to_address, "this shipping address"),
    ):
        if count > t.velocity_limit:
            points += t.velocity_points
            reasons.append(
                f"+{t.velocity_points}: {count} orders from {who} in "
                f"{t.velocity_window_hours} h (limit {t.velocity_limit})"
            )
    if (
        signals.billing_country
        and signals.shipping_country
        and signals.billing_country.upper() != signals.shipping_country.upper()
    ):
        points += t.mismatch_points
        reasons.append(
            f"+{t.mismatch_points}: billed in {signals.billing_country.upper()} but shipped to "
            f"{signals.shipping_country.upper()}"
        )
    if signals.shipping_country and signals.shipping_country.upper() in t.risky_countries:
        points += t.country_points
        reasons.append(f"+{t.country_points}: ships to {signals.shipping_country.upper()}, "
                       "a country the store reviews")  # fmt: skip
    score = min(points, 100)
    if score >= t.cancel_at:
        action = FraudAction.CANCEL
    elif score >= t.review_at:
        action = FraudAction.REVIEW
    else:
        action = FraudAction.ACCEPT
    return FraudDecision(score, action, tuple(reasons))


# -- the store's lifecycle settings ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LifecycleSettings:
    payment_gate: PaymentGate = PaymentGate.PAID
    fraud: FraudThresholds = FraudThresholds()
    hold_tags: frozenset[str] = frozenset()  # orders tagged with one are held (merchant rule)

    def as_dict(self) -> dict[str, Any]:
        f = self.fraud
        return {
            "payment_gate": self.payment_gate.value,
            "hold_tags": sorted(self.hold_tags),
            "fraud": {
                "review_at": f.review_at,
                "cancel_at": f.cancel_at,
                "high_value": str(f.high_value.amount) if f.high_value else None,
                "high_value_currency": f.high_value.currency if f.high_value else None,
                "high_value_points": f.high_value_points,
                "velocity_window_hours": f.velocity_window_hours,
                "velocity_limit": f.velocity_limit,
                "velocity_points": f.velocity_points,
                "mismatch_points": f.mismatch_points,
                "risky_countries": sorted(f.risky_countries),
                "country_points": f.country_points,
            },
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LifecycleSettings:
        f = dict(raw.get("fraud") or {})
        value, currency = f.pop("high_value", None), f.pop("high_value_currency", None)
        high = Money.of(Decimal(str(value)), str(currency)) if value is not None else None
        countries = frozenset(str(c).upper() for c in f.pop("risky_countries", []) or [])
        return cls(
            payment_gate=PaymentGate(raw.get("payment_gate", PaymentGate.PAID.value)),
            fraud=FraudThresholds(high_value=high, risky_countries=countries, **f),
            hold_tags=frozenset(str(x) for x in raw.get("hold_tags", []) or []),
        )


# -- edits --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineState:
    line_no: int
    sku: str
    quantity: int
    shipped: int
    reserved: int
    backordered: int


@dataclass(frozen=True, slots=True)
class LineChange:
    """A line's new quantity and what that does to it: units to release from its
    reservations, and units that are no longer backordered."""

    line_no: int
    sku: str
    quantity: int
    release: int
    unbackorder: int


def plan_quantity_changes(
    lines: Sequence[LineState], wanted: Mapping[int, int]
) -> list[LineChange]:
    """New quantities for lines (0 removes a line). A line cannot go below what has shipped
    or grow (add a line instead). Backordered units go first, then reserved ones."""
    by_no = {ln.line_no: ln for ln in lines}
    out: list[LineChange] = []
    for line_no, qty in sorted(wanted.items()):
        line = by_no.get(line_no)
        if line is None:
            raise InvalidInput(f"the order has no line {line_no}", field=f"lines[{line_no}]")
        if qty < line.shipped:
            raise BelowShipped(
                f"line {line_no} ({line.sku}): {line.shipped} unit(s) have shipped, so its "
                f"quantity cannot be {qty}",
                field=f"lines[{line_no}].quantity",
                shipped=line.shipped,
                requested=qty,
            )
        if qty > line.quantity:
            raise InvalidInput(
                f"line {line_no} can only be reduced (from {line.quantity}); add a line for more",
                field=f"lines[{line_no}].quantity",
            )
        cut = line.quantity - qty
        unbackorder = min(cut, line.backordered)
        release = min(cut - unbackorder, line.reserved)
        out.append(LineChange(line_no, line.sku, qty, release, unbackorder))
    return out


def reservation_cuts(reservations: Sequence[tuple[int, int]], units: int) -> list[tuple[int, int]]:
    """Which reservations (id, quantity) give up `units`, newest first: (id, units cut)."""
    cuts: list[tuple[int, int]] = []
    for rid, qty in sorted(reservations, key=lambda r: -r[0]):
        if units == 0:
            break
        take = min(qty, units)
        cuts.append((rid, take))
        units -= take
    return cuts
