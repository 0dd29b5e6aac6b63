"""The carrier port: what aoms asks of a carrier (or a shipping aggregator).

A carrier adapter implements `Carrier`. aoms calls `rates` for each parcel (in parallel across
carriers, under a deadline), `buy` for the chosen quote, `void` when a shipment is cancelled,
`track` when it polls, and `verify_address` where the provider offers it. See docs/carriers.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from aoms.domain.shipping import CommercialInvoice, Parcel, Quote, TrackingStatus


@dataclass(frozen=True, slots=True)
class ShipAddress:
    name: str = ""
    street1: str = ""
    street2: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = "US"
    phone: str = ""
    email: str = ""
    company: str = ""
    residential: bool | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ShipAddress:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        aliases = {"address1": "street1", "address2": "street2", "province_code": "state",
                   "country_code": "country"}  # fmt: skip
        for alias, name in aliases.items():
            if alias in data and data[alias] is not None and name not in known:
                known[name] = data[alias]
        return cls(**{k: v if k == "residential" else str(v or "") for k, v in known.items()})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RateRequest:
    """Rates for one parcel from `origin` to `destination`."""

    origin: ShipAddress
    destination: ShipAddress
    parcel: Parcel
    currency: str
    customs: CommercialInvoice | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def cache_key(self) -> tuple[object, ...]:
        """Requests that would be quoted alike: the same lane (postal codes), the same parcel
        size and weight, the same options. Names and streets do not change a rate."""
        o, d, p = self.origin, self.destination, self.parcel
        customs = None
        if self.customs is not None:
            customs = (self.customs.duties, self.customs.total.in_minor())
        return (
            o.country.upper(), o.zip.strip()[:5], d.country.upper(), d.zip.strip()[:5],
            bool(d.residential), p.dims.sides(), p.grams, self.currency,
            tuple(sorted(self.options.items())), customs,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Label:
    carrier: str
    service: str
    tracking_number: str
    label_id: str  # the carrier's id for the purchase (EasyPost shipment, Shippo transaction)
    file_format: str  # "PDF" | "ZPL" | "PNG"
    content: bytes | None = None
    url: str | None = None
    amount: str | None = None  # what the carrier says it charged, as it said it


@dataclass(frozen=True, slots=True)
class VoidResult:
    accepted: bool
    status: str  # the carrier's word: "submitted", "refunded", "QUEUED", "SUCCESS", ...
    message: str = ""


@dataclass(frozen=True, slots=True)
class TrackingUpdate:
    tracking_number: str
    status: TrackingStatus
    provider_status: str  # as the provider named it
    occurred_at: datetime
    description: str = ""
    location: str = ""
    carrier: str = ""


@dataclass(frozen=True, slots=True)
class AddressCheck:
    valid: bool
    messages: tuple[str, ...] = ()
    suggested: ShipAddress | None = None


@runtime_checkable
class Carrier(Protocol):
    name: str

    def rates(self, request: RateRequest) -> list[Quote]: ...
    def buy(self, quote: Quote, request: RateRequest, *, label_format: str) -> Label: ...
    def void(self, label: Label) -> VoidResult: ...
    def track(self, tracking_number: str, *, service: str = "") -> list[TrackingUpdate]: ...
    def verify_address(self, address: ShipAddress) -> AddressCheck | None: ...
