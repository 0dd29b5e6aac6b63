"""The EasyPost and Shippo adapters over real HTTP, against local fakes that speak each
provider's documented API (auth headers, objects, units, status names)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from aoms.adapters.carriers import easypost, shippo
from aoms.domain.errors import CarrierError, InvalidSignature
from aoms.domain.money import Money
from aoms.domain.shipping import (
    CommercialInvoice,
    CustomsLine,
    Dimensions,
    Duties,
    Parcel,
    TrackingStatus,
    commercial_invoice,
)
from aoms.services.carriers import RateRequest, ShipAddress
from tests.fakes.easypost import FakeEasyPost
from tests.fakes.server import FakeServer
from tests.fakes.shippo import FakeShippo

FROM = ShipAddress(
    name="Hoboken DC", street1="1 Hudson Pl", city="Hoboken", state="NJ", zip="07030"
)
TO = ShipAddress(name="Ana", street1="200 N Spring St", city="Los Angeles", state="CA", zip="90012",
                 residential=True)  # fmt: skip
PARCEL = Parcel(Dimensions(300, 200, 200), 1_200, "M", (("mug", 2),))


@pytest.fixture
def ep() -> Iterator[tuple[FakeEasyPost, easypost.EasyPostCarrier]]:
    fake = FakeEasyPost()
    with FakeServer(fake) as server:
        fake.base_url = server.url
        carrier = easypost.EasyPostCarrier(fake.api_key, base_url=server.url + "/v2", timeout=5)
        yield fake, carrier
        carrier.close()


SERVERS: dict[int, FakeServer] = {}


@pytest.fixture
def sh() -> Iterator[tuple[FakeShippo, shippo.ShippoCarrier]]:
    fake = FakeShippo()
    with FakeServer(fake) as server:
        SERVERS[id(fake)] = server
        fake.base_url = server.url
        carrier = shippo.ShippoCarrier(fake.token, base_url=server.url, timeout=5)
        yield fake, carrier
        carrier.close()
        del SERVERS[id(fake)]


def test_easypost_rates_buy_void_and_track(
    ep: tuple[FakeEasyPost, easypost.EasyPostCarrier],
) -> None:
    fake, carrier = ep
    req = RateRequest(FROM, TO, PARCEL, "USD", options={"label_format": "PDF"})
    quotes = carrier.rates(req)
    # 1,200 g = 42.33 oz, sent rounded up to 42.4 oz; 300 mm = 11.82 in -> 11.9 in.
    sent = fake.shipments["shp_0001"]["parcel"]
    assert (sent["weight"], sent["length"], sent["width"]) == (42.4, 11.9, 7.9)
    # The fake prices base + per-ounce x 42.4: USPS Priority 8.10 + 0.06 x 42.4 = 10.644 -> 10.64.
    by = {q.key: q for q in quotes}
    assert by["usps", "Priority"].amount == Money.of("10.64", "USD")
    assert by["usps", "Priority"].days == 2
    assert by["ups", "Ground"].amount == Money.of("11.00", "USD")  # 9.30 + 0.04 x 42.4 = 10.996
    label = carrier.buy(by["usps", "Priority"], req, label_format="PDF")
    assert label.tracking_number.startswith("94001")
    assert label.file_format == "PDF"
    assert label.content is not None and label.content.startswith(b"%PDF")
    assert fake.shipments["shp_0001"]["selected_rate"]["service"] == "Priority"
    result = carrier.void(label)
    assert (result.accepted, result.status) == (True, "submitted")
    assert fake.refunds == ["shp_0001"]
    fake.trackers[label.tracking_number] = [
        {
            "object": "TrackingDetail",
            "status": "pre_transit",
            "message": "Pre-Shipment Info Sent",
            "datetime": "2026-12-07T14:00:00Z",
            "tracking_location": {},
        },
        {
            "object": "TrackingDetail",
            "status": "in_transit",
            "message": "Arrived at USPS Facility",
            "datetime": "2026-12-08T02:10:00Z",
            "tracking_location": {"city": "KEARNY", "state": "NJ"},
        },
    ]
    updates = carrier.track(label.tracking_number)
    assert [(u.status, u.provider_status, u.location) for u in updates] == [
        (TrackingStatus.LABEL_CREATED, "pre_transit", ""),
        (TrackingStatus.IN_TRANSIT, "in_transit", "KEARNY, NJ"),
    ]


def test_easypost_refuses_a_wrong_key_with_its_message() -> None:
    fake = FakeEasyPost()
    with FakeServer(fake) as server:
        carrier = easypost.EasyPostCarrier("wrong", base_url=server.url + "/v2", timeout=5)
        with pytest.raises(CarrierError, match="401: API key required"):
            carrier.rates(RateRequest(FROM, TO, PARCEL, "USD"))


def test_easypost_address_verification(ep: tuple[FakeEasyPost, easypost.EasyPostCarrier]) -> None:
    _, carrier = ep
    good = carrier.verify_address(TO)
    assert good is not None and good.valid and good.suggested is not None
    bad = carrier.verify_address(ShipAddress(name="x", city="Nowhere"))
    assert bad is not None and not bad.valid and bad.messages == ("Address not found",)


def _customs(hs: str | None) -> CommercialInvoice:
    line = CustomsLine("mug", "Ceramic mug", 2, Money.of("24.00", "USD"), 700, hs, "CN")
    return commercial_invoice(
        [line], exporter="US", importer="CA", currency="USD", duties=Duties.DDP
    )


def test_easypost_and_shippo_send_customs_for_a_shipment_abroad(
    ep: tuple[FakeEasyPost, easypost.EasyPostCarrier], sh: tuple[FakeShippo, shippo.ShippoCarrier]
) -> None:
    abroad = ShipAddress(name="Lee", street1="1 King St W", city="Toronto", state="ON",
                         zip="M5H 1A1", country="CA")  # fmt: skip
    req = RateRequest(FROM, abroad, PARCEL, "USD", customs=_customs("691200"))
    fake_ep, ep_carrier = ep
    assert ep_carrier.rates(req)
    sent = fake_ep.shipments["shp_0001"]["customs_info"]["customs_items"][0]
    assert (sent["hs_tariff_number"], sent["origin_country"], sent["value"]) == (
        "691200",
        "CN",
        "24.00",
    )
    assert fake_ep.shipments["shp_0001"]["options"]["delivery_duty_paid"] is True
    fake_sh, sh_carrier = sh
    assert sh_carrier.rates(req)
    sent_requests = SERVERS[id(fake_sh)].requests
    body = json.loads(next(r for r in reversed(sent_requests) if r.path == "/shipments/").body)
    assert body["customs_declaration"]["incoterm"] == "DDP"
    assert body["customs_declaration"]["items"][0]["tariff_number"] == "691200"


def test_shippo_rates_buy_void_and_track(sh: tuple[FakeShippo, shippo.ShippoCarrier]) -> None:
    fake, carrier = sh
    req = RateRequest(FROM, TO, PARCEL, "USD")
    quotes = carrier.rates(req)
    # 1.2 kg: Priority 7.95 + 1.40 x 1.2 = 9.63; FedEx Home 9.90 + 0.90 x 1.2 = 10.98.
    by = {q.key: q for q in quotes}
    assert by["usps", "usps_priority"].amount.amount == Decimal("9.63")
    assert by["fedex", "fedex_home_delivery"].amount.amount == Decimal("10.98")
    assert by["usps", "usps_priority"].days == 2
    label = carrier.buy(by["usps", "usps_priority"], req, label_format="PDF")
    assert label.content is not None and label.content.startswith(b"%PDF")
    assert fake.transactions[label.label_id]["label_file_type"] == "PDF_4x6"
    result = carrier.void(label)
    assert (result.accepted, result.status) == (True, "QUEUED")
    assert fake.refunds == [label.label_id]
    fake.tracks[label.tracking_number]["history"] = [
        {
            "status": "PRE_TRANSIT",
            "status_details": "Label created",
            "status_date": "2026-12-07T15:00:00Z",
            "location": None,
            "substatus": None,
        },
        {
            "status": "TRANSIT",
            "status_details": "Out for delivery",
            "status_date": "2026-12-09T08:00:00Z",
            "location": {"city": "Los Angeles", "state": "CA"},
            "substatus": {"code": "out_for_delivery"},
        },
    ]
    updates = carrier.track(label.tracking_number, service="usps_priority")
    assert [(u.status, u.provider_status) for u in updates] == [
        (TrackingStatus.LABEL_CREATED, "PRE_TRANSIT"),
        (TrackingStatus.OUT_FOR_DELIVERY, "TRANSIT"),
    ]


def test_shippo_refuses_a_wrong_token() -> None:
    fake = FakeShippo()
    with FakeServer(fake) as server:
        carrier = shippo.ShippoCarrier("nope", base_url=server.url, timeout=5)
        with pytest.raises(CarrierError, match="401: Invalid token"):
            carrier.rates(RateRequest(FROM, TO, PARCEL, "USD"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pre_transit", TrackingStatus.LABEL_CREATED),
        ("in_transit", TrackingStatus.IN_TRANSIT),
        ("out_for_delivery", TrackingStatus.OUT_FOR_DELIVERY),
        ("available_for_pickup", TrackingStatus.OUT_FOR_DELIVERY),
        ("delivered", TrackingStatus.DELIVERED),
        ("return_to_sender", TrackingStatus.RETURNED),
        ("failure", TrackingStatus.EXCEPTION),
        ("cancelled", TrackingStatus.EXCEPTION),
        ("error", TrackingStatus.EXCEPTION),
        ("unknown", None),
    ],
)
def test_easypost_status_names_map_to_the_normalised_status(
    name: str, expected: TrackingStatus | None
) -> None:
    assert easypost.map_status(name) == expected


@pytest.mark.parametrize(
    ("name", "sub", "expected"),
    [
        ("PRE_TRANSIT", "", TrackingStatus.LABEL_CREATED),
        ("TRANSIT", "", TrackingStatus.IN_TRANSIT),
        ("TRANSIT", "out_for_delivery", TrackingStatus.OUT_FOR_DELIVERY),
        ("DELIVERED", "", TrackingStatus.DELIVERED),
        ("RETURNED", "", TrackingStatus.RETURNED),
        ("FAILURE", "", TrackingStatus.EXCEPTION),
        ("UNKNOWN", "", None),
    ],
)
def test_shippo_status_names_map_to_the_normalised_status(
    name: str, sub: str, expected: TrackingStatus | None
) -> None:
    assert shippo.map_status(name, sub) == expected


def test_webhook_signatures_are_checked_as_each_provider_documents() -> None:
    body = b'{"object":"Event","description":"tracker.updated","result":{}}'
    secret = "whsec-\u00bd"  # NFKD turns ½ into 1⁄2 before it keys the HMAC
    key = "whsec-1\u20442".encode()
    good = "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    easypost.verify_webhook(body, {"x-hmac-signature": good}, secret)
    with pytest.raises(InvalidSignature):
        easypost.verify_webhook(body + b" ", {"x-hmac-signature": good}, secret)
    with pytest.raises(InvalidSignature):
        easypost.verify_webhook(body, {}, secret)

    now = datetime(2026, 12, 8, tzinfo=UTC).timestamp()
    t = str(int(now) - 60)
    v1 = hmac.new(b"shippo-secret", t.encode() + b"." + body, hashlib.sha256).hexdigest()
    header = {"shippo-auth-signature": f"t={t},v1={v1}"}
    shippo.verify_webhook(body, header, {}, secret="shippo-secret", token=None, now=now)
    with pytest.raises(InvalidSignature, match="too old"):
        shippo.verify_webhook(body, header, {}, secret="shippo-secret", token=None, now=now + 600)
    with pytest.raises(InvalidSignature, match="does not verify"):
        shippo.verify_webhook(b"{}", header, {}, secret="shippo-secret", token=None, now=now)
    shippo.verify_webhook(body, {}, {"token": "123abc"}, secret=None, token="123abc", now=now)
    with pytest.raises(InvalidSignature, match="token"):
        shippo.verify_webhook(body, {}, {"token": "x"}, secret=None, token="123abc", now=now)
    with pytest.raises(InvalidSignature, match="configured"):
        shippo.verify_webhook(body, {}, {}, secret=None, token=None, now=now)
