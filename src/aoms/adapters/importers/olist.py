"""Read the Olist e-commerce CSV layout and build a fulfilment network and an order stream.

The network (documented in docs/replay.md):
* locations = the K seller states with the most sellers, each at the mean coordinates of its
  sellers;
* a product's stock = its units ordered in the data × cover, spread over the locations in
  proportion to where its buyers are (each buyer counted at its nearest location), by largest
  remainder so the parts sum to the whole;
* the rate card = the median freight value per (distance band × weight band) cell over every
  item row, with empty cells filled from the nearest filled cell and the card made
  non-decreasing in distance and weight.
"""

from __future__ import annotations

import csv
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from aoms.domain.errors import InvalidInput
from aoms.domain.geo import Point, haversine_km
from aoms.domain.money import Money
from aoms.domain.orders import Address, Order, OrderLine
from aoms.domain.routing import RateCard

BRAZIL = ZoneInfo("America/Sao_Paulo")
DISTANCE_BANDS_KM = (100.0, 300.0, 600.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0)
WEIGHT_BANDS_G = (500, 1000, 2000, 5000, 10000, 20000, 40000)
FILES = {
    "orders": "olist_orders_dataset.csv",
    "items": "olist_order_items_dataset.csv",
    "customers": "olist_customers_dataset.csv",
    "sellers": "olist_sellers_dataset.csv",
    "products": "olist_products_dataset.csv",
    "geolocation": "olist_geolocation_dataset.csv",
}


def _rows(directory: Path, key: str) -> Iterator[dict[str, str]]:
    path = directory / FILES[key]
    if not path.is_file():
        raise InvalidInput(
            f"{path} is missing: the Olist layout needs {sorted(FILES.values())}", field="dir"
        )
    with path.open(encoding="utf-8-sig", newline="") as f:
        yield from csv.DictReader(f)


@dataclass(frozen=True)
class NetworkLocation:
    id: str
    name: str
    point: Point
    sellers: int


@dataclass(frozen=True)
class OlistData:
    orders: list[Order]  # in purchase-time order
    locations: list[NetworkLocation]
    stock: dict[tuple[str, str], int]  # (sku, location id) -> on hand
    rate_card: RateCard
    product_grams: dict[str, int]
    skipped: dict[str, int]  # reason -> orders not replayed (no items; customer not placeable)


def _local(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=BRAZIL)


def load(directory: Path, *, locations: int = 8, cover: float = 1.0) -> OlistData:
    if locations < 1:
        raise InvalidInput("at least one location is needed", field="locations")
    if cover <= 0:
        raise InvalidInput("cover must be positive", field="cover")
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in _rows(directory, "geolocation"):
        acc = sums[r["geolocation_zip_code_prefix"].zfill(5)]
        acc[0] += float(r["geolocation_lat"])
        acc[1] += float(r["geolocation_lng"])
        acc[2] += 1
    prefix_point = {k: Point(v[0] / v[2], v[1] / v[2]) for k, v in sums.items()}

    sellers: dict[str, tuple[str, Point | None]] = {}
    for r in _rows(directory, "sellers"):
        prefix = r["seller_zip_code_prefix"].zfill(5)
        sellers[r["seller_id"]] = (r["seller_state"], prefix_point.get(prefix))
    customers: dict[str, tuple[str, str, str, Point | None]] = {}
    state_points: dict[str, list[Point]] = defaultdict(list)
    for r in _rows(directory, "customers"):
        prefix = r["customer_zip_code_prefix"].zfill(5)
        point = prefix_point.get(prefix)
        customers[r["customer_id"]] = (r["customer_state"], r["customer_city"], prefix, point)
        if point:
            state_points[r["customer_state"]].append(point)
    state_centre = {
        s: Point(statistics.fmean(p.lat for p in pts), statistics.fmean(p.lng for p in pts))
        for s, pts in state_points.items()
    }
    grams: dict[str, int] = {}
    for r in _rows(directory, "products"):
        grams[r["product_id"]] = int(float(r["product_weight_g"])) if r["product_weight_g"] else 0
    known = [g for g in grams.values() if g > 0]
    default_grams = int(statistics.median(known)) if known else 500
    grams = {k: (g if g > 0 else default_grams) for k, g in grams.items()}

    items: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in _rows(directory, "items"):
        items[r["order_id"]].append(r)
    raw_orders = sorted(
        _rows(directory, "orders"), key=lambda r: (r["order_purchase_timestamp"], r["order_id"])
    )

    # Locations: the K states with the most sellers that sold something here.
    active = {r["seller_id"] for rows in items.values() for r in rows}
    by_state: dict[str, list[Point]] = defaultdict(list)
    for seller_id in active:
        state, point = sellers.get(seller_id, ("", None))
        if point is not None:
            by_state[state].append(point)
    ranked = sorted(by_state.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:locations]
    network = [
        NetworkLocation(
            id=state.lower(),
            name=f"{state} hub",
            point=Point(statistics.fmean(p.lat for p in pts), statistics.fmean(p.lng for p in pts)),
            sellers=len(pts),
        )
        for state, pts in ranked
    ]

    def nearest(point: Point) -> str:
        return min(network, key=lambda loc: (haversine_km(loc.point, point), loc.id)).id

    orders: list[Order] = []
    demand_at: dict[str, Counter[str]] = defaultdict(Counter)
    freight: dict[tuple[int, int], list[Decimal]] = defaultdict(list)
    skipped: Counter[str] = Counter()
    card_shape = RateCard(
        "BRL",
        DISTANCE_BANDS_KM,
        WEIGHT_BANDS_G,
        tuple(tuple(Decimal(0) for _ in WEIGHT_BANDS_G) for _ in DISTANCE_BANDS_KM),
    )
    for r in raw_orders:
        rows = items.get(r["order_id"])
        customer = customers.get(r["customer_id"])
        if not rows:
            skipped["no_items"] += 1
            continue
        if customer is None:
            skipped["unknown_customer"] += 1
            continue
        state, city, prefix, point = customer
        point = point or state_centre.get(state)
        if point is None:
            skipped["customer_not_placeable"] += 1
            continue
        units: Counter[str] = Counter()
        price: dict[str, str] = {}
        for it in rows:
            units[it["product_id"]] += 1
            price.setdefault(it["product_id"], it["price"])
            seller_point = sellers.get(it["seller_id"], ("", None))[1]
            if seller_point is not None:
                band = card_shape.band(
                    haversine_km(seller_point, point), grams.get(it["product_id"], default_grams)
                )
                freight[band].append(Decimal(it["freight_value"]))
        home = nearest(point)
        for product, n in units.items():
            demand_at[product][home] += n
        placed = _local(r["order_purchase_timestamp"])
        orders.append(
            Order(
                shop="olist",
                channel="olist",
                external_id=r["order_id"],
                name=r["order_id"][:8],
                currency="BRL",
                placed_at=placed,
                source_updated_at=placed,
                lines=tuple(
                    OrderLine(
                        line_no=i + 1,
                        sku=product,
                        quantity=n,
                        unit_price=Money.of(
                            Decimal(price[product]).quantize(Decimal("0.01")), "BRL"
                        ),
                        discount=Money.zero("BRL"),
                        tax=Money.zero("BRL"),
                        grams=grams.get(product, default_grams),
                    )
                    for i, (product, n) in enumerate(sorted(units.items()))
                ),
                shipping_address=Address(
                    country_code="BR", province_code=state, city=city, zip=prefix, point=point
                ),
            )
        )

    stock: dict[tuple[str, str], int] = {}
    for product, at in demand_at.items():
        target = round(sum(at.values()) * cover)
        for loc_id, n in _largest_remainder(target, at).items():
            if n:
                stock[(product, loc_id)] = n
    return OlistData(orders, network, stock, _fit_card(freight), grams, dict(skipped))


def _largest_remainder(total: int, weights: Counter[str]) -> dict[str, int]:
    whole = sum(weights.values())
    exact = {k: Decimal(total) * w / whole for k, w in weights.items()}
    out = {k: int(v) for k, v in exact.items()}
    left = total - sum(out.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))[:left]:
        out[k] += 1
    return out


def _fit_card(freight: dict[tuple[int, int], list[Decimal]]) -> RateCard:
    nd, nw = len(DISTANCE_BANDS_KM), len(WEIGHT_BANDS_G)
    filled = {cell: statistics.median(v) for cell, v in freight.items() if v}
    if not filled:
        raise InvalidInput("no freight values to fit a rate card from")
    grid = [[Decimal(0)] * nw for _ in range(nd)]
    for d in range(nd):
        for w in range(nw):
            if (d, w) in filled:
                grid[d][w] = filled[(d, w)]
            else:  # nearest filled cell in band steps; ties go to the lighter, nearer cell
                cell = min(filled, key=lambda c: (abs(c[0] - d) + abs(c[1] - w), c))
                grid[d][w] = filled[cell]
    for d in range(nd):  # never cheaper for farther or heavier
        for w in range(nw):
            left = grid[d][w - 1] if w else Decimal(0)
            up = grid[d - 1][w] if d else Decimal(0)
            grid[d][w] = max(grid[d][w], left, up).quantize(Decimal("0.01"))
    return RateCard("BRL", DISTANCE_BANDS_KM, WEIGHT_BANDS_G, tuple(tuple(r) for r in grid))


@dataclass(frozen=True)
class DeliveredOrder:
    order_id: str
    ordered_on: date  # local purchase date
    delivered_on: date
    estimated_on: date  # Olist's own promise
    origin: str  # the first item's seller state
    destination: str  # the customer's state
    shipped_on: date | None = None  # handed to the carrier (when recorded and plausible)


def _handed_over(r: dict[str, str]) -> date | None:
    shipped = r["order_delivered_carrier_date"]
    if not shipped or not (
        r["order_purchase_timestamp"] <= shipped <= r["order_delivered_customer_date"]
    ):
        return None  # not recorded, or recorded outside the order's life
    return _local(shipped).date()


def _states(directory: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(order id -> its first item's seller state, customer id -> the customer's state)."""
    seller_state = {r["seller_id"]: r["seller_state"] for r in _rows(directory, "sellers")}
    customer_state = {r["customer_id"]: r["customer_state"] for r in _rows(directory, "customers")}
    origin: dict[str, str] = {}
    for r in _rows(directory, "items"):
        if r["order_item_id"] == "1" and r["seller_id"] in seller_state:
            origin[r["order_id"]] = seller_state[r["seller_id"]]
    return origin, customer_state


def deliveries(directory: Path) -> list[DeliveredOrder]:
    """Orders with status delivered and both dates, in purchase order."""
    origin, customer_state = _states(directory)
    out = []
    for r in _rows(directory, "orders"):
        if r["order_status"] != "delivered" or not r["order_delivered_customer_date"]:
            continue
        if not r["order_estimated_delivery_date"] or r["order_id"] not in origin:
            continue
        dest = customer_state.get(r["customer_id"])
        if dest is None:
            continue
        out.append(
            DeliveredOrder(
                r["order_id"],
                _local(r["order_purchase_timestamp"]).date(),
                _local(r["order_delivered_customer_date"]).date(),
                _local(r["order_estimated_delivery_date"]).date(),
                origin[r["order_id"]],
                dest,
                _handed_over(r),
            )
        )
    out.sort(key=lambda d: (d.ordered_on, d.order_id))
    return out


def delivery_history(directory: Path) -> list[dict[str, str]]:
    """The delivered orders in the neutral delivery-history layout (times in UTC): origin =
    the first item's seller state, destination = the customer's state, the carrier hand-off
    as shipped_at and Olist's estimated date as promised_at."""
    origin, customer_state = _states(directory)

    def utc(value: str) -> str:
        return _local(value).astimezone(UTC).isoformat() if value else ""

    out = []
    for r in _rows(directory, "orders"):
        delivered = r["order_delivered_customer_date"]
        dest = customer_state.get(r["customer_id"])
        if r["order_status"] != "delivered" or not delivered or dest is None:
            continue
        if r["order_id"] not in origin:
            continue
        shipped = r["order_delivered_carrier_date"] if _handed_over(r) else ""
        out.append(
            {
                "external_id": f"olist:{r['order_id']}",
                "origin_country": "BR",
                "origin_region": origin[r["order_id"]],
                "destination_country": "BR",
                "destination_region": dest,
                "ordered_at": utc(r["order_purchase_timestamp"]),
                "shipped_at": utc(shipped),
                "delivered_at": utc(delivered),
                "promised_at": utc(r["order_estimated_delivery_date"]),
            }
        )
    out.sort(key=lambda x: (x["ordered_at"], x["external_id"]))
    return out
