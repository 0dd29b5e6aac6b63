"""Shipping: parcels, table rates, quotes, the choice of carrier service, tracking statuses,
customs and invoice audit. Plain values in, plain values out (no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from aoms.domain.errors import CustomsDataMissing, InvalidRateCard
from aoms.domain.money import Money

# -- parcels ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dimensions:
    """Outer (items) or inner (boxes) size in millimetres."""

    length_mm: int
    width_mm: int
    height_mm: int

    @property
    def volume_mm3(self) -> int:
        return self.length_mm * self.width_mm * self.height_mm

    def sides(self) -> tuple[int, int, int]:
        a, b, c = sorted((self.length_mm, self.width_mm, self.height_mm), reverse=True)
        return a, b, c

    def fits_in(self, other: Dimensions) -> bool:
        """True if some axis-aligned rotation of self fits inside other."""
        return all(s <= o for s, o in zip(self.sides(), other.sides(), strict=True))


@dataclass(frozen=True, slots=True)
class Parcel:
    """One box as it goes to the carrier: its outer size, total weight and contents."""

    dims: Dimensions
    grams: int
    box: str | None = None
    items: tuple[tuple[str, int], ...] = ()  # (sku, units), sorted by sku


# -- table rates ------------------------------------------------------------------------------


class SurchargeKind(StrEnum):
    PER_PARCEL = "per_parcel"  # always
    LONGEST_SIDE_OVER_MM = "longest_side_over_mm"
    LENGTH_PLUS_GIRTH_OVER_MM = "length_plus_girth_over_mm"
    BILLABLE_OVER_G = "billable_over_g"
    ZONE_AT_LEAST = "zone_at_least"
    RESIDENTIAL = "residential"


@dataclass(frozen=True, slots=True)
class Surcharge:
    name: str
    kind: SurchargeKind
    amount: Money
    threshold: int = 0

    def applies(self, parcel: Parcel, zone: int, billable_g: int, residential: bool) -> bool:
        a, b, c = parcel.dims.sides()
        match self.kind:
            case SurchargeKind.PER_PARCEL:
                return True
            case SurchargeKind.LONGEST_SIDE_OVER_MM:
                return a > self.threshold
            case SurchargeKind.LENGTH_PLUS_GIRTH_OVER_MM:
                return a + 2 * (b + c) > self.threshold
            case SurchargeKind.BILLABLE_OVER_G:
                return billable_g > self.threshold
            case SurchargeKind.ZONE_AT_LEAST:
                return zone >= self.threshold
            case SurchargeKind.RESIDENTIAL:
                return residential
        return False  # pragma: no cover - every kind is matched above


def billable_grams(parcel: Parcel, dim_divisor: int | None) -> int:
    """The greater of the actual weight and the dimensional weight.

    Dimensional weight = volume in cm³ (each side rounded up to a whole cm, as carriers measure)
    / divisor (cm³ per kg: 5000 for most international cards, 139 in³/lb ≈ 5014 cm³/kg in the
    US), rounded up to the gram. No divisor: the actual weight."""
    if not dim_divisor:
        return parcel.grams
    cm3 = math.prod(math.ceil(s / 10) for s in parcel.dims.sides())
    return max(parcel.grams, -(-cm3 * 1000 // dim_divisor))


@dataclass(frozen=True, slots=True)
class ServiceCard:
    """One service of a negotiated rate card: a price per zone and weight band."""

    carrier: str
    service: str
    currency: str
    bands_g: tuple[int, ...]  # ascending upper bounds of the weight bands, in grams
    prices: Mapping[int, tuple[Money | None, ...]]  # zone -> price per band (None: not offered)
    days: Mapping[int, int]  # zone -> transit days the card promises
    dim_divisor: int | None = None
    surcharges: tuple[Surcharge, ...] = ()
    by_km: bool = False  # the keys of `prices` are distance bands (upper bounds in km), not zones

    def km_band(self, distance_km: float) -> int | None:
        """The distance band a lane falls in: the least upper bound at or above it."""
        return next((b for b in sorted(self.prices) if distance_km <= b), None)

    def __post_init__(self) -> None:
        if not self.bands_g or list(self.bands_g) != sorted(set(self.bands_g)):
            raise InvalidRateCard(
                f"{self.carrier}/{self.service}: weight bands must be ascending and distinct",
                field="max_weight_g",
            )
        for zone, row in self.prices.items():
            if len(row) != len(self.bands_g):
                raise InvalidRateCard(
                    f"{self.carrier}/{self.service} zone {zone}: a price for every weight band",
                    field="price",
                )

    def price(
        self,
        parcel: Parcel,
        zone: int,
        *,
        residential: bool = False,
        lane_zone: int | None = None,
    ) -> tuple[Money, int, tuple[tuple[str, Money], ...]] | str:
        """(total, billable grams, [(charge, amount)]) or the reason the card has no price.
        `zone` is the card's column: the zone, or on a card priced by distance its km band;
        surcharges that depend on the zone go by the lane's own zone (`lane_zone`)."""
        row = self.prices.get(zone)
        where = f"the {zone} km band" if self.by_km else f"zone {zone}"
        if row is None:
            return f"{where} is not on the card"
        billable = billable_grams(parcel, self.dim_divisor)
        band = next((i for i, bound in enumerate(self.bands_g) if billable <= bound), None)
        if band is None:
            return f"billable weight {billable} g is over the card's {self.bands_g[-1]} g"
        base = row[band]
        if base is None:
            return f"no price for {where} up to {self.bands_g[band]} g"
        parts = [("base", base)] + [
            (s.name, s.amount)
            for s in self.surcharges
            if s.applies(parcel, zone if lane_zone is None else lane_zone, billable, residential)
        ]
        total = Money.zero(self.currency)
        for _, amount in parts:
            total = total + amount
        return total, billable, tuple(parts)


# -- quotes and the choice --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    carrier: str
    service: str
    amount: Money
    days: int  # transit days the carrier claims
    ref: Mapping[str, str] = field(default_factory=dict)  # what the carrier needs to buy it
    detail: Mapping[str, object] = field(default_factory=dict)  # zone, billable weight, charges

    @property
    def key(self) -> tuple[str, str]:
        return self.carrier, self.service


@dataclass(frozen=True, slots=True)
class OnTimeRecord:
    """A service's deliveries as tracked: how many, and how many within its promised days."""

    delivered: int = 0
    on_time: int = 0

    def rate(self, prior: float, prior_weight: float) -> float:
        """The on-time rate shrunk toward `prior` (a Beta prior worth `prior_weight`
        deliveries), so a service with a short history is judged mostly by the prior."""
        return (self.on_time + prior * prior_weight) / (self.delivered + prior_weight)


class Rule(StrEnum):
    CHEAPEST_ON_TIME = "cheapest_on_time"
    FASTEST_UNDER_CAP = "fastest_under_cap"


@dataclass(frozen=True, slots=True)
class ShippingRule:
    rule: Rule = Rule.CHEAPEST_ON_TIME
    min_on_time: float = 0.85  # a service below this learned on-time rate misses the promise
    cost_cap: Money | None = None  # for fastest_under_cap
    prior_on_time: float = 0.9  # what a service with no history is assumed to achieve
    prior_weight: float = 20.0  # deliveries' worth: one late delivery alone does not disqualify


@dataclass(frozen=True, slots=True)
class Considered:
    quote: Quote
    on_time_rate: float
    deliveries: int
    arrives_on: date
    reason: str | None  # None for the chosen quote


@dataclass(frozen=True, slots=True)
class Choice:
    chosen: Considered
    rejected: tuple[Considered, ...]
    met_promise: bool
    why: str


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def choose(
    quotes: Sequence[Quote],
    rule: ShippingRule,
    *,
    ship_on: date,
    deliver_by: date | None,
    records: Mapping[tuple[str, str], OnTimeRecord],
) -> Choice | None:
    """Pick one quote by the store's rule; every other quote is kept with the reason it lost.

    cheapest_on_time: the cheapest quote that meets the promise — it arrives by `deliver_by`
    on its claimed days *and* its learned on-time rate is at least `min_on_time`; a tie in
    price goes to the better on-time rate. When no quote meets the promise, the earliest
    arrival is chosen (and the choice says so).
    fastest_under_cap: the fewest days among quotes at or under `cost_cap`; ties go to the
    better on-time rate, then the lower price. When every quote is over the cap, the cheapest.
    """
    if not quotes:
        return None
    seen: list[Considered] = []
    for q in quotes:
        record = records.get(q.key, OnTimeRecord())
        rate = record.rate(rule.prior_on_time, rule.prior_weight)
        seen.append(Considered(q, rate, record.delivered, ship_on + timedelta(days=q.days), None))

    def by_price(c: Considered) -> tuple[Decimal, float, int, str, str]:
        return (c.quote.amount.amount, -c.on_time_rate, c.quote.days, *c.quote.key)

    def by_speed(c: Considered) -> tuple[int, float, Decimal, str, str]:
        return (c.quote.days, -c.on_time_rate, c.quote.amount.amount, *c.quote.key)

    failing: dict[int, str] = {}
    if rule.rule is Rule.CHEAPEST_ON_TIME:
        for i, c in enumerate(seen):
            if deliver_by is not None and c.arrives_on > deliver_by:
                failing[i] = f"misses the promise: arrives {c.arrives_on}, after {deliver_by}"
            elif c.on_time_rate < rule.min_on_time:
                failing[i] = (
                    f"misses the promise: on time {_pct(c.on_time_rate)} "
                    f"({c.deliveries} tracked deliveries), below {_pct(rule.min_on_time)}"
                )
        ok = [i for i in range(len(seen)) if i not in failing]
        if ok:
            best = min(ok, key=lambda i: by_price(seen[i]))
            met, why = True, "the cheapest service that meets the promise"
        else:
            best = min(range(len(seen)), key=lambda i: (seen[i].arrives_on, *by_price(seen[i])))
            met, why = False, "no service meets the promise: the earliest arrival"
    else:
        cap = rule.cost_cap
        for i, c in enumerate(seen):
            if cap is not None and cap < c.quote.amount:
                failing[i] = f"over the cost cap: {c.quote.amount} > {cap}"
        ok = [i for i in range(len(seen)) if i not in failing]
        if ok:
            best = min(ok, key=lambda i: by_speed(seen[i]))
            met, why = True, "the fastest service under the cost cap"
        else:
            best = min(range(len(seen)), key=lambda i: by_price(seen[i]))
            met, why = False, "every service is over the cost cap: the cheapest"
        if deliver_by is not None and seen[best].arrives_on > deliver_by:
            met = False
    winner = seen[best]
    rejected = []
    for i, c in enumerate(seen):
        if i == best:
            continue
        reason = failing.get(i) or _lost_because(c, winner, rule.rule)
        rejected.append(Considered(c.quote, c.on_time_rate, c.deliveries, c.arrives_on, reason))
    return Choice(winner, tuple(rejected), met, why)


def _lost_because(c: Considered, winner: Considered, rule: Rule) -> str:
    w, q = winner.quote, c.quote
    name = f"{w.carrier}/{w.service}"
    if rule is Rule.CHEAPEST_ON_TIME and w.amount < q.amount:
        return f"costs {q.amount - w.amount} more than {name}"
    if rule is Rule.FASTEST_UNDER_CAP and w.days < q.days:
        return f"{q.days - w.days} day(s) slower than {name}"
    if c.on_time_rate < winner.on_time_rate:
        return (
            f"tie, lower on-time record: {_pct(c.on_time_rate)} against "
            f"{_pct(winner.on_time_rate)} for {name}"
        )
    if rule is Rule.CHEAPEST_ON_TIME and w.days < q.days:
        return f"same price, {q.days - w.days} day(s) slower than {name}"
    if rule is Rule.FASTEST_UNDER_CAP and w.amount < q.amount:
        return f"as fast, costs {q.amount - w.amount} more than {name}"
    return f"tie, {name} comes first"


def on_time(shipped_on: date, delivered_on: date, promised_days: int) -> bool:
    return delivered_on <= shipped_on + timedelta(days=promised_days)


# -- tracking ---------------------------------------------------------------------------------


class TrackingStatus(StrEnum):
    LABEL_CREATED = "label_created"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNED = "returned"


# -- customs ----------------------------------------------------------------------------------


class Duties(StrEnum):
    DDP = "DDP"  # delivered duty paid: the merchant pays duties and taxes
    DDU = "DDU"  # delivered duty unpaid: the recipient pays


@dataclass(frozen=True, slots=True)
class CustomsLine:
    sku: str
    description: str
    quantity: int
    value: Money  # the line's total value, in the order currency
    grams: int
    hs_code: str | None
    origin_country: str | None


@dataclass(frozen=True, slots=True)
class CommercialInvoice:
    """What a carrier needs to clear a shipment through customs."""

    exporter_country: str
    importer_country: str
    currency: str
    duties: Duties
    lines: tuple[CustomsLine, ...]
    contents_type: str = "merchandise"

    @property
    def total(self) -> Money:
        result = Money.zero(self.currency)
        for line in self.lines:
            result = result + line.value
        return result


def commercial_invoice(
    lines: Iterable[CustomsLine], *, exporter: str, importer: str, currency: str, duties: Duties
) -> CommercialInvoice:
    """The invoice, or CustomsDataMissing naming every line and field that is missing."""
    lines = tuple(lines)
    problems: list[dict[str, str]] = []
    for line in lines:
        hs = (line.hs_code or "").replace(".", "")
        if not hs:
            problems.append({"sku": line.sku, "field": "hs_code", "problem": "missing"})
        elif not hs.isdigit() or not 6 <= len(hs) <= 10:
            problems.append({"sku": line.sku, "field": "hs_code", "problem": "not 6-10 digits"})
        origin = line.origin_country or ""
        if len(origin) != 2 or not origin.isalpha():
            problems.append({"sku": line.sku, "field": "country_of_origin", "problem": "missing"})
        if line.value.amount <= 0:
            problems.append({"sku": line.sku, "field": "value", "problem": "not positive"})
        if not line.description.strip():
            problems.append({"sku": line.sku, "field": "description", "problem": "missing"})
        if line.value.currency != currency:
            problems.append({"sku": line.sku, "field": "value", "problem": "not in " + currency})
    if not lines:
        problems.append({"sku": "", "field": "lines", "problem": "no lines to declare"})
    if problems:
        first = problems[0]
        raise CustomsDataMissing(
            f"no label for a shipment to {importer}: {first['field']} {first['problem']} "
            f"for {first['sku'] or 'the shipment'}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            field=first["field"],
            problems=problems,
        )
    return CommercialInvoice(exporter, importer, currency, duties, lines)


# -- invoice audit ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    line_no: int
    tracking_number: str
    billed: Money


@dataclass(frozen=True, slots=True)
class AuditFinding:
    line_no: int
    tracking_number: str
    billed: Money
    quoted: Money | None
    overcharge: Money | None
    problem: str  # "over_quote" | "unknown_shipment" | "billed_twice" | "currency_differs"


@dataclass(frozen=True, slots=True)
class AuditReport:
    lines: int
    findings: tuple[AuditFinding, ...]
    total_overcharge: Mapping[str, Money]  # per currency


def audit_invoice(lines: Sequence[InvoiceLine], quoted: Mapping[str, Money]) -> AuditReport:
    """Flag every line billed above its quote (and lines no shipment of ours explains)."""
    findings: list[AuditFinding] = []
    totals: dict[str, Money] = {}
    seen: set[str] = set()
    for line in lines:
        quote = quoted.get(line.tracking_number)
        if quote is None:
            findings.append(
                AuditFinding(line.line_no, line.tracking_number, line.billed, None, None,
                             "unknown_shipment")
            )  # fmt: skip
            continue
        if line.tracking_number in seen:
            findings.append(
                AuditFinding(line.line_no, line.tracking_number, line.billed, quote, line.billed,
                             "billed_twice")
            )  # fmt: skip
            c = line.billed.currency
            totals[c] = totals.get(c, Money.zero(c)) + line.billed
            continue
        seen.add(line.tracking_number)
        if quote.currency != line.billed.currency:
            findings.append(
                AuditFinding(line.line_no, line.tracking_number, line.billed, quote, None,
                             "currency_differs")
            )  # fmt: skip
            continue
        if quote < line.billed:
            over = line.billed - quote
            findings.append(
                AuditFinding(line.line_no, line.tracking_number, line.billed, quote, over,
                             "over_quote")
            )  # fmt: skip
            totals[over.currency] = totals.get(over.currency, Money.zero(over.currency)) + over
    return AuditReport(len(lines), tuple(findings), totals)
