"""A merchant's own carrier, installed as an entry point, is asked for rates like the others."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

from aoms.adapters.carriers.plugins import GROUP, load_carriers
from aoms.domain.money import Money
from aoms.domain.shipping import Dimensions, Parcel, Quote
from aoms.services.carriers import (
    AddressCheck,
    Carrier,
    Label,
    RateRequest,
    ShipAddress,
    TrackingUpdate,
    VoidResult,
)
from aoms.services.rate_shopping import RateShopper


class AcmeFreight:
    """The smallest carrier: a flat price per kilogram started."""

    name = "acme"

    def __init__(self, settings: Any) -> None:
        self.per_kg = Money.of("3.00", "USD")

    def rates(self, request: RateRequest) -> list[Quote]:
        kg = -(-request.parcel.grams // 1000)
        return [Quote("acme", "road", self.per_kg * kg, 4)]

    def buy(self, quote: Quote, request: RateRequest, *, label_format: str) -> Label:
        return Label("acme", "road", "ACME1", "ACME1", "ZPL", b"^XA^XZ")

    def void(self, label: Label) -> VoidResult:
        return VoidResult(True, "voided")

    def track(self, tracking_number: str, *, service: str = "") -> list[TrackingUpdate]:
        return []

    def verify_address(self, address: ShipAddress) -> AddressCheck | None:
        return None


NOT_A_CARRIER = object()


def test_installed_carriers_are_loaded_and_broken_ones_skipped() -> None:
    found = [
        EntryPoint("acme", "tests.unit.test_carrier_plugins:AcmeFreight", GROUP),
        EntryPoint("broken", "tests.unit.no_such_module:X", GROUP),
        EntryPoint("odd", "tests.unit.test_carrier_plugins:NOT_A_CARRIER", GROUP),
    ]
    [carrier] = load_carriers(settings=None, found=found)
    assert isinstance(carrier, Carrier) and carrier.name == "acme"
    shopper = RateShopper([carrier])
    parcel = Parcel(Dimensions(100, 100, 100), 2_100)
    result = shopper.shop(
        RateRequest(ShipAddress(zip="07030"), ShipAddress(zip="90012"), parcel, "USD")
    )
    shopper.close()
    # 2,100 g is 3 kilograms started: 3 x 3.00.
    assert [(q.carrier, q.amount) for q in result.quotes] == [("acme", Money.of("9.00", "USD"))]
