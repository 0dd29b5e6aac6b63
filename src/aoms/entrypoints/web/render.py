"""Templates, their filters, and the small SVG map of an order's locations."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

from aoms import __version__
from aoms.domain.money import Money

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _money(value: Any, currency: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, Money):
        return f"{value.amount:,.2f} {value.currency}"
    return f"{Decimal(str(value)):,.2f} {currency}".strip()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


templates.env.filters["when"] = _when
templates.env.filters["money"] = _money
templates.env.filters["pct"] = _pct
templates.env.globals["version"] = __version__


def order_map(detail: dict[str, Any], width: int = 360, height: int = 240) -> dict[str, Any]:
    """Points for an SVG map: the network's locations (those the decision weighed marked as
    candidates, the chosen ones as shipping), the destination, and a line per shipment.
    An equirectangular projection scaled by the cosine of the mean latitude, fitted to the box."""
    decision = detail["routing"][-1] if detail["routing"] else None
    chosen: set[str] = set()
    weighed: set[str] = set()
    if decision:
        chosen = {s["location_id"] for s in decision.get("chosen", {}).get("shipments", [])}
        weighed = set(chosen)
        for option in decision.get("runners_up", []):
            weighed |= {s["location_id"] for s in option.get("shipments", [])}
    spots = [
        {
            "id": loc["id"],
            "name": loc["name"],
            "lat": loc["lat"],
            "lng": loc["lng"],
            "kind": "chosen"
            if loc["id"] in chosen
            else "candidate"
            if loc["id"] in weighed
            else "other",
        }
        for loc in detail["locations"]
        if loc["active"] or loc["id"] in chosen
    ]
    dest = detail.get("destination")
    points = [(s["lat"], s["lng"]) for s in spots] + ([(dest["lat"], dest["lng"])] if dest else [])
    if not points:
        return {"spots": [], "dest": None, "lines": [], "width": width, "height": height}
    mean_lat = sum(p[0] for p in points) / len(points)
    kx = math.cos(math.radians(mean_lat))
    xs = [p[1] * kx for p in points]
    ys = [-p[0] for p in points]
    pad, label = 24, 72  # room on the right for a label beside the easternmost point
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    scale = min(
        (width - 2 * pad - label) / max(max(xs) - min(xs), span * 0.3),
        (height - 2 * pad) / max(max(ys) - min(ys), span * 0.3),
    )
    x0 = (width - label - scale * (max(xs) - min(xs))) / 2
    y0 = (height - scale * (max(ys) - min(ys))) / 2

    def xy(lat: float, lng: float) -> tuple[float, float]:
        return (
            round(x0 + (lng * kx - min(xs)) * scale, 1),
            round(y0 + (-lat - min(ys)) * scale, 1),
        )

    for s in spots:
        s["x"], s["y"] = xy(s["lat"], s["lng"])
    d = None
    if dest:
        dx, dy = xy(dest["lat"], dest["lng"])
        d = {"x": dx, "y": dy, "source": dest.get("source")}
    lines = [
        {"x1": s["x"], "y1": s["y"], "x2": d["x"], "y2": d["y"]}
        for s in spots
        if s["kind"] == "chosen" and d
    ]
    return {"spots": spots, "dest": d, "lines": lines, "width": width, "height": height}
