"""A store's routing policy document: which policy routes its orders, with which weights, and
which rules narrow the candidates first.

A document is stored as a numbered version per shop (draft, active, retired); the active one
governs the shop's live routing. Pure: `restrict` takes the candidates and what the database
knows (today's shipments per location, each SKU's product tags) and returns the candidates the
rules allow, with a note for each rule that removed something; `config` turns the document
into the planner's `RoutingConfig`.

Money amounts are in the document's `currency`. An order in another currency is routed with
the rules, the multipliers and `max_shipments`, but without the money terms (split penalty,
speed, handling overrides), and its explanation says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from aoms.domain.errors import InvalidPolicyDocument
from aoms.domain.money import Money, minor_units
from aoms.domain.routing import Candidate, RateCard, RoutingConfig
from aoms.domain.service_levels import days_left, effective_card

MAX_WEIGHT = Decimal(1000)
MAX_AMOUNT = Decimal(10) ** 9
MAX_SHIPMENTS = 10
MIN_WAVE_MINUTES, MAX_WAVE_MINUTES = 5, 1440  # a wave timer runs every 5 minutes to once a day


def _bad(message: str, where: str) -> InvalidPolicyDocument:
    return InvalidPolicyDocument(message, field=where)


def _decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise _bad('must be a decimal number written as a string (e.g. "1.50")', where)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _bad(f"{value!r} is not a decimal number", where) from None
    if not number.is_finite():
        raise _bad("must be a finite number", where)
    return number


def utc_day_start(at: datetime) -> datetime:
    """The start (00:00 UTC) of the UTC day `at` falls in: the day a daily capacity counts."""
    return datetime.combine(at.astimezone(UTC).date(), time(), tzinfo=UTC)


def days_by_method(given: object) -> dict[str, int]:
    """Shipping method (matched in any case) -> days; two that differ only in case refused."""
    if not isinstance(given, Mapping):
        raise _bad("must be an object of shipping method -> days", "delivery_days")
    days: dict[str, int] = {}
    for method, value in given.items():
        key = str(method).strip().lower()
        if not key:
            raise _bad("a shipping method cannot be blank", "delivery_days")
        if key in days:
            raise _bad(f"{method!r} is given twice (methods match in any case)", "delivery_days")
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad("must be a whole number of days", f"delivery_days.{method}")
        if not 0 <= value <= 60:
            raise _bad("must be from 0 to 60 days", f"delivery_days.{method}")
        days[key] = value
    return days


def _money_amount(value: Decimal, currency: str, where: str) -> None:
    if value < 0 or value >= MAX_AMOUNT:
        raise _bad(f"must be from 0 to below {MAX_AMOUNT}", where)
    if value != value.quantize(Decimal(1).scaleb(-minor_units(currency))):
        raise _bad(f"has more decimals than {currency} has minor units", where)


@dataclass(frozen=True, slots=True)
class ObjectiveWeights:
    """The optimiser's objective: shipping × `shipping` + handling × `handling`
    + `split_penalty` per shipment beyond the first + `speed_per_km` per km of each shipment."""

    shipping: Decimal = Decimal(1)
    handling: Decimal = Decimal(1)
    split_penalty: Decimal = Decimal(0)  # money per shipment beyond the first
    speed_per_km: Decimal = Decimal(0)  # money per km: the value of delivering sooner


@dataclass(frozen=True, slots=True)
class LocationOverride:
    handling: Decimal | None = None  # money per shipment, instead of the location's own
    daily_capacity: int | None = None  # shipments (fulfilment orders) per UTC day


@dataclass(frozen=True, slots=True)
class Scarcity:
    """Price stock by what the expected orders will need of it (opportunity costs): every
    `refresh_minutes` the shop's last `window` orders, scaled to the orders expected over the
    next `horizon_days`, are planned together against the stock left, and the duals of the
    stock rows become each unit's price (`services.scarcity`)."""

    horizon_days: int = 14  # the stock is expected to last this long (until it is replenished)
    window: int = 1000  # recent orders that stand for the demand to come
    refresh_minutes: int = 60


@dataclass(frozen=True, slots=True)
class OnlyFrom:
    """SKUs, and SKUs whose product has any of `tags`, ship only from `locations`."""

    locations: frozenset[str]
    skus: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()

    def covers(self, sku: str, tags: frozenset[str]) -> bool:
        return sku in self.skus or bool(self.tags & tags)


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    policy: str
    currency: str
    weights: ObjectiveWeights = ObjectiveWeights()
    locations: Mapping[str, LocationOverride] = field(default_factory=dict)
    only_from: tuple[OnlyFrom, ...] = ()
    no_ship_to: Mapping[str, frozenset[str]] = field(default_factory=dict)  # location -> countries
    ship_together: tuple[frozenset[str], ...] = ()
    max_shipments: int = 3
    wave_minutes: int = 0  # re-plan each wave of routed orders together this often; 0 = never
    scarcity: Scarcity | None = None  # opportunity costs of stock, refreshed from recent orders
    # shipping method (lower case; "*" for any other) -> the days an order by it must arrive in
    delivery_days: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.policy or len(self.policy) > 32:
            raise _bad("must name a policy (at most 32 characters)", "policy")
        try:
            Money.zero(self.currency)
        except Exception:
            raise _bad(f"not an ISO 4217 currency code: {self.currency!r}", "currency") from None
        w = self.weights
        for name in ("shipping", "handling"):
            value = getattr(w, name)
            if not Decimal(0) <= value <= MAX_WEIGHT:
                raise _bad(f"a multiplier from 0 to {MAX_WEIGHT}", f"weights.{name}")
        _money_amount(w.split_penalty, self.currency, "weights.split_penalty")
        if not Decimal(0) <= w.speed_per_km < MAX_AMOUNT:
            raise _bad("must be from 0 (money per km)", "weights.speed_per_km")
        if not 1 <= self.max_shipments <= MAX_SHIPMENTS:
            raise _bad(f"must be from 1 to {MAX_SHIPMENTS}", "max_shipments")
        if self.wave_minutes and not MIN_WAVE_MINUTES <= self.wave_minutes <= MAX_WAVE_MINUTES:
            raise _bad(
                f"0 (no waves) or from {MIN_WAVE_MINUTES} to {MAX_WAVE_MINUTES} minutes",
                "wave_minutes",
            )
        if (sc := self.scarcity) is not None:
            for name, low, high in (
                ("horizon_days", 1, 365),
                ("window", 10, 10_000),
                ("refresh_minutes", 5, 1440),
            ):
                if not low <= getattr(sc, name) <= high:
                    raise _bad(f"must be from {low} to {high}", f"scarcity.{name}")
        for method, days in self.delivery_days.items():
            if not 0 <= days <= 60:
                raise _bad("must be from 0 to 60 days", f"delivery_days.{method}")
        for loc, override in self.locations.items():
            if override.handling is not None:
                _money_amount(override.handling, self.currency, f"locations.{loc}.handling")
            if override.daily_capacity is not None and not 0 <= override.daily_capacity <= 10**9:
                raise _bad("must be from 0 to 10^9 shipments", f"locations.{loc}.daily_capacity")
        for i, rule in enumerate(self.only_from):
            where = f"eligibility.only_from.{i}"
            if not rule.locations:
                raise _bad("name at least one location", f"{where}.locations")
            if not rule.skus and not rule.tags:
                raise _bad("name at least one SKU or product tag", where)
        for loc, countries in self.no_ship_to.items():
            for cc in countries:
                if len(cc) != 2 or not cc.isascii() or not cc.isalpha() or not cc.isupper():
                    raise _bad(
                        f"{cc!r} is not an ISO 3166 country code (two capital letters)",
                        f"eligibility.no_ship_to.{loc}",
                    )
        seen: dict[str, int] = {}
        for i, group in enumerate(self.ship_together):
            where = f"eligibility.ship_together.{i}"
            if len(group) < 2:
                raise _bad("a ship-together group needs two or more SKUs", where)
            for sku in group:
                if sku in seen:
                    raise _bad(f"{sku} is already in ship-together group {seen[sku]}", where)
                seen[sku] = i

    def days_for(self, shipping_method: str | None) -> int | None:
        """The days an order by this shipping method must arrive in; None: no limit."""
        key = (shipping_method or "").strip().lower()
        return self.delivery_days.get(key, self.delivery_days.get("*"))

    def location_ids(self) -> set[str]:
        """Every location the document names (each must exist)."""
        named = set(self.locations) | set(self.no_ship_to)
        for rule in self.only_from:
            named |= rule.locations
        return named

    # -- JSON ------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        w = self.weights
        return {
            "policy": self.policy,
            "currency": self.currency,
            "weights": {
                "shipping": str(w.shipping),
                "handling": str(w.handling),
                "split_penalty": str(w.split_penalty),
                "speed_per_km": str(w.speed_per_km),
            },
            "locations": {
                loc: {
                    k: v
                    for k, v in (
                        ("handling", None if o.handling is None else str(o.handling)),
                        ("daily_capacity", o.daily_capacity),
                    )
                    if v is not None
                }
                for loc, o in sorted(self.locations.items())
            },
            "eligibility": {
                "only_from": [
                    {
                        "skus": sorted(r.skus),
                        "tags": sorted(r.tags),
                        "locations": sorted(r.locations),
                    }
                    for r in self.only_from
                ],
                "no_ship_to": {loc: sorted(cc) for loc, cc in sorted(self.no_ship_to.items())},
                "ship_together": [sorted(g) for g in self.ship_together],
            },
            "max_shipments": self.max_shipments,
            "wave_minutes": self.wave_minutes,
            "delivery_days": dict(sorted(self.delivery_days.items())),
            "scarcity": None
            if self.scarcity is None
            else {
                "horizon_days": self.scarcity.horizon_days,
                "window": self.scarcity.window,
                "refresh_minutes": self.scarcity.refresh_minutes,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyDocument:
        """Read a document (as stored, or as the API validated it). Raises
        InvalidPolicyDocument, naming the field, for anything it cannot use."""
        try:
            weights = data.get("weights") or {}
            eligibility = data.get("eligibility") or {}
            return cls(
                policy=str(data["policy"]),
                currency=str(data["currency"]),
                weights=ObjectiveWeights(
                    **{
                        k: _decimal(weights[k], f"weights.{k}")
                        for k in ("shipping", "handling", "split_penalty", "speed_per_km")
                        if weights.get(k) is not None
                    }
                ),
                locations={
                    str(loc): LocationOverride(
                        handling=None
                        if o.get("handling") is None
                        else _decimal(o["handling"], f"locations.{loc}.handling"),
                        daily_capacity=None
                        if o.get("daily_capacity") is None
                        else int(o["daily_capacity"]),
                    )
                    for loc, o in (data.get("locations") or {}).items()
                },
                only_from=tuple(
                    OnlyFrom(
                        locations=frozenset(map(str, r.get("locations") or ())),
                        skus=frozenset(map(str, r.get("skus") or ())),
                        tags=frozenset(map(str, r.get("tags") or ())),
                    )
                    for r in eligibility.get("only_from") or ()
                ),
                no_ship_to={
                    str(loc): frozenset(map(str, cc))
                    for loc, cc in (eligibility.get("no_ship_to") or {}).items()
                },
                ship_together=tuple(
                    frozenset(map(str, g)) for g in eligibility.get("ship_together") or ()
                ),
                max_shipments=int(data.get("max_shipments", 3)),
                wave_minutes=int(data.get("wave_minutes", 0)),
                delivery_days=days_by_method(data.get("delivery_days") or {}),
                scarcity=None
                if data.get("scarcity") is None
                else Scarcity(**{k: int(v) for k, v in data["scarcity"].items()}),
            )
        except InvalidPolicyDocument:
            raise
        except KeyError as exc:
            raise _bad("is required", str(exc.args[0])) from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise _bad(f"not a routing policy document: {exc}", "document") from exc

    # -- applying it --------------------------------------------------------------------------
    def config(
        self,
        card: RateCard,
        currency: str,
        shipping_method: str | None = None,
        *,
        placed_at: datetime | None = None,
        now: datetime | None = None,
    ) -> RoutingConfig:
        """The planner's configuration for an order in `currency` by `shipping_method`: the
        rate card as the cheapest carrier service fast enough for it (domain.service_levels)
        — for the days left on `now` of an order placed at `placed_at`, when both are given."""
        w = self.weights
        money = currency == self.currency
        days = self.days_for(shipping_method)
        if placed_at is not None and now is not None:
            days = days_left(days, placed_at, now)
        return RoutingConfig(
            rate_card=effective_card(card, days)[0],
            max_shipments=self.max_shipments,
            split_penalty=w.split_penalty if money else Decimal(0),
            shipping_weight=float(w.shipping),
            handling_weight=float(w.handling),
            speed_per_km=w.speed_per_km if money else Decimal(0),
            ship_together=self.ship_together,
        )

    def capped(self) -> list[str]:
        """Locations with a daily capacity (their shipments today must be counted)."""
        return sorted(k for k, o in self.locations.items() if o.daily_capacity is not None)

    def restrict(
        self,
        candidates: Sequence[Candidate],
        *,
        currency: str,
        country: str | None,
        sku_tags: Mapping[str, Iterable[str]],
        shipped_today: Mapping[str, int],
    ) -> tuple[list[Candidate], list[str]]:
        """The candidates the rules leave, each with only the SKUs it may ship, and a note per
        rule that took something away. `shipped_today[location]` counts the fulfilment orders
        created there today (UTC); a location at its daily capacity is no candidate."""
        notes: list[str] = []
        kept: list[Candidate] = []
        tags = {sku: frozenset(t) for sku, t in sku_tags.items()}
        dest = country.upper() if country else None
        money = currency == self.currency
        if not money and (
            self.weights.split_penalty
            or self.weights.speed_per_km
            or any(o.handling is not None for o in self.locations.values())
        ):
            notes.append(
                f"The policy's amounts are in {self.currency}, so its split penalty, speed "
                f"value and handling overrides do not apply to this {currency} order."
            )
        barred: dict[str, list[str]] = {}
        for cand in candidates:
            loc = cand.location_id
            override = self.locations.get(loc)
            cap = override.daily_capacity if override else None
            if cap is not None and shipped_today.get(loc, 0) >= cap:
                notes.append(
                    f"{cand.name} is at its daily capacity "
                    f"({shipped_today.get(loc, 0)} shipments today; its capacity is {cap})."
                )
                continue
            if dest is not None and dest in self.no_ship_to.get(loc, frozenset()):
                notes.append(f"{cand.name} may not ship to {dest}.")
                continue
            available = {}
            for sku, n in cand.available.items():
                rules = [r for r in self.only_from if r.covers(sku, tags.get(sku, frozenset()))]
                if any(loc not in r.locations for r in rules):
                    barred.setdefault(sku, []).append(cand.name)
                    continue
                available[sku] = n
            if not available:
                continue
            handling = cand.handling
            if money and override is not None and override.handling is not None:
                handling = Money.of(override.handling, currency)
            if available != cand.available or handling != cand.handling:
                kept.append(replace(cand, available=available, handling=handling))
            else:
                kept.append(cand)
        for sku, names in sorted(barred.items()):
            notes.append(f"{sku} may not ship from {', '.join(sorted(names))}.")
        return kept, notes


class PolicyStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    shop: str
    version: int
    status: PolicyStatus
    document: PolicyDocument
