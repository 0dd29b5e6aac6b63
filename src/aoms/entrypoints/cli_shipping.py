"""`aoms shipping …`: zones, rate quotes from the card, tracking polls, invoice audits."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Annotated

import typer

from aoms.adapters.carriers.zones import load_zones, shipped_zones

app = typer.Typer(help="Carriers, zones, tracking and invoice audits.", no_args_is_help=True)


@app.command("zone")
def zone(
    origin_zip: Annotated[str, typer.Argument(help="Origin ZIP code.")],
    dest_zip: Annotated[str, typer.Argument(help="Destination ZIP code.")],
    zones: Annotated[Path | None, typer.Option(help="A zone chart CSV instead of USPS's.")] = None,
) -> None:
    """The USPS zone between two ZIP codes, and whether the chart or the distance gave it."""
    z = load_zones(zones) if zones else shipped_zones()
    found = z.zone(origin_zip, dest_zip)
    print(json.dumps({"origin": origin_zip, "destination": dest_zip, "zone": found.zone,
                      "source": found.source}))  # fmt: skip


@app.command("build-zones")
def build_zones(
    source: Annotated[Path, typer.Argument(help="CSV (or .csv.gz): origin_zip,dest_zip,zone.")],
    out: Annotated[Path, typer.Argument(help="The compact table to write (.txt.gz).")],
) -> None:
    """Build the compact ZIP3 zone table aoms ships from a zone chart export."""
    table = load_zones(source)
    out.write_bytes(gzip.compress(table.to_text().encode(), 9, mtime=0))
    charted = sum(len(z) - z.count(b"0") for z in table.charts.values())
    print(json.dumps({"origins": len(table.charts), "pairs": charted, "bytes": out.stat().st_size}))


@app.command("quote")
def quote(
    rates: Annotated[Path, typer.Argument(help="The rate card CSV.")],
    origin_zip: Annotated[str, typer.Argument()],
    dest_zip: Annotated[str, typer.Argument()],
    grams: Annotated[int, typer.Option(min=1)],
    length_mm: Annotated[int, typer.Option(min=1)],
    width_mm: Annotated[int, typer.Option(min=1)],
    height_mm: Annotated[int, typer.Option(min=1)],
    currency: Annotated[str, typer.Option()] = "USD",
    surcharges: Annotated[Path | None, typer.Option()] = None,
    residential: Annotated[bool, typer.Option()] = False,
) -> None:
    """Price one parcel on a rate card (a check of the card before it goes live)."""
    from aoms.adapters.carriers.table_rate import TableRateCarrier, load_rate_card
    from aoms.domain.shipping import Dimensions, Parcel
    from aoms.services.carriers import RateRequest, ShipAddress

    carrier = TableRateCarrier(load_rate_card(rates, surcharges), shipped_zones())
    parcel = Parcel(Dimensions(length_mm, width_mm, height_mm), grams)
    to = ShipAddress(zip=dest_zip, residential=residential)
    request = RateRequest(ShipAddress(zip=origin_zip), to, parcel, currency)
    quotes = carrier.rates(request)
    if not quotes:
        why = "; ".join(carrier.why_not(request)) or "the card has no services"
        typer.echo(f"no quote: {why}", err=True)
        raise typer.Exit(1)
    for q in sorted(quotes, key=lambda q: q.amount.amount):
        row = {"carrier": q.carrier, "service": q.service, "amount": str(q.amount.amount),
               "currency": q.amount.currency, "days": q.days, **q.detail}  # fmt: skip
        print(json.dumps(row))


@app.command("poll")
def poll(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 200,
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Ask the carriers for the tracking of parcels not yet delivered."""
    from aoms.bootstrap import build
    from aoms.config import Settings
    from aoms.services.shipping import poll_tracking

    runtime = build(Settings(database_url=database_url) if database_url else Settings())
    assert runtime.shipping is not None
    result = poll_tracking(runtime.shipping, now=runtime.clock(), limit=limit)
    runtime.close()
    print(json.dumps({"received": result.received, "new": result.new, "changed": result.changed}))


@app.command("audit")
def audit(
    invoice: Annotated[Path, typer.Argument(help="Carrier invoice CSV.")],
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Flag every invoice line billed above its quote, with the total overcharge."""
    from aoms.bootstrap import build
    from aoms.config import Settings
    from aoms.services.shipping import audit_carrier_invoice, report_dict

    runtime = build(Settings(database_url=database_url) if database_url else Settings())
    assert runtime.shipping is not None
    with invoice.open(encoding="utf-8-sig", newline="") as f:
        report = audit_carrier_invoice(runtime.shipping, f)
    runtime.close()
    print(json.dumps(report_dict(report), indent=2))
