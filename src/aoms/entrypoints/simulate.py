"""`aoms simulate`: the policy lab on an order history — a table, JSON, and an HTML report."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aoms.adapters.geocode import geocode
from aoms.adapters.importers.olist import DeliveredOrder, OlistData
from aoms.domain.errors import InvalidInput
from aoms.domain.geo import Point
from aoms.domain.money import Money, minor_units
from aoms.domain.orders import Order
from aoms.domain.promise import PromiseModel, Transit
from aoms.domain.routing import Demand, RateCard
from aoms.domain.routing_policy import days_by_method
from aoms.entrypoints.api.schemas import OrderIn
from aoms.services.policy_lab import (
    AOMS_POLICIES,
    LabLocation,
    LabOrder,
    Lanes,
    Scenario,
    backorder_cost,
    clairvoyant,
    run_policy,
)


def olist_scenario(
    data: OlistData,
    *,
    handling: str = "2.00",
    history: Sequence[DeliveredOrder] = (),
    confidence: float = 0.9,
) -> Scenario:
    """The Olist network as a lab scenario. Regions are states; with `history` (the delivered
    orders), each policy's plans are promised at `confidence` from the lanes learned on it and
    scored against the transit days seen on each lane."""
    orders = [
        LabOrder(
            o.external_id,
            o.placed_at,
            Demand(o.demand(), o.unit_grams(), o.shipping_address.point, o.currency),  # type: ignore[arg-type]
            o.shipping_address.province_code or "",
        )
        for o in data.orders
        if o.shipping_address is not None
    ]
    locations = [
        LabLocation(loc.id, loc.name, loc.point, Money.of(handling, "BRL"), loc.id.upper())
        for loc in data.locations
    ]
    lanes = None
    if history:
        seen = [(d.origin, d.destination, (d.delivered_on - d.ordered_on).days) for d in history]
        model = PromiseModel.fit(
            (Transit(o, dest, days) for o, dest, days in seen), confidence=confidence
        )
        lanes = Lanes(model, seen)
    return Scenario("olist", "BRL", data.rate_card, locations, data.stock, orders, lanes=lanes)


def read_orders(path: Path) -> list[Order]:
    """Orders in the neutral JSON format (the body of `POST /v1/orders`): a JSON array, or one
    order per line (JSON Lines). Every order is validated; the first bad one is named."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read the orders file: {exc}", field="orders") from exc
    try:
        stripped = text.lstrip()
        if stripped.startswith("["):
            raw = json.loads(text)
        else:
            raw = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not JSON or JSON Lines: {exc}", field="orders") from exc
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(OrderIn.model_validate(item).to_domain())
        except ValidationError as exc:
            first_error = exc.errors()[0]
            where = ".".join(str(x) for x in first_error["loc"])
            raise InvalidInput(
                f"{path}: order {i + 1}: {where}: {first_error['msg']}", field="orders"
            ) from exc
    return out


def neutral_scenario(
    orders: Sequence[Order], store: Mapping[str, Any], *, history_until: datetime | None = None
) -> Scenario:
    """A lab scenario from neutral orders and a store file in the demo store's layout
    (`locations`, `products` with grams, `stock`, `rate_card`, and optionally `delivery_days`
    per shipping method, as in a routing policy: with a card of several services, each order is
    routed by the cheapest fast enough for its `shipping_method`). Orders placed before
    `history_until` are history: the scarcity forecast learns from them, no policy routes them.
    An order whose address cannot be placed, or in another currency, is refused."""
    currency = str(store["currency"])
    grams = {str(p["sku"]): int(p.get("grams", 0)) for p in store.get("products", [])}
    if any(g < 0 for g in grams.values()):
        raise InvalidInput("a product in the store file weighs less than 0 g", field="products")
    locations = []
    for loc in store["locations"]:
        lat, lng = float(loc["lat"]), float(loc["lng"])
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):  # also refuses NaN
            raise InvalidInput(
                f"location {loc['id']}: ({lat}, {lng}) is not a place on the map", field="locations"
            )
        locations.append(
            LabLocation(
                str(loc["id"]),
                str(loc.get("name", loc["id"])),
                Point(lat, lng),
                Money.of(str(loc.get("handling_cost", "0")), currency),
                str(loc.get("country_code", "")),
            )
        )
    ids = [loc.id for loc in locations]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise InvalidInput(f"the store file lists location(s) {twice} twice", field="locations")
    stock: dict[tuple[str, str], int] = {}
    for r in store.get("stock", []):
        key = (str(r["sku"]), str(r["location_id"]))
        if key[1] not in ids:
            raise InvalidInput(f"stock of {key[0]} at unknown location {key[1]}", field="stock")
        if int(r["on_hand"]) < 0 or key in stock:
            raise InvalidInput(
                f"stock of {key[0]} at {key[1]} is negative or listed twice", field="stock"
            )
        stock[key] = int(r["on_hand"])
    lab: list[LabOrder] = []
    for o in sorted(orders, key=lambda o: (o.placed_at, o.external_id)):
        if o.currency != currency:
            raise InvalidInput(
                f"order {o.external_id} is in {o.currency}, the store in {currency}",
                field="currency",
            )
        placed = geocode(o.shipping_address) if o.shipping_address else None
        if placed is None:
            raise InvalidInput(
                f"order {o.external_id}: its shipping address cannot be placed on the map",
                field="shipping_address",
            )
        unit_grams = {k: g or grams.get(k, 0) for k, g in o.unit_grams().items()}
        address = o.shipping_address
        region = "-".join(x for x in (address.country_code, address.province_code) if x)
        lab.append(
            LabOrder(
                o.external_id,
                o.placed_at,
                Demand(o.demand(), unit_grams, placed[0], currency),
                region,
                o.shipping_method,
            )
        )
    card = RateCard.from_dict(store["rate_card"])
    delivery_days = days_by_method(store.get("delivery_days") or {})
    cut = history_until
    return Scenario(
        str(store.get("shop", "orders")),
        currency,
        card,
        locations,
        stock,
        [o for o in lab if cut is None or o.placed_at >= cut],
        history=[o for o in lab if cut is not None and o.placed_at < cut],
        delivery_days=delivery_days,
    )


def first(scenario: Scenario, n: int | None) -> Scenario:
    """The scenario cut to its first n orders, with the stock those orders would have drawn on
    unchanged (a shorter history against the same shelves)."""
    return scenario if n is None else replace(scenario, orders=list(scenario.orders)[:n])


def simulate(
    scenario: Scenario,
    policies: Sequence[str],
    *,
    bound: bool,
    max_shipments: int = 3,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    scale = 10 ** minor_units(scenario.currency)
    penalty = backorder_cost(scenario)
    rows = []
    for p in policies:
        result = run_policy(
            scenario,
            p,
            max_shipments=max_shipments,
            progress=partial(progress, p) if progress else None,
        )
        rows.append(result.summary(scale, penalty))
    report: dict[str, Any] = {
        "scenario": scenario.name,
        "currency": scenario.currency,
        "orders": len(scenario.orders),
        "locations": len(scenario.locations),
        "stock_units": sum(scenario.stock.values()),
        "backorder_cost_per_unit": str((Decimal(penalty) / scale).quantize(Decimal(1) / scale)),
        "max_shipments": max_shipments,
        "policies": rows,
    }
    if bound:
        cv = clairvoyant(scenario, max_shipments=max_shipments)
        report["clairvoyant"] = cv
        lower = Decimal(str(cv["total_cost"]))
        by = {r["policy"]: Decimal(str(r["total_cost"])) for r in rows}
        for r in rows:
            r["gap_to_bound"] = (
                str((by[r["policy"]] / lower - 1).quantize(Decimal("0.000001")))
                if lower > 0
                else None
            )
        ours = {k: v for k, v in by.items() if k in AOMS_POLICIES}
        if "optimal" in ours:
            myopic = ours["optimal"]
            best = min(ours.values())
            span = myopic - lower
            # Ties go to the simplest policy that reached the cost.
            report["best_policy"] = min(ours, key=lambda k: (ours[k], AOMS_POLICIES.index(k)))
            report["gap_captured_by_best"] = (
                str(((myopic - best) / span).quantize(Decimal("0.0001"))) if span > 0 else None
            )
            cheaper = {k: v for k, v in by.items() if k not in ours and v < best}
            if cheaper:  # say so: a baseline may win where each order's optimum takes stock
                name = min(cheaper, key=lambda k: (cheaper[k], k))
                report["cheaper_baseline"] = {"policy": name, "total_cost": str(cheaper[name])}
    return report


def best_words(report: Mapping[str, Any]) -> str | None:
    """The summary under the table: the best aoms policy and the share of the gap it closed,
    and a baseline that cost less still, if one did."""
    captured = report.get("gap_captured_by_best")
    if captured is None:
        return None
    words = (
        f"best aoms policy: {report['best_policy']}, closing {float(captured):.1%} of the gap "
        "between the per-order optimum and the clairvoyant bound"
    )
    if (cheaper := report.get("cheaper_baseline")) is not None:
        mine = next(r for r in report["policies"] if r["policy"] == report["best_policy"])
        words += (
            f"; the baseline {cheaper['policy']} cost less on these orders "
            f"({cheaper['total_cost']} against {mine['total_cost']}): the cheapest plan for "
            "each order in turn took stock that later orders needed more"
        )
    return words


def _bars(title: str, rows: Sequence[dict[str, Any]], key: str, unit: str = "") -> str:
    values = [float(r[key]) for r in rows]
    top = max([*values, 1e-9])
    height = 22 * len(rows) + 10
    parts = [
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg role="img" aria-label="{html.escape(title)}" width="560" height="{height}">'
    ]
    for i, (r, v) in enumerate(zip(rows, values, strict=True)):
        y = 5 + 22 * i
        w = 360 * v / top
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{html.escape(str(r["policy"]))}</text>'
            f'<rect x="140" y="{y}" width="{w:.1f}" height="16" fill="#3b6ea5"></rect>'
            f'<text x="{145 + w:.1f}" y="{y + 13}" font-size="12">{v:g}{unit}</text>'
        )
    parts.append("</svg></figure>")
    return "".join(parts)


def html_report(reports: Sequence[dict[str, Any]]) -> str:
    """One self-contained page (no scripts, no network): a table and bar charts per scenario."""
    body = []
    for rep in reports:
        rows = list(rep["policies"])
        if "clairvoyant" in rep:
            rows_b = [*rows, {"policy": "clairvoyant bound", **rep["clairvoyant"]}]
        else:
            rows_b = rows
        cols = [
            "policy", "total_cost", "landed_cost", "cost_per_order", "split_rate",
            "mean_km_per_shipment", "units_shipped", "units_backordered", "mean_promised_days",
            "on_time_rate", "gap_to_bound", "decision_ms_p50", "decision_ms_p99",
        ]  # fmt: skip
        head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in cols)
        trs = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>"
            for r in rows_b
        )
        words = best_words(rep)
        body.append(
            f"<section><h2>{html.escape(rep['scenario'])}</h2>"
            f"<p>{rep['orders']} orders, {rep['locations']} locations, {rep['stock_units']} units "
            f"of stock; at most {rep['max_shipments']} shipments per order; a unit not shipped "
            f"counts {rep['backorder_cost_per_unit']} {rep['currency']}."
            + (f" {html.escape(words[0].upper() + words[1:])}." if words else "")
            + f"</p><table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>"
            + _bars(f"Total cost ({rep['currency']})", rows_b, "total_cost")
            + _bars("Split-shipment rate", rows, "split_rate")
            + _bars("Mean km per shipment", rows, "mean_km_per_shipment", " km")
            + (
                _bars("Mean promised days", rows, "mean_promised_days", " d")
                + _bars("On-time rate against the promise", rows, "on_time_rate")
                if rows and rows[0].get("on_time_rate") is not None
                else ""
            )
            + _bars("Decision p99 (ms)", rows, "decision_ms_p99", " ms")
            + "</section>"
        )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;"
        "padding:.3rem .6rem;text-align:right}th{background:#eef2f7}td:first-child{text-align:left}"
        "figure{margin:1rem 0}figcaption{font-weight:600}"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>aoms policy lab</title><style>{style}</style></head><body>"
        "<h1>aoms policy lab</h1>" + "".join(body) + "</body></html>"
    )


def write_report(path: Path, reports: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(reports), encoding="utf-8")
