"""USPS domestic zones between 3-digit ZIP prefixes.

The package ships `usps_zones_zip3.txt.gz`, derived from USPS's zone charts (see NOTICE.md):
one line per origin prefix, `ORIGIN ZONES`, where ZONES has 1000 characters — the zone (1–9)
for destination prefix 000–999, or `0` where the chart is not in the table. A pair that is not
in the table gets the zone of the distance between the two prefixes' centroids, by USPS's own
distance bands (zone 1 up to 50 miles, 2 up to 150, 3 up to 300, 4 up to 600, 5 up to 1000,
6 up to 1400, 7 up to 1800, 8 beyond). On the pairs in the table that estimate is the chart's
zone 82% of the time and within one zone 97% of the time.

A merchant with the full chart (or another carrier's zones) loads it with `ZoneTable.from_csv`
(columns origin_zip, dest_zip, zone — the layout of USPS's zone chart exports).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO

from aoms.domain.errors import InvalidInput

DATA_FILE = "usps_zones_zip3.txt.gz"
MILE_BANDS = (50, 150, 300, 600, 1000, 1400, 1800)  # upper bounds of zones 1..7; beyond is 8
EARTH_MILES = 3958.8


def zone_for_miles(miles: float) -> int:
    for zone, bound in enumerate(MILE_BANDS, start=1):
        if miles <= bound:
            return zone
    return 8


def _miles(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * EARTH_MILES * math.asin(math.sqrt(h))


def zip3(postal_code: str | None) -> str | None:
    """The 3-digit prefix of a US ZIP (`"07102"`, `"07102-1234"`, `"7102"` with its zero lost)."""
    if not postal_code:
        return None
    digits = postal_code.strip().split("-")[0]
    if not digits.isdigit() or not 3 <= len(digits) <= 5:
        return None
    return digits.zfill(5)[:3] if len(digits) > 3 else digits.zfill(3)


@dataclass(frozen=True, slots=True)
class Zone:
    zone: int
    source: str  # "chart" (from the zone table) or "distance" (estimated from centroids)


@dataclass
class ZoneTable:
    charts: dict[str, bytes]  # origin prefix -> 1000 zone digits (b"0" = not charted)
    centroids: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def zone(self, origin_zip: str | None, dest_zip: str | None) -> Zone:
        o, d = zip3(origin_zip), zip3(dest_zip)
        if o is None or d is None:
            raise InvalidInput(
                "a US zone needs 5-digit origin and destination ZIP codes",
                field="postal_code",
                origin=origin_zip,
                destination=dest_zip,
            )
        chart = self.charts.get(o)
        if chart is not None and chart[int(d)] != ord("0"):
            return Zone(chart[int(d)] - ord("0"), "chart")
        a, b = self.centroids.get(o), self.centroids.get(d)
        if a is None or b is None:
            raise InvalidInput(
                f"no zone known from ZIP prefix {o} to {d}", field="postal_code", origin=o,
                destination=d,
            )  # fmt: skip
        return Zone(zone_for_miles(_miles(a, b)), "distance")

    def distance_km(self, origin_zip: str | None, dest_zip: str | None) -> float | None:
        """Great-circle km between the two ZIP prefixes' centroids (None if one is unknown)."""
        a, b = self.centroids.get(zip3(origin_zip) or ""), self.centroids.get(zip3(dest_zip) or "")
        if a is None or b is None:
            return None
        return _miles(a, b) * 1.609344

    def to_text(self) -> str:
        return "".join(f"{o} {z.decode()}\n" for o, z in sorted(self.charts.items()))

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[str, str, str]], centroids: Mapping[str, tuple[float, float]]
    ) -> ZoneTable:
        """(origin, destination, zone) rows; 5-digit destinations (exceptions) are skipped, and
        where a pair is charted twice with different zones the higher zone is kept."""
        charts: dict[str, bytearray] = {}
        for origin, dest, zone in rows:
            o = zip3(origin)
            if o is None or not zone.strip() or not dest.strip() or len(dest.strip()) > 3:
                continue
            d = int(dest.strip())
            z = int(zone)
            if not 1 <= z <= 9:
                raise InvalidInput(f"zone {zone} is not 1..9", field="zone")
            row = charts.setdefault(o, bytearray(b"0" * 1000))
            row[d] = max(row[d], ord("0") + z)
        return cls({o: bytes(r) for o, r in charts.items()}, centroids)

    @classmethod
    def from_csv(
        cls, source: IO[str], centroids: Mapping[str, tuple[float, float]] | None = None
    ) -> ZoneTable:
        reader = csv.DictReader(source)
        missing = {"origin_zip", "dest_zip", "zone"} - set(reader.fieldnames or ())
        if missing:
            raise InvalidInput(f"a zone file needs the columns {sorted(missing)}", field="zones")
        rows = ((r["origin_zip"], r["dest_zip"], r["zone"]) for r in reader)
        return cls.from_rows(rows, centroids if centroids is not None else zip3_centroids())


def zip3_centroids() -> dict[str, tuple[float, float]]:
    raw = resources.files("aoms.adapters.geodata").joinpath("us_zip3.json").read_text()
    return {k: (float(v[0]), float(v[1])) for k, v in json.loads(raw).items()}


def shipped_zones() -> ZoneTable:
    """The zone table shipped with aoms (read once per call; keep the result)."""
    raw = resources.files("aoms.adapters.carriers").joinpath(DATA_FILE).read_bytes()
    charts = {}
    for line in gzip.decompress(raw).decode().splitlines():
        origin, zones = line.split(" ")
        charts[origin] = zones.encode()
    return ZoneTable(charts, zip3_centroids())


def load_zones(path: str | Path | None) -> ZoneTable:
    if path is None:
        return shipped_zones()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
        return ZoneTable.from_csv(f)
