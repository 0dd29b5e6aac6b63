"""The table-rate carrier prices parcels by the real USPS zone of the lane.

The expected zones were read by hand from USPS's zone chart in
../shared/data/carriers/usps_zones_aedobbyn_postal/zips_zones_sample.csv.gz (the rows are quoted
below and re-read by the test when the data is beside the checkout); the ZIPs' places from
../shared/data/geo/us_zipcodes_pypi_zipcodes_1.2.0/us_zip_centroids.csv.
"""

from __future__ import annotations

import csv
import gzip
import io
from decimal import Decimal
from pathlib import Path

import pytest

from aoms.adapters.carriers.table_rate import TableRateCarrier, parse_rate_card
from aoms.adapters.carriers.zones import ZoneTable, shipped_zones, zip3_centroids, zone_for_miles
from aoms.domain.errors import InvalidRateCard
from aoms.domain.shipping import Dimensions, Parcel, billable_grams
from aoms.services.carriers import RateRequest, ShipAddress

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ZONE_FILE = DATA / "carriers" / "usps_zones_aedobbyn_postal" / "zips_zones_sample.csv.gz"

RATES = """carrier,service,zone,max_weight_g,price,currency,transit_days,dim_divisor
usps,ground_advantage,1,1000,5.10,USD,2,5000
usps,ground_advantage,1,5000,8.20,USD,2,
usps,ground_advantage,3,1000,6.05,USD,3,
usps,ground_advantage,3,5000,9.40,USD,3,
usps,ground_advantage,7,1000,9.75,USD,5,
usps,ground_advantage,7,5000,15.60,USD,5,
usps,ground_advantage,8,1000,10.90,USD,5,
usps,ground_advantage,8,5000,17.35,USD,5,
usps,priority,1,1000,8.00,USD,1,
usps,priority,3,1000,9.10,USD,2,
usps,priority,7,1000,13.45,USD,3,
usps,priority,8,1000,14.80,USD,3,
"""
SURCHARGES = """carrier,service,name,kind,threshold,amount,currency
usps,*,nonstandard_length,longest_side_over_mm,560,4.00,USD
usps,ground_advantage,residential,residential,,0.35,USD
"""

# (origin ZIP, destination ZIP, the chart's row, zone)
LANES = [
    ("07030", "02108", "070,021,3", 3),  # Hoboken NJ -> Boston MA
    ("07030", "10314", "070,103,1", 1),  # Hoboken NJ -> Staten Island NY
    ("90012", "33101", "900,331,8", 8),  # Los Angeles CA -> Miami FL
    ("90012", "60601", "900,606,7", 7),  # Los Angeles CA -> Chicago IL
]


def _carrier() -> TableRateCarrier:
    cards = parse_rate_card(io.StringIO(RATES), io.StringIO(SURCHARGES))
    return TableRateCarrier(cards, shipped_zones())


def _request(origin: str, dest: str, parcel: Parcel, *, residential: bool = False) -> RateRequest:
    return RateRequest(
        ShipAddress(zip=origin), ShipAddress(zip=dest, residential=residential), parcel, "USD"
    )


SMALL = Parcel(Dimensions(200, 150, 100), 800, "S")  # 3,000 cm³ / 5000 = 600 g dim < 800 g


@pytest.mark.skipif(not ZONE_FILE.exists(), reason="../shared/data is not beside the checkout")
def test_the_hand_read_rows_are_in_the_zone_chart() -> None:
    wanted = {row for _, _, row, _ in LANES}
    found = set()
    with gzip.open(ZONE_FILE, "rt") as f:
        for r in csv.reader(f):
            key = ",".join(r[:3])
            if key in wanted:
                found.add(key)
    assert found == wanted


@pytest.mark.parametrize(("origin", "dest", "row", "zone"), LANES)
def test_the_shipped_table_has_the_charts_zone(origin: str, dest: str, row: str, zone: int) -> None:
    z = shipped_zones().zone(origin, dest)
    assert (z.zone, z.source) == (zone, "chart")


def test_card_prices_by_real_zone() -> None:
    carrier = _carrier()
    by_lane = {}
    for origin, dest, _, _ in LANES:
        quotes = carrier.rates(_request(origin, dest, SMALL))
        by_lane[dest] = {q.service: (q.amount.amount, q.days, q.detail["zone"]) for q in quotes}
    # 800 g billable (actual > dimensional 600 g): the 1,000 g band of each zone's row.
    assert by_lane["02108"] == {
        "ground_advantage": (Decimal("6.05"), 3, 3),
        "priority": (Decimal("9.10"), 2, 3),
    }
    assert by_lane["10314"] == {
        "ground_advantage": (Decimal("5.10"), 2, 1),
        "priority": (Decimal("8.00"), 1, 1),
    }
    assert by_lane["33101"]["ground_advantage"] == (Decimal("10.90"), 5, 8)
    assert by_lane["60601"]["priority"] == (Decimal("13.45"), 3, 7)


def test_dimensional_weight_and_surcharges() -> None:
    # 600x300x300 mm, 2 kg: 60*30*30 = 54,000 cm³ / 5000 = 10.8 kg dimensional > 5 kg band:
    # ground advantage has no price over 5,000 g; priority tops out at 1,000 g. Nothing.
    big = Parcel(Dimensions(600, 300, 300), 2_000)
    assert billable_grams(big, 5000) == 10_800
    assert _carrier().rates(_request("07030", "02108", big)) == []
    # 580x100x100, 1.5 kg: 58*10*10 = 5,800 cm³ -> 1,160 g dimensional < 1,500 g actual.
    # Zone 3, band 5,000 g: 9.40 + nonstandard length (580 > 560) 4.00 + residential 0.35.
    long = Parcel(Dimensions(580, 100, 100), 1_500)
    [q] = _carrier().rates(_request("07030", "02108", long, residential=True))
    assert q.amount.amount == Decimal("13.75")
    assert q.detail["charges"] == {
        "base": "9.40",
        "nonstandard_length": "4.00",
        "residential": "0.35",
    }


def test_a_lane_the_chart_lacks_gets_the_zone_of_its_distance() -> None:
    # 070 -> 900 is not in the shipped sample. Hoboken (prefix 070 at 40.76, -74.23) to Los Angeles
    # (34.05, -118.29) is about 2,450 miles: beyond 1,800, zone 8.
    z = shipped_zones().zone("07030", "90012")
    assert (z.zone, z.source) == (8, "distance")
    assert zone_for_miles(50) == 1 and zone_for_miles(51) == 2 and zone_for_miles(1801) == 8


@pytest.mark.skipif(not ZONE_FILE.exists(), reason="../shared/data is not beside the checkout")
def test_the_shipped_table_agrees_with_the_source_on_every_charted_pair() -> None:
    table = shipped_zones()
    checked = 0
    with gzip.open(ZONE_FILE, "rt") as f:
        for i, r in enumerate(csv.DictReader(f)):
            if i % 50 or not r["zone"] or len(r["dest_zip"]) > 3:
                continue
            z = table.zone(r["origin_zip"] + "00", r["dest_zip"].zfill(3) + "00")
            assert z.source == "chart"
            assert z.zone >= int(r["zone"])  # a pair charted twice keeps its higher zone
            checked += 1
    assert checked > 4000


def test_a_merchant_zone_file_replaces_the_shipped_one() -> None:
    table = ZoneTable.from_csv(
        io.StringIO("origin_zip,dest_zip,zone\n070,021,5\n"), zip3_centroids()
    )
    assert table.zone("07030", "02108").zone == 5


def test_bad_rate_cards_are_refused_with_the_line() -> None:
    with pytest.raises(InvalidRateCard, match="line 2"):
        parse_rate_card(io.StringIO("carrier,service,zone,max_weight_g,price,currency,transit_days\n"
                                    "usps,x,one,1000,5.00,USD,2\n"))  # fmt: skip
    with pytest.raises(InvalidRateCard, match="column"):
        parse_rate_card(io.StringIO("carrier,service,zone\nusps,x,1\n"))
    with pytest.raises(InvalidRateCard, match="kind"):
        bad = "carrier,service,name,kind,threshold,amount,currency\nusps,*,x,heavy,1,1.00,USD\n"
        parse_rate_card(io.StringIO(RATES), io.StringIO(bad))


def test_international_lanes_get_no_table_rates() -> None:
    req = RateRequest(
        ShipAddress(zip="07030"), ShipAddress(zip="M5V 2T6", country="CA"), SMALL, "USD"
    )
    assert _carrier().rates(req) == []


def test_a_card_by_distance_band_prices_by_the_lanes_km() -> None:
    card = ("carrier,service,max_km,max_weight_g,price,currency,transit_days\n"
            "regional,ground,500,1000,4.00,USD,1\n"
            "regional,ground,1500,1000,6.50,USD,2\n"
            "regional,ground,5000,1000,9.00,USD,4\n")  # fmt: skip
    carrier = TableRateCarrier(parse_rate_card(io.StringIO(card)), shipped_zones())
    # Prefix 070 (40.7588, -74.2299) to 021 (42.3378, -71.0659): 1.579° of latitude and 3.164°
    # of longitude at 41.5°N ≈ sqrt(175.6² + 263.4²) ≈ 317 km: the 500 km band.
    [near] = carrier.rates(_request("07030", "02108", SMALL))
    assert (near.amount.amount, near.days, near.detail["max_km"]) == (Decimal("4.00"), 1, 500)
    assert 300 < near.detail["distance_km"] < 330  # type: ignore[operator]
    # 070 to 900 (Los Angeles) is about 3,950 km: the 5,000 km band.
    [far] = carrier.rates(_request("07030", "90012", SMALL))
    assert (far.amount.amount, far.detail["max_km"]) == (Decimal("9.00"), 5000)
    with pytest.raises(InvalidRateCard, match="not both"):
        parse_rate_card(io.StringIO("carrier,service,zone,max_km,max_weight_g,price,currency,"
                                    "transit_days\nr,g,1,500,1000,4.00,USD,1\n"))  # fmt: skip
