"""Place an address: the channel's own coordinates, else a US ZIP3 or country centroid."""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources

from aoms.domain.geo import Point
from aoms.domain.orders import Address


@cache
def _table(name: str) -> dict[str, list[float]]:
    text = resources.files("aoms.adapters.geodata").joinpath(name).read_text("utf-8")
    return dict(json.loads(text))


def geocode(address: Address) -> tuple[Point, str] | None:
    """(point, source) where source says how precise it is, or None when it cannot be placed."""
    p = address.point
    if (
        p is not None
        and math.isfinite(p.lat)
        and math.isfinite(p.lng)
        and (p.lat, p.lng) != (0, 0)
        and -90 <= p.lat <= 90
        and -180 <= p.lng <= 180
    ):
        return p, "address"
    country = (address.country_code or "").upper()
    zip_code = (address.zip or "").strip()
    if country in ("US", "") and len(zip_code) >= 3 and zip_code[:3].isdigit():
        hit = _table("us_zip3.json").get(zip_code[:3])
        if hit:
            return Point(hit[0], hit[1]), "zip3"
    if country:
        hit = _table("countries.json").get(country)
        if hit:
            return Point(hit[0], hit[1]), "country"
    return None
