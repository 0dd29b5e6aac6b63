"""Orders as the domain sees them, whatever channel they came from."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aoms.domain.errors import InvalidInput
from aoms.domain.geo import Point
from aoms.domain.money import Money, total

MAX_ORDER_AMOUNT = Decimal(10) ** 12  # in currency units: no real order comes near it


class OrderStatus(StrEnum):
    ROUTED = "routed"  # every unit that needs shipping is reserved at a location
    BACKORDERED = "backordered"  # some units could not be reserved anywhere
    UNROUTABLE = "unroutable"  # no usable destination: nothing reserved
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Address:
    country_code: str | None = None
    province_code: str | None = None
    city: str | None = None
    zip: str | None = None
    address1: str | None = None
    name: str | None = None
    point: Point | None = None


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_no: int
    sku: str
    quantity: int
    unit_price: Money
    discount: Money  # total discount allocated to this line
    tax: Money  # total tax charged on this line
    grams: int = 0  # weight of one unit
    requires_shipping: bool = True
    external_id: str | None = None
    variant_id: str | None = None
    title: str | None = None
    properties: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.quantity < 0:
            raise InvalidInput("quantity must not be negative", field=f"lines[{self.line_no}]")
        if not self.sku:
            raise InvalidInput("every line needs a SKU", field=f"lines[{self.line_no}].sku")

    @property
    def gross(self) -> Money:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Order:
    shop: str
    channel: str
    external_id: str
    name: str
    currency: str
    placed_at: datetime
    source_updated_at: datetime  # the channel's updated_at: newer wins
    lines: tuple[OrderLine, ...]
    shipping_address: Address
    financial_status: str | None = None
    cancelled_at: datetime | None = None
    shipping: Money | None = None
    shipping_tax: Money | None = None
    order_discount: Money | None = None  # discounts not allocated to lines
    total_tax: Money | None = None
    total_price: Money | None = None
    taxes_included: bool = False
    tags: tuple[str, ...] = ()
    billing_address: Address | None = None  # for fraud checks: billing vs shipping country
    customer_key: str | None = None  # the channel's customer id, else the e-mail (velocity)
    shipping_method: str | None = None  # the shipping line's code or title ("Express")

    def __post_init__(self) -> None:
        for dt, name in ((self.placed_at, "placed_at"), (self.source_updated_at, "updated_at")):
            if dt.tzinfo is None:
                raise InvalidInput(f"{name} must carry a timezone", field=name)
        gross = sum((ln.unit_price.amount * ln.quantity for ln in self.lines), Decimal(0))
        if gross >= MAX_ORDER_AMOUNT:
            raise InvalidInput(
                f"the lines add up to {gross} {self.currency}; orders are limited to less than "
                f"{MAX_ORDER_AMOUNT:,}",
                field="lines",
            )

    def demand(self) -> dict[str, int]:
        """Units per SKU over every line that needs shipping (a SKU on two lines is summed)."""
        units: dict[str, int] = defaultdict(int)
        for line in self.lines:
            if line.requires_shipping and line.quantity > 0:
                units[line.sku] += line.quantity
        return dict(units)

    def unit_grams(self) -> dict[str, int]:
        grams: dict[str, int] = {}
        for line in self.lines:
            grams.setdefault(line.sku, line.grams)
        return grams

    def amount_check(self) -> AmountCheck:
        """Line prices − discounts + tax + shipping, against the total the channel stated."""
        zero = Money.zero(self.currency)
        gross = total([ln.gross for ln in self.lines], self.currency)
        discounts = total([ln.discount for ln in self.lines], self.currency) + (
            self.order_discount or zero
        )
        tax = self.total_tax or total([ln.tax for ln in self.lines], self.currency)
        shipping = self.shipping or zero
        computed = gross - discounts + shipping + (zero if self.taxes_included else tax)
        return AmountCheck(
            line_items=gross,
            discounts=discounts,
            tax=tax,
            shipping=shipping,
            computed_total=computed,
            stated_total=self.total_price,
        )


@dataclass(frozen=True, slots=True)
class AmountCheck:
    line_items: Money
    discounts: Money
    tax: Money
    shipping: Money
    computed_total: Money
    stated_total: Money | None

    @property
    def adds_up(self) -> bool:
        return self.stated_total is None or self.stated_total == self.computed_total

    @property
    def difference(self) -> Money:
        if self.stated_total is None:
            return Money.zero(self.computed_total.currency)
        return self.stated_total - self.computed_total


@dataclass(frozen=True, slots=True)
class LineAllocation:
    """Units of one order line reserved at one location."""

    line_no: int
    sku: str
    location_id: str
    quantity: int


def allocate_to_lines(
    lines: tuple[OrderLine, ...], shipments: dict[str, dict[str, int]]
) -> tuple[list[LineAllocation], dict[int, int]]:
    """Spread a plan's per-SKU units over the order's lines, first line first.

    `shipments` maps location -> sku -> units. Returns the allocations and, per line number,
    the units that stay backordered.
    """
    pools: dict[str, list[list[Any]]] = defaultdict(list)
    for location_id, items in shipments.items():
        for sku, units in items.items():
            pools[sku].append([location_id, units])
    allocations: list[LineAllocation] = []
    backordered: dict[int, int] = {}
    for line in lines:
        if not line.requires_shipping or line.quantity == 0:
            continue
        need = line.quantity
        for pool in pools.get(line.sku, []):
            if need == 0:
                break
            take = min(need, pool[1])
            if take:
                allocations.append(LineAllocation(line.line_no, line.sku, pool[0], take))
                pool[1] -= take
                need -= take
        if need:
            backordered[line.line_no] = need
    return allocations, backordered
