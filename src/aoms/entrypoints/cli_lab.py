"""`aoms replay` and `aoms simulate`: real and synthetic order histories through routing, and
the policy lab."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from aoms.domain.errors import AomsError
from aoms.domain.routing import Policy
from aoms.entrypoints.cli_common import console, json_default, say_error
from aoms.services.policy_lab import POLICIES

replay_app = typer.Typer(help="Replay an order history through aoms.", no_args_is_help=True)
simulate_app = typer.Typer(
    help="The policy lab: compare routing policies on one order history.", no_args_is_help=True
)


@replay_app.command("olist")
def replay_olist(
    directory: Annotated[Path, typer.Argument(help="Folder with the Olist CSV files.")],
    locations: Annotated[int, typer.Option(min=1, help="K: the K largest seller states.")] = 8,
    cover: Annotated[float, typer.Option(min=0.01, help="Stock = demand × cover.")] = 1.0,
    policy: Annotated[
        str,
        typer.Option(
            help="A built-in routing policy (nearest, shopify_default, landed_cost, optimal), "
            "or both: landed_cost and shopify_default."
        ),
    ] = "both",
    handling: Annotated[str, typer.Option(help="Handling cost per shipment, BRL.")] = "2.00",
    as_json: Annotated[bool, typer.Option("--json", help="Print the KPIs as JSON.")] = False,
) -> None:
    """Replay the Olist order history through routing and reservation, and print KPIs.

    Network: locations are the K seller states with the most sellers, each at the mean
    coordinates of its sellers. Each product's stock is its ordered units × cover, spread over
    the locations in proportion to where its buyers are (each buyer counted at the nearest
    location). The rate card is the median freight value per distance band × weight band.
    Every order is replayed in purchase-time order through the same service the API uses.
    """
    from aoms.adapters.importers import olist
    from aoms.entrypoints.replay import replay

    if not re.fullmatch(r"\d{1,6}(\.\d{1,2})?", handling):
        console.print(f"[red]invalid handling cost[/] {handling!r}: use e.g. 2.00 (not negative)")
        raise typer.Exit(2)
    wanted = [Policy.LANDED_COST, Policy.SHOPIFY_DEFAULT] if policy == "both" else None
    if wanted is None:
        try:
            wanted = [Policy(policy)]
        except ValueError:
            names = ", ".join([*(p.value for p in Policy), "both"])
            console.print(f"[red]unknown policy[/] {policy!r}: use {names}")
            raise typer.Exit(2) from None
    try:
        data = olist.load(directory, locations=locations, cover=cover)
    except AomsError as exc:
        say_error(exc)
        raise typer.Exit(2) from exc
    runs = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        for p in wanted:
            task = bar.add_task(f"replay {p.value}", total=len(data.orders))
            runs.append(replay(data, p, handling=handling, progress=partial(bar.advance, task)))
    report: dict[str, Any] = {
        "source": str(directory),
        "network": {
            "locations": [
                {
                    "id": loc.id,
                    "sellers": loc.sellers,
                    "lat": round(loc.point.lat, 4),
                    "lng": round(loc.point.lng, 4),
                }
                for loc in data.locations
            ],
            "cover": cover,
            "stock_units": sum(data.stock.values()),
            "rate_card": data.rate_card.as_dict(),
            "handling_per_shipment": handling,
        },
        "orders_in_file": len(data.orders) + sum(data.skipped.values()),
        "orders_not_replayed": data.skipped,
        "policies": {
            r.policy.value: {
                **r.kpis,
                "seconds": round(r.seconds, 2),
                "orders_per_second": round(r.throughput, 1),
            }
            for r in runs
        },
    }
    if len(runs) == 2:
        a, b = (report["policies"][p.value] for p in wanted)
        report["comparison"] = {
            "cost_ratio_shopify_default_to_landed_cost": round(
                float(b["estimated_shipping_cost"]) / float(a["estimated_shipping_cost"]), 4
            ),
            "split_rate_landed_cost": a["split_shipment_rate"],
            "split_rate_shopify_default": b["split_shipment_rate"],
        }
    if as_json:
        print(json.dumps(report, indent=2, default=json_default))
        return
    skipped = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in data.skipped.items())
    table = Table(
        title=f"Olist replay: {report['orders_in_file']} orders in file"
        + (f" (not replayed: {skipped})" if skipped else "")
    )
    table.add_column("KPI")
    for r in runs:
        table.add_column(r.policy.value, justify="right")
    keys = [k for k in runs[0].kpis if k != "currency"] + ["orders_per_second"]
    for k in keys:
        table.add_row(k, *(str(report["policies"][r.policy.value][k]) for r in runs))
    Console().print(table)
    if "comparison" in report:
        c = report["comparison"]
        Console().print(
            f"shopify_default costs {c['cost_ratio_shopify_default_to_landed_cost']:.4f}× "
            f"landed_cost on the same orders; split rate {c['split_rate_shopify_default']:.2%} "
            f"vs {c['split_rate_landed_cost']:.2%}. (Where most orders are one SKU, the "
            "cheapest location on a distance card is the nearest, and the policies agree.)"
        )


PoliciesOpt = Annotated[
    str,
    typer.Option(help=f"Comma-separated: {', '.join(POLICIES)}."),
]
MaxShipmentsOpt = Annotated[
    int, typer.Option(min=1, max=10, help="At most this many shipments per order.")
]
BoundOpt = Annotated[
    bool,
    typer.Option(
        "--bound/--no-bound",
        help="Also solve the clairvoyant bound (all orders at once); slow past a few thousand.",
    ),
]
HtmlOpt = Annotated[Path | None, typer.Option("--html", help="Write an HTML report here.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
OrdersOpt = Annotated[
    int | None, typer.Option(min=1, help="Only the first N orders (in time order).")
]
ALL_POLICIES = ",".join(POLICIES)


def _run_lab(
    scenario: Any, policies: str, bound: bool, html_path: Path | None, as_json: bool,
    max_shipments: int,
) -> None:  # fmt: skip
    from aoms.entrypoints.simulate import best_words, simulate, write_report

    wanted = [p.strip() for p in policies.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in POLICIES]
    if unknown or not wanted:
        console.print(f"[red]unknown policy[/] {unknown or policies!r}: use {', '.join(POLICIES)}")
        raise typer.Exit(2)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"),
        TimeRemainingColumn(), console=console,
    ) as bar:  # fmt: skip
        tasks = {p: bar.add_task(f"simulate {p}", total=len(scenario.orders)) for p in wanted}
        report = simulate(
            scenario,
            wanted,
            bound=bound,
            max_shipments=max_shipments,
            progress=lambda p, n: bar.advance(tasks[p], n),
        )
    if html_path is not None:
        write_report(html_path, [report])
        console.print(f"HTML report: {html_path}")
    if as_json:
        print(json.dumps(report, indent=2, default=json_default))
        return
    table = Table(
        title=f"{report['scenario']}: {report['orders']} orders, {report['locations']} "
        f"locations; a unit not shipped counts {report['backorder_cost_per_unit']} "
        f"{report['currency']}"
    )
    cols = ["policy", "total_cost", "landed_cost", "cost_per_order", "split_rate",
            "mean_km_per_shipment", "units_backordered", "mean_promised_days", "on_time_rate",
            "gap_to_bound", "decision_ms_p99", "seconds"]  # fmt: skip
    heads = {"cost_per_order": "landed cost per order shipped"}  # backorders are not in it
    for c in cols:
        head = heads.get(c, c.replace("_", " "))
        table.add_column(head, justify="left" if c == "policy" else "right")
    for r in report["policies"]:
        table.add_row(*("" if r.get(c) is None else str(r[c]) for c in cols))
    if "clairvoyant" in report:
        cv = report["clairvoyant"]
        blanks = [""] * (len(cols) - 3)
        table.add_row("clairvoyant bound", str(cv["total_cost"]), *blanks, str(cv["seconds"]))
    # Wide enough for every column when the output is a file or a pipe (not a terminal).
    Console(width=None if sys.stdout.isatty() else 220).print(table)
    if (words := best_words(report)) is not None:
        Console().print(words, highlight=False)


@simulate_app.command("olist")
def simulate_olist(
    directory: Annotated[Path, typer.Argument(help="Folder with the Olist CSV files.")],
    cover: Annotated[float, typer.Option(min=0.01, help="Stock = demand × cover.")] = 1.0,
    locations: Annotated[int, typer.Option(min=1, help="K: the K largest seller states.")] = 8,
    orders: OrdersOpt = None,
    policies: PoliciesOpt = ALL_POLICIES,
    bound: BoundOpt = True,
    max_shipments: MaxShipmentsOpt = 3,
    html_path: HtmlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare policies on the Olist history (the network `aoms replay olist` builds)."""
    from aoms.adapters.importers import olist
    from aoms.entrypoints.simulate import first, olist_scenario

    try:
        data = olist.load(directory, locations=locations, cover=cover)
        history = olist.deliveries(directory)
    except AomsError as exc:
        say_error(exc)
        raise typer.Exit(2) from exc
    scenario = first(olist_scenario(data, history=history), orders)
    scenario = replace(scenario, name=f"olist cover {cover}")
    _run_lab(scenario, policies, bound, html_path, as_json, max_shipments)


@simulate_app.command("orders")
def simulate_orders(
    orders_file: Annotated[
        Path, typer.Argument(help="Orders in the neutral JSON format: a JSON array or JSON Lines.")
    ],
    store: Annotated[
        Path | None,
        typer.Option(help="Locations, products, stock and rate card (the demo store's layout)."),
    ] = None,
    history_until: Annotated[
        datetime | None,
        typer.Option(help="Orders placed before this (UTC) are history: learned from, not routed."),
    ] = None,
    policies: PoliciesOpt = ALL_POLICIES,
    bound: BoundOpt = True,
    max_shipments: MaxShipmentsOpt = 3,
    html_path: HtmlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare policies on orders in the neutral JSON format (the body of POST /v1/orders)
    against a store file; without --store, the demo store that ships with aoms."""
    from aoms.demo.orders import demo_store
    from aoms.entrypoints.simulate import neutral_scenario, read_orders

    try:
        network = json.loads(store.read_text("utf-8")) if store else demo_store()
        cut = history_until.replace(tzinfo=history_until.tzinfo or UTC) if history_until else None
        scenario = neutral_scenario(read_orders(orders_file), network, history_until=cut)
    except AomsError as exc:
        say_error(exc)
        raise typer.Exit(2) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        console.print(f"[red]invalid_input[/]: cannot read the store file {store}: {exc!r}")
        raise typer.Exit(2) from exc
    if not scenario.orders:
        console.print("[red]invalid_input[/]: no orders to simulate")
        raise typer.Exit(2)
    stocked = {sku for (sku, _), n in scenario.stock.items() if n > 0}
    missing = sorted({k for o in scenario.orders for k in o.demand.units} - stocked)
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        console.print(
            f"[yellow]note[/]: {len(missing)} SKU(s) ordered have no stock anywhere in the store "
            f"file and are backordered by every policy: {shown}"
        )
    _run_lab(scenario, policies, bound, html_path, as_json, max_shipments)


@simulate_app.command("synthetic")
def simulate_synthetic(
    orders: Annotated[int, typer.Option(min=1, max=1_000_000)] = 2000,
    seed: Annotated[int, typer.Option()] = 7,
    cover: Annotated[float, typer.Option(min=0.01, help="Stock = demand × cover.")] = 1.0,
    history_days: Annotated[
        int, typer.Option(min=0, max=365, help="Days of earlier orders to learn from.")
    ] = 30,
    express_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of orders by Express (2 days; the rest Standard, 6 days), routed over "
            "two carrier services, ground and express; 0: one service.",
        ),
    ] = 0.0,
    policies: PoliciesOpt = ALL_POLICIES,
    bound: BoundOpt = True,
    max_shipments: MaxShipmentsOpt = 3,
    html_path: HtmlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare policies on a seeded synthetic scenario: 10 US locations, 2–8-line orders over
    30 days, after `--history-days` of earlier orders that policies may learn from."""
    from aoms.demo.scenario import synthetic

    scenario = synthetic(
        orders, seed=seed, cover=cover, history_days=history_days, express_share=express_share
    )
    _run_lab(scenario, policies, bound, html_path, as_json, max_shipments)
