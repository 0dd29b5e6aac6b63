"""The rate shopper: every carrier at once, one deadline, a TTL cache of answers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from aoms.domain.errors import CarrierError
from aoms.domain.money import Money
from aoms.domain.shipping import Dimensions, Parcel, Quote
from aoms.services.carriers import (
    AddressCheck,
    Label,
    RateRequest,
    ShipAddress,
    TrackingUpdate,
    VoidResult,
)
from aoms.services.rate_shopping import RateShopper


@dataclass
class Slow:
    name: str
    seconds: float
    price: str = "5.00"
    fail: bool = False
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rates(self, request: RateRequest) -> list[Quote]:
        with self.lock:
            self.calls += 1
        time.sleep(self.seconds)
        if self.fail:
            raise CarrierError(f"{self.name} is down")
        return [Quote(self.name, "ground", Money.of(self.price, "USD"), 3)]

    def buy(self, quote: Quote, request: RateRequest, *, label_format: str) -> Label:
        raise NotImplementedError

    def void(self, label: Label) -> VoidResult:
        raise NotImplementedError

    def track(self, tracking_number: str, *, service: str = "") -> list[TrackingUpdate]:
        return []

    def verify_address(self, address: ShipAddress) -> AddressCheck | None:
        return None


def _request(zip_to: str = "90012", grams: int = 500, name: str = "Ana") -> RateRequest:
    parcel = Parcel(Dimensions(200, 150, 100), grams, "S")
    return RateRequest(ShipAddress(zip="07030"), ShipAddress(name=name, zip=zip_to), parcel, "USD")


def test_carriers_are_asked_in_parallel_and_the_late_one_is_left_out() -> None:
    carriers = [Slow("a", 0.2), Slow("b", 0.25), Slow("late", 2.0)]
    shopper = RateShopper(carriers, deadline_seconds=0.5)
    started = time.perf_counter()
    result = shopper.shop(_request())
    elapsed = time.perf_counter() - started
    shopper.close()
    # In parallel: about the deadline, not 0.2 + 0.25 + 2.0 s.
    assert 0.5 <= elapsed < 0.9
    assert sorted(q.carrier for q in result.quotes) == ["a", "b"]
    assert [(f.carrier, f.reason) for f in result.failures] == [("late", "timeout")]
    assert all(q.ref["adapter"] == q.carrier for q in result.quotes)


def test_identical_requests_are_answered_from_the_cache_until_the_ttl() -> None:
    now = [0.0]
    a, b = Slow("a", 0), Slow("b", 0, fail=True)
    shopper = RateShopper([a, b], deadline_seconds=1, cache_seconds=60, clock=lambda: now[0])
    first = shopper.shop(_request())
    assert (first.asked, first.cached, [f.carrier for f in first.failures]) == (2, 0, ["b"])
    # The recipient's name does not change a rate; a failure is never cached.
    second = shopper.shop(_request(name="Someone else"))
    assert (second.asked, second.cached) == (1, 1)
    assert [q.carrier for q in second.quotes] == ["a"]
    assert a.calls == 1 and b.calls == 2
    # Another weight is another request.
    assert shopper.shop(_request(grams=501)).cached == 0
    now[0] = 61.0
    assert shopper.shop(_request()).cached == 0
    assert a.calls == 3
    assert shopper.hits == 1 and shopper.misses == 7
    shopper.close()
