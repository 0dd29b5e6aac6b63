"""The built-in table-rate carrier: the merchant's negotiated rate card, from CSV, by USPS zone.

rates CSV (one row per service, zone — or distance band — and weight band):
    carrier,service,zone,max_weight_g,price,currency,transit_days[,dim_divisor]
    carrier,service,max_km,max_weight_g,price,currency,transit_days[,dim_divisor]
surcharges CSV (optional):
    carrier,service,name,kind,threshold,amount,currency
See docs/carriers.md for the meaning of each column.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from aoms.adapters.carriers.zones import Zone, ZoneTable
from aoms.domain.errors import AomsError, InvalidRateCard
from aoms.domain.money import Money
from aoms.domain.shipping import Quote, ServiceCard, Surcharge, SurchargeKind
from aoms.services.carriers import (
    AddressCheck,
    Label,
    RateRequest,
    ShipAddress,
    TrackingUpdate,
    VoidResult,
)

RATE_COLUMNS = ("carrier", "service", "max_weight_g", "price", "currency", "transit_days")
SURCHARGE_COLUMNS = ("carrier", "service", "name", "kind", "threshold", "amount", "currency")


Priced = tuple[Money, int, tuple[tuple[str, Money], ...]]  # total, billable g, charges


def _rows(source: IO[str], columns: Iterable[str], what: str) -> list[dict[str, str]]:
    reader = csv.DictReader(source)
    missing = [c for c in columns if c not in (reader.fieldnames or ())]
    if missing:
        raise InvalidRateCard(f"the {what} CSV has no column {', '.join(missing)}", field=what)
    return [{k: (v or "").strip() for k, v in r.items() if k} for r in reader]


def _int(row: dict[str, str], column: str, line: int) -> int:
    try:
        return int(row[column])
    except ValueError:
        raise InvalidRateCard(
            f"line {line}: {column} is not a whole number: {row[column]!r}", field=column
        ) from None


def parse_rate_card(rates: IO[str], surcharges: IO[str] | None = None) -> list[ServiceCard]:
    """Service cards from the two CSVs; a bad row is refused with its line number."""
    cells: dict[tuple[str, str], dict[tuple[int, int], Money]] = defaultdict(dict)
    days: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    divisor: dict[tuple[str, str], int | None] = {}
    currency: dict[tuple[str, str], str] = {}
    by_km: dict[tuple[str, str], bool] = {}
    for n, row in enumerate(_rows(rates, RATE_COLUMNS, "rates"), start=2):
        key = (row["carrier"], row["service"])
        if not all(key):
            raise InvalidRateCard(f"line {n}: carrier and service are required", field="service")
        km = bool(row.get("max_km"))
        if km == bool(row.get("zone")):
            raise InvalidRateCard(f"line {n}: give a zone or a max_km, not both", field="zone")
        if by_km.setdefault(key, km) != km:
            raise InvalidRateCard(f"line {n}: one service is priced by zone or by distance",
                                  field="zone")  # fmt: skip
        zone = _int(row, "max_km" if km else "zone", n)
        bound = _int(row, "max_weight_g", n)
        try:
            price = Money.of(row["price"], row["currency"])
        except AomsError as exc:
            raise InvalidRateCard(f"line {n}: {exc.message}", field="price") from None
        if currency.setdefault(key, price.currency) != price.currency:
            raise InvalidRateCard(f"line {n}: one currency per service", field="currency")
        if (zone, bound) in cells[key]:
            raise InvalidRateCard(f"line {n}: zone {zone} up to {bound} g twice", field="zone")
        cells[key][zone, bound] = price
        transit = _int(row, "transit_days", n)
        if days[key].setdefault(zone, transit) != transit:
            raise InvalidRateCard(f"line {n}: one transit_days per zone", field="transit_days")
        if row.get("dim_divisor"):
            divisor[key] = _int(row, "dim_divisor", n)
        else:
            divisor.setdefault(key, None)
    extra: dict[tuple[str, str], list[Surcharge]] = defaultdict(list)
    if surcharges is not None:
        for n, row in enumerate(_rows(surcharges, SURCHARGE_COLUMNS, "surcharges"), start=2):
            try:
                kind = SurchargeKind(row["kind"])
            except ValueError:
                kinds = ", ".join(k.value for k in SurchargeKind)
                raise InvalidRateCard(
                    f"line {n}: kind {row['kind']!r} is not one of {kinds}", field="kind"
                ) from None
            key = (row["carrier"], row["service"])
            services = [k for k in cells if row["service"] in ("*", k[1]) and k[0] == key[0]]
            if not services:
                raise InvalidRateCard(f"line {n}: no rates for {key[0]}/{key[1]}", field="service")
            threshold = _int(row, "threshold", n) if row["threshold"] else 0
            amount = Money.of(row["amount"], row["currency"])
            for k in services:
                extra[k].append(Surcharge(row["name"] or kind.value, kind, amount, threshold))
    cards = []
    for key, prices in sorted(cells.items()):
        bands = tuple(sorted({b for _, b in prices}))
        zones = sorted({z for z, _ in prices})
        table = {z: tuple(prices.get((z, b)) for b in bands) for z in zones}
        cards.append(
            ServiceCard(
                carrier=key[0],
                service=key[1],
                currency=currency[key],
                bands_g=bands,
                prices=table,
                days=days[key],
                dim_divisor=divisor[key],
                surcharges=tuple(extra[key]),
                by_km=by_km[key],
            )
        )
    return cards


def load_rate_card(rates: str | Path, surcharges: str | Path | None = None) -> list[ServiceCard]:
    with open(rates, encoding="utf-8-sig", newline="") as r:
        if surcharges is None:
            return parse_rate_card(r)
        with open(surcharges, encoding="utf-8-sig", newline="") as s:
            return parse_rate_card(r, s)


class TableRateCarrier:
    """Prices parcels from the card by the USPS zone of the lane. It has no carrier API behind
    it: `buy` prints the label itself (ZPL) with a tracking number derived from the parcel,
    and `void` is always accepted; tracking comes from whatever reports it."""

    def __init__(self, cards: Iterable[ServiceCard], zones: ZoneTable, name: str = "table") -> None:
        self.name = name
        self.cards = list(cards)
        self.zones = zones

    def why_not(self, request: RateRequest) -> list[str]:
        """Why each service of the card gives this parcel no rate (none: every one does)."""
        o, d = request.origin, request.destination
        if o.country.upper() != "US" or d.country.upper() != "US":
            return ["the zone chart is domestic: both addresses must be in the US"]
        return [f"{c.carrier}/{c.service}: {p}" for c, _, _, _, p in self._priced(request)
                if isinstance(p, str)]  # fmt: skip

    def _priced(
        self, request: RateRequest
    ) -> Iterator[tuple[ServiceCard, Zone, float | None, int, Priced | str]]:
        """Each service card with the lane's zone, distance, band, and its price or why not."""
        o, d = request.origin, request.destination
        zone = self.zones.zone(o.zip, d.zip)
        km = self.zones.distance_km(o.zip, d.zip) if any(c.by_km for c in self.cards) else None
        for card in self.cards:
            if card.currency != request.currency:
                yield card, zone, km, 0, f"priced in {card.currency}, not {request.currency}"
                continue
            band = zone.zone if not card.by_km else None if km is None else card.km_band(km)
            if band is None:  # priced by distance, and this lane is past its farthest band
                far = "the distance is not known" if km is None else f"{round(km)} km is"
                yield card, zone, km, 0, f"{far} beyond its farthest band ({max(card.prices)} km)"
                continue
            yield (
                card,
                zone,
                km,
                band,
                card.price(
                    request.parcel, band, residential=bool(d.residential), lane_zone=zone.zone
                ),
            )

    def rates(self, request: RateRequest) -> list[Quote]:
        o, d = request.origin, request.destination
        if o.country.upper() != "US" or d.country.upper() != "US":
            return []  # the zone chart is domestic
        quotes = []
        for card, zone, km, band, priced in self._priced(request):
            if isinstance(priced, str):
                continue
            total, billable, parts = priced
            quotes.append(
                Quote(
                    carrier=card.carrier,
                    service=card.service,
                    amount=total,
                    days=card.days[band],
                    ref={"card": f"{card.carrier}/{card.service}"},
                    detail={
                        "zone": zone.zone,
                        "zone_source": zone.source,
                        **({"distance_km": round(km), "max_km": band} if card.by_km and km else {}),
                        "billable_g": billable,
                        "charges": {name: str(m.amount) for name, m in parts},
                    },
                )
            )
        return quotes

    def buy(self, quote: Quote, request: RateRequest, *, label_format: str) -> Label:
        digest = hashlib.sha256(
            repr((quote.key, request.cache_key(), request.destination.name,
                  request.destination.street1, request.parcel.items)).encode()
        ).hexdigest()  # fmt: skip
        tracking = f"{quote.carrier.upper()[:4]}{int(digest[:15], 16) % 10**15:015d}"
        zpl = _zpl(quote, request, tracking)
        return Label(
            carrier=quote.carrier,
            service=quote.service,
            tracking_number=tracking,
            label_id=tracking,
            file_format="ZPL",
            content=zpl.encode(),
            amount=str(quote.amount.amount),
        )

    def void(self, label: Label) -> VoidResult:
        return VoidResult(True, "voided")

    def track(self, tracking_number: str, *, service: str = "") -> list[TrackingUpdate]:
        return []

    def verify_address(self, address: ShipAddress) -> AddressCheck | None:
        return None


def _zpl(quote: Quote, request: RateRequest, tracking: str) -> str:
    to, frm = request.destination, request.origin
    lines = [
        "^XA",
        f"^FO40,40^A0N,30,30^FD{frm.name} {frm.zip}^FS",
        f"^FO40,120^A0N,40,40^FD{to.name}^FS",
        f"^FO40,170^A0N,30,30^FD{to.street1}^FS",
        f"^FO40,210^A0N,30,30^FD{to.city} {to.state} {to.zip}^FS",
        f"^FO40,300^A0N,30,30^FD{quote.carrier.upper()} {quote.service}^FS",
        f"^FO40,360^BCN,120,Y,N,N^FD{tracking}^FS",
        f"^FO40,520^A0N,25,25^FD{request.parcel.grams} g  {quote.amount}^FS",
        "^XZ",
    ]
    return "\n".join(lines) + "\n"
