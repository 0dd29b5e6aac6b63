"""Request bodies of the HTTP API (responses are plain data from the query functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from aoms.domain.geo import Point
from aoms.domain.money import Money
from aoms.domain.orders import Address, Order, OrderLine
from aoms.domain.routing import Policy

Amount = Annotated[
    str,
    Field(
        pattern=r"^\d{1,10}(\.\d{1,4})?$",
        examples=["19.99"],
        description="An exact, non-negative decimal amount as a string (never a float), "
        "below 10,000,000,000.",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _valid_unicode(self) -> Self:
        """JSON may escape a lone surrogate, which no database or response can encode."""
        for name, value in self:
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise ValueError(f"{name} is not valid Unicode text") from None
        return self


def _in_range(value: datetime | None) -> datetime | None:
    """Aware times from 1970 to 2999, converted to UTC."""
    if value is None:
        return None
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("time out of range") from exc
    if not 1970 <= utc.year <= 2999:
        raise ValueError("time out of range (1970-2999)")
    return utc


Time = Annotated[AwareDatetime, AfterValidator(_in_range)]

Count = Annotated[int, Field(ge=-(10**9), le=10**9)]


class AddressIn(_Strict):
    name: str | None = Field(default=None, max_length=255)
    address1: str | None = Field(default=None, max_length=255)
    city: str | None = Field(default=None, max_length=255)
    zip: str | None = Field(default=None, max_length=32)
    province_code: str | None = Field(default=None, max_length=16)
    country_code: str | None = Field(default=None, min_length=2, max_length=2)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)

    def to_domain(self) -> Address:
        point = (
            Point(self.latitude, self.longitude)
            if self.latitude is not None and self.longitude is not None
            else None
        )
        return Address(
            self.country_code,
            self.province_code,
            self.city,
            self.zip,
            self.address1,
            self.name,
            point,
        )


class LineIn(_Strict):
    sku: str = Field(min_length=1, max_length=255)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: Amount
    discount: Amount = "0"
    tax: Amount = "0"
    grams: int = Field(default=0, ge=0, le=10_000_000)
    requires_shipping: bool = True
    title: str | None = Field(default=None, max_length=512)
    external_id: str | None = Field(default=None, max_length=64)


class PaymentIn(_Strict):
    method: str = Field(
        min_length=1,
        max_length=64,
        examples=["card", "gift_card"],
        description="The payment method or gateway; a return policy's payment_order names "
        "methods to refund first.",
    )
    amount: Amount = Field(description="What this payment captured.")
    external_id: str | None = Field(default=None, max_length=64)


class OrderIn(_Strict):
    """An order from any channel other than Shopify (marketplace, POS, B2B portal …)."""

    shop: str = Field(min_length=1, max_length=255, examples=["acme.example"])
    channel: str = Field(default="api", min_length=1, max_length=32)
    external_id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=255)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    placed_at: Time
    updated_at: Time | None = None
    cancelled_at: Time | None = None
    financial_status: str | None = Field(default=None, max_length=32)
    shipping_address: AddressIn
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    shipping: Amount = "0"
    total: Amount | None = None
    taxes_included: bool = False
    tags: list[Annotated[str, Field(max_length=255)]] = Field(default_factory=list, max_length=250)
    shipping_tax: Amount = Field("0", description="Tax charged on the shipping.")
    order_discount: Amount = Field(
        "0",
        description="A discount on the whole order, not on a line (refunds allocate it "
        "over the lines in proportion to their prices).",
    )
    payments: list[PaymentIn] | None = Field(
        None,
        max_length=50,
        description="What each payment method captured; when omitted, one payment of the "
        "order's total is assumed.",
    )
    billing_address: AddressIn | None = Field(
        None, description="For the fraud checks: a billing country unlike the shipping one."
    )
    shipping_method: str | None = Field(
        None, min_length=1, max_length=255, examples=["Express"],
        description="What the buyer chose; the routing policy's delivery_days say how fast.",
    )  # fmt: skip
    customer_id: str | None = Field(
        None, min_length=1, max_length=64,
        description="The channel's id of the customer: orders per customer (velocity).",
    )  # fmt: skip
    email: str | None = Field(
        None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$",
        description="The customer's e-mail: velocity when there is no customer_id.",
    )  # fmt: skip

    def customer_key(self) -> str | None:
        """As Shopify orders are keyed (adapters.shopify.webhooks): the id, else the e-mail."""
        if self.customer_id:
            return f"customer:{self.customer_id.strip()}"
        return f"email:{self.email.strip().lower()[:240]}" if self.email else None

    def to_domain(self) -> Order:
        cur = self.currency
        line_tax = sum((Money.of(ln.tax, cur).amount for ln in self.lines), Money.zero(cur).amount)
        return Order(
            shop=self.shop.strip().lower().rstrip("."),  # domains are case-insensitive
            channel=self.channel,
            external_id=self.external_id,
            name=self.name or self.external_id,
            currency=cur,
            placed_at=self.placed_at,
            source_updated_at=self.updated_at or self.placed_at,
            cancelled_at=self.cancelled_at,
            lines=tuple(
                OrderLine(
                    line_no=i + 1,
                    sku=ln.sku,
                    quantity=ln.quantity,
                    unit_price=Money.of(ln.unit_price, cur),
                    discount=Money.of(ln.discount, cur),
                    tax=Money.of(ln.tax, cur),
                    grams=ln.grams,
                    requires_shipping=ln.requires_shipping,
                    title=ln.title,
                    external_id=ln.external_id,
                )
                for i, ln in enumerate(self.lines)
            ),
            shipping_address=self.shipping_address.to_domain(),
            financial_status=self.financial_status,
            shipping=Money.of(self.shipping, cur),
            total_price=Money.of(self.total, cur) if self.total is not None else None,
            taxes_included=self.taxes_included,
            tags=tuple(self.tags),
            shipping_tax=Money.of(self.shipping_tax, cur),
            order_discount=Money.of(self.order_discount, cur),
            total_tax=Money(line_tax, cur) + Money.of(self.shipping_tax, cur),
            billing_address=self.billing_address.to_domain() if self.billing_address else None,
            customer_key=self.customer_key(),
            shipping_method=self.shipping_method,
        )


class AdjustmentIn(_Strict):
    sku: str = Field(min_length=1, max_length=255)
    location_id: str = Field(min_length=1, max_length=64)
    delta: Count | None = Field(default=None, description="Change on_hand by this many units.")
    set_on_hand: Count | None = Field(default=None, ge=0, description="Or set an absolute count.")
    safety_stock: Count | None = Field(default=None, ge=0)
    reason: str = Field(min_length=1, max_length=64, examples=["cycle_count", "receipt"])
    reference: str | None = Field(default=None, max_length=255)
    idempotency_key: str | None = Field(default=None, max_length=255)


class LocationIn(_Strict):
    name: str = Field(min_length=1, max_length=255)
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    country_code: str = Field(min_length=2, max_length=2)
    region: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9]{1,8}$",
        description="province or state code (e.g. SP, NJ), for delivery-promise lanes",
    )
    handling_cost: Amount = "0"
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    active: bool = True


class CursorPage(BaseModel):
    items: list[dict[str, object]]
    next_cursor: str | None


class ShopIn(_Strict):
    routing_policy: Policy = Field(
        description="optimal (proven cheapest landed cost over every split), landed_cost "
        "(cheapest of the nearest subsets), shopify_default (fewest locations, then closest) "
        "or nearest"
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class ServiceRatesIn(_Strict):
    name: str = Field(min_length=1, max_length=64, examples=["express"])
    transit_days: list[Annotated[int, Field(ge=0, le=60)]] = Field(min_length=1, max_length=50)
    prices: list[list[Amount]] = Field(min_length=1, max_length=50)


class RateCardIn(_Strict):
    """Shipping price by distance band × weight band (upper bounds, ascending)."""

    distance_km: list[Annotated[float, Field(gt=0, le=50_000, allow_inf_nan=False)]] = Field(
        min_length=1, max_length=50
    )
    weight_g: list[Annotated[int, Field(gt=0, le=10_000_000)]] = Field(min_length=1, max_length=50)
    prices: list[list[Amount]] = Field(min_length=1, max_length=50)
    service: str = Field(
        "standard", min_length=1, max_length=64, description="The carrier service of `prices`."
    )
    transit_days: list[Annotated[int, Field(ge=0, le=60)]] = Field(
        default_factory=list,
        max_length=50,
        description="Days `service` takes, per distance band (none: not stated).",
    )
    services: list[ServiceRatesIn] = Field(
        default_factory=list,
        max_length=10,
        description="Other carrier services over the same bands: routing picks, for each "
        "shipment, the cheapest that meets the order's delivery days.",
    )


class ProductIn(_Strict):
    title: str = Field(min_length=1, max_length=255)
    grams: int = Field(default=0, ge=0, le=10_000_000)
    tags: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list, max_length=250
    )
    # shipping: the packed size of one unit (cartonisation) and its customs data
    length_mm: int | None = Field(None, ge=1, le=10_000)
    width_mm: int | None = Field(None, ge=1, le=10_000)
    height_mm: int | None = Field(None, ge=1, le=10_000)
    hs_code: str | None = Field(None, pattern=r"^\d{4}(\.?\d{2}){1,3}$", description="HS code")
    country_of_origin: str | None = Field(None, pattern=r"^[A-Z]{2}$")

    def shipping_fields(self) -> dict[str, object]:
        names = ("length_mm", "width_mm", "height_mm", "hs_code", "country_of_origin")
        return {k: getattr(self, k) for k in names if k in self.model_fields_set}


# -- routing policy documents ---------------------------------------------------------------
Multiplier = Annotated[
    str,
    Field(
        pattern=r"^\d{1,4}(\.\d{1,6})?$",
        examples=["1.0"],
        description="A non-negative decimal multiplier as a string (at most 1000).",
    ),
]
Rate = Annotated[
    str,
    Field(
        pattern=r"^\d{1,6}(\.\d{1,6})?$",
        examples=["0.002"],
        description="Money per km, as a string (up to six decimals).",
    ),
]
Sku = Annotated[str, Field(min_length=1, max_length=255)]
LocationId = Annotated[str, Field(min_length=1, max_length=64)]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["CA"])]


class WeightsIn(_Strict):
    shipping: Multiplier = "1"
    handling: Multiplier = "1"
    split_penalty: Amount = Field(default="0", description="Money per shipment beyond the first.")
    speed_per_km: Rate = Field(default="0", description="Money per km of each shipment.")


class LocationOverrideIn(_Strict):
    handling: Amount | None = Field(default=None, description="Handling per shipment instead.")
    daily_capacity: int | None = Field(
        default=None, ge=0, le=10**9, strict=True, description="Shipments per UTC day."
    )


class OnlyFromIn(_Strict):
    skus: list[Sku] = Field(default_factory=list, max_length=10_000)
    tags: list[Sku] = Field(default_factory=list, max_length=250)
    locations: list[LocationId] = Field(min_length=1, max_length=1000)


class EligibilityIn(_Strict):
    only_from: list[OnlyFromIn] = Field(
        default_factory=list,
        max_length=1000,
        description="These SKUs, and SKUs of products with these tags, ship only from these "
        "locations.",
    )
    no_ship_to: dict[LocationId, list[Country]] = Field(
        default_factory=dict, description="Countries each location may not ship to."
    )
    ship_together: list[list[Sku]] = Field(
        default_factory=list,
        max_length=1000,
        description="Groups of SKUs that must leave from one location.",
    )


class ScarcityIn(_Strict):
    horizon_days: int = Field(
        default=14, ge=1, le=365, strict=True, description="How long the stock must last."
    )
    window: int = Field(
        default=1000, ge=10, le=10_000, strict=True, description="Recent orders that stand for "
        "the demand to come.",
    )  # fmt: skip
    refresh_minutes: int = Field(default=60, ge=5, le=1440, strict=True)


class PolicyDocumentIn(_Strict):
    policy: str = Field(
        min_length=1,
        max_length=32,
        examples=["optimal"],
        description="A registered policy: optimal, landed_cost, shopify_default, nearest, or "
        "an installed plug-in's name (GET /v1/routing-policies lists them).",
    )
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="The currency of the document's amounts; the shop's currency if omitted.",
    )
    weights: WeightsIn = Field(default_factory=WeightsIn)
    locations: dict[LocationId, LocationOverrideIn] = Field(default_factory=dict)
    eligibility: EligibilityIn = Field(default_factory=EligibilityIn)
    max_shipments: int = Field(default=3, ge=1, le=10, strict=True)
    wave_minutes: int = Field(
        default=0,
        ge=0,
        le=1440,
        strict=True,
        description="Re-plan the orders routed in each wave together every this many minutes "
        "(5 to 1440), when the wave closes; 0 = no timer.",
    )
    scarcity: ScarcityIn | None = Field(
        default=None,
        description="Price scarce stock by what the expected orders will need of it (see "
        "docs/routing-policies.md); none by default.",
    )
    delivery_days: dict[
        Annotated[str, Field(min_length=1, max_length=255)],
        Annotated[int, Field(ge=0, le=60, strict=True)],
    ] = Field(
        default_factory=dict,
        max_length=100,
        description="Shipping method (the order's shipping line, any case) -> days it must "
        'arrive in; "*" for any other method. Routing picks, for each shipment, the cheapest '
        "carrier service on the rate card that is that fast.",
    )


class PolicyDraftIn(_Strict):
    document: PolicyDocumentIn
    note: str = Field(pattern=r"\S", max_length=2000, description="What changed and why.")


class ExperimentIn(_Strict):
    arm_a: int = Field(ge=1, le=2**31 - 1, description="A policy version of the shop (control).")
    arm_b: int = Field(ge=1, le=2**31 - 1, description="The version to try.")
    share_b: float = Field(
        default=0.5, gt=0, lt=1, allow_inf_nan=False, description="Share of orders routed by B."
    )
    note: str = Field(default="", max_length=2000)
