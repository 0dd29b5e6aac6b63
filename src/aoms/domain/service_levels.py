"""Carrier services in routing: which service each shipment goes by, chosen with its location.

A rate card (`routing.RateCard`) may price several services over its distance and weight
bands — its own prices as one service (`service`, `transit_days`), and `services` beside
it, each with its own prices and transit days per distance band. An order that must arrive
within `days` (its shipping method's delivery days in the routing policy) may go by any
service that is that fast from where it ships; routing picks, for each shipment, the
cheapest such service at its distance and weight.

The choice of service never couples two shipments — each shipment's cheapest eligible
service depends only on its own distance and weight — so routing over locations × services
is routing over locations with the card `effective_card` composes: in each band, the price of
the cheapest eligible service. Every exact method (the branch and bound, HiGHS) stays exact
over both dimensions, with no more variables. Where no service is fast enough, the fastest
ones there are eligible (the promise cannot be kept from that far; the explanation says so).
A service whose days the card does not state is not taken to keep a promise of days.
The days count from the UTC day the order was placed: an order routed days later (a backorder
stock came for) has only the days left (`days_left`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from aoms.domain.errors import InvalidInput
from aoms.domain.money import Money

if TYPE_CHECKING:
    from aoms.domain.routing import RateCard


@dataclass(frozen=True, slots=True)
class ServiceRates:
    """One carrier service on a rate card: its prices over the card's bands (rows: distance,
    columns: weight) and its transit days per distance band."""

    name: str
    transit_days: tuple[int, ...]
    prices: tuple[tuple[Decimal, ...], ...]


@dataclass(frozen=True, slots=True)
class ServicePick:
    """Which service a shipment in each band of an effective card goes by."""

    names: tuple[tuple[str, ...], ...]  # [distance band][weight band]
    days: tuple[tuple[int | None, ...], ...]  # its transit days there (None: not stated)

    def at(self, card: RateCard, distance_km: float, weight_g: int) -> tuple[str, int | None]:
        d, w = card.band(distance_km, weight_g)
        return self.names[d][w], self.days[d][w]


def check(card: RateCard) -> None:
    """The services fit the card's bands; names are unique; days are whole and positive."""
    rows, cols = len(card.distance_km), len(card.weight_g)
    if card.transit_days and len(card.transit_days) != rows:
        raise InvalidInput(
            f"transit_days needs one value per distance band ({rows})", field="transit_days"
        )
    names = [card.service, *(s.name for s in card.services)]
    if len(set(names)) != len(names) or not all(n.strip() for n in names):
        raise InvalidInput(
            "each service on the card needs its own name (the card's own prices are the "
            f"service {card.service!r}, set by `service`)",
            field="services",
        )
    for s in card.services:
        if len(s.transit_days) != rows:
            raise InvalidInput(
                f"service {s.name}: transit_days needs one value per distance band ({rows})",
                field="services",
            )
        if len(s.prices) != rows or any(len(row) != cols for row in s.prices):
            raise InvalidInput(
                f"service {s.name}: prices need {rows} rows of {cols}", field="services"
            )
    for days in (card.transit_days, *(s.transit_days for s in card.services)):
        if any(d < 0 for d in days):
            raise InvalidInput("transit days cannot be negative", field="transit_days")
    for s in card.services:
        for row in s.prices:
            for price in row:
                try:
                    Money.of(price, card.currency)  # exact in the currency, as the card's own
                except (InvalidInput, ArithmeticError, ValueError) as exc:
                    raise InvalidInput(
                        f"service {s.name}: {price} is not a {card.currency} amount ({exc})",
                        field="services",
                    ) from exc


def days_left(days: int | None, placed_at: datetime, now: datetime) -> int | None:
    """Of `days` to arrive in, counted from the UTC day of `placed_at`, those left on `now`'s
    (never below 0; None: no limit)."""
    if days is None:
        return None
    gone = (now.astimezone(UTC).date() - placed_at.astimezone(UTC).date()).days
    return max(0, days - max(0, gone))


def effective_card(card: RateCard, days: int | None) -> tuple[RateCard, ServicePick | None]:
    """The card an order that must arrive within `days` (None: no limit) is routed with, and
    which service each band stands for. A card without services is returned as it is."""
    from aoms.domain.routing import RateCard

    if not card.services:
        return card, None
    services = [ServiceRates(card.service, card.transit_days, card.prices), *card.services]
    stated = [s for s in services if s.transit_days]  # unstated speed keeps no promise
    prices: list[tuple[Decimal, ...]] = []
    names: list[tuple[str, ...]] = []
    chosen_days: list[tuple[int | None, ...]] = []
    for d in range(len(card.distance_km)):
        fast = services  # no limit, or no service states its days: the cheapest
        if days is not None and stated:
            quickest = min(s.transit_days[d] for s in stated)
            # those that keep the promise from here; if none does, the fastest do their best
            fast = [s for s in stated if s.transit_days[d] <= max(days, quickest)]
        chosen = [
            min(fast, key=lambda s: (s.prices[d][w], s.name)) for w in range(len(card.weight_g))
        ]
        prices.append(tuple(s.prices[d][w] for w, s in enumerate(chosen)))
        names.append(tuple(s.name for s in chosen))
        chosen_days.append(tuple(s.transit_days[d] if s.transit_days else None for s in chosen))
    composed = RateCard(card.currency, card.distance_km, card.weight_g, tuple(prices))
    return composed, ServicePick(tuple(names), tuple(chosen_days))
