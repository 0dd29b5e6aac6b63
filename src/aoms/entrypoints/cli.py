"""The one `aoms` command."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from aoms.config import Settings
from aoms.domain.errors import AomsError
from aoms.domain.routing import Policy
from aoms.entrypoints.cli_users import users_app
from aoms.services.policy_lab import POLICIES

app = typer.Typer(
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    help="aoms: automated order management for Shopify merchants.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
replay_app = typer.Typer(help="Replay an order history through aoms.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(replay_app, name="replay")
simulate_app = typer.Typer(
    help="The policy lab: compare routing policies on one order history.", no_args_is_help=True
)
app.add_typer(simulate_app, name="simulate")
console = Console(stderr=True)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        console.print(f"[red]invalid settings[/]: {exc}")
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
    workers: Annotated[
        bool, typer.Option(help="Run the inbox/outbox workers in this process (else: aoms worker).")
    ] = True,
) -> None:
    """Run the API (and by default the workers); migrates an empty database first."""
    import uvicorn

    from aoms.bootstrap import build
    from aoms.entrypoints.api.app import create_app

    settings = _settings(database_url=database_url, run_workers=workers)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(create_app(build(settings)), host=host, port=port, log_level="info")


@app.command()
def worker(
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Run only the workers: process stored webhooks and relay events (with serve --no-workers).

    Any number of workers may run against PostgreSQL: each delivery is claimed with a row lock.
    """
    import signal
    import threading

    from aoms.bootstrap import Workers, build

    settings = _settings(database_url=database_url)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    runtime = build(settings)
    runtime.migrate()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workers = Workers(runtime, dedicated=True)
    workers.start()
    console.print("aoms worker running; Ctrl-C to stop")
    stop.wait()
    workers.stop()
    runtime.close()


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Migrate the database to the latest schema."""
    from aoms.adapters.db import migrate
    from aoms.bootstrap import build

    runtime = build(_settings(database_url=database_url))
    runtime.migrate()
    console.print(f"database at revision {migrate.current_revision(runtime.engine)}")


@db_app.command("current")
def db_current(
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Print the database's schema revision and the latest one."""
    from aoms.adapters.db import migrate
    from aoms.bootstrap import build

    runtime = build(_settings(database_url=database_url))
    print(
        json.dumps(
            {
                "current": migrate.current_revision(runtime.engine),
                "head": migrate.head_revision(runtime.engine),
            }
        )
    )


@app.command()
def demo(
    orders: Annotated[int, typer.Option(min=1, max=100_000, help="Orders to generate.")] = 300,
    host: str = "127.0.0.1",
    port: int = 8000,
    database: Annotated[Path, typer.Option(help="SQLite file (recreated).")] = Path("aoms-demo.db"),
    stay: Annotated[bool, typer.Option(help="Keep the API running afterwards.")] = True,
) -> None:
    """Load the demo store, send signed Shopify webhooks through the API, and keep it running."""
    from aoms.entrypoints.demo import run_demo

    run_demo(orders=orders, host=host, port=port, database=database, stay=stay, console=Console())


@replay_app.command("olist")
def replay_olist(
    directory: Annotated[Path, typer.Argument(help="Folder with the Olist CSV files.")],
    locations: Annotated[int, typer.Option(min=1, help="K: the K largest seller states.")] = 8,
    cover: Annotated[float, typer.Option(min=0.01, help="Stock = demand × cover.")] = 1.0,
    policy: Annotated[str, typer.Option(help="landed_cost, shopify_default or both.")] = "both",
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
            console.print(f"[red]unknown policy[/] {policy!r}")
            raise typer.Exit(2) from None
    try:
        data = olist.load(directory, locations=locations, cover=cover)
    except AomsError as exc:
        console.print(f"[red]{exc.code}[/]: {exc.message}")
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
        print(json.dumps(report, indent=2, default=str))
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
    from aoms.entrypoints.simulate import simulate, write_report

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
        print(json.dumps(report, indent=2, default=str))
        return
    table = Table(
        title=f"{report['scenario']}: {report['orders']} orders, {report['locations']} "
        f"locations; a unit not shipped counts {report['backorder_cost_per_unit']} "
        f"{report['currency']}"
    )
    cols = ["policy", "total_cost", "landed_cost", "cost_per_order", "split_rate",
            "mean_km_per_shipment", "units_backordered", "mean_promised_days", "on_time_rate",
            "gap_to_bound", "decision_ms_p99", "seconds"]  # fmt: skip
    for c in cols:
        table.add_column(c.replace("_", " "), justify="left" if c == "policy" else "right")
    for r in report["policies"]:
        table.add_row(*("" if r.get(c) is None else str(r[c]) for c in cols))
    if "clairvoyant" in report:
        cv = report["clairvoyant"]
        blanks = [""] * (len(cols) - 3)
        table.add_row("clairvoyant bound", str(cv["total_cost"]), *blanks, str(cv["seconds"]))
    # Wide enough for every column when the output is a file or a pipe (not a terminal).
    Console(width=None if sys.stdout.isatty() else 220).print(table)
    if report.get("gap_captured_by_best") is not None:
        Console().print(
            f"best: {report['best_policy']}, closing {float(report['gap_captured_by_best']):.1%} "
            "of the gap between the per-order optimum and the clairvoyant bound"
        )


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
        console.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(2) from exc
    scenario = first(olist_scenario(data, history=history), orders)
    scenario = replace_name(scenario, f"olist cover {cover}")
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
        console.print(f"[red]{exc.code}[/]: {exc.message}")
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
    policies: PoliciesOpt = ALL_POLICIES,
    bound: BoundOpt = True,
    max_shipments: MaxShipmentsOpt = 3,
    html_path: HtmlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare policies on a seeded synthetic scenario: 10 US locations, 2–8-line orders over
    30 days, after `--history-days` of earlier orders that policies may learn from."""
    from aoms.demo.scenario import synthetic

    scenario = synthetic(orders, seed=seed, cover=cover, history_days=history_days)
    _run_lab(scenario, policies, bound, html_path, as_json, max_shipments)


promise_app = typer.Typer(help="Delivery promises learned from history.", no_args_is_help=True)
app.add_typer(promise_app, name="promise")
app.add_typer(users_app, name="users")


@promise_app.command("olist")
def promise_olist(
    directory: Annotated[Path, typer.Argument(help="Folder with the Olist CSV files.")],
    confidence: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="The quantile of transit days promised.")
    ] = 0.9,
    test_months: Annotated[int, typer.Option(min=1, max=24)] = 3,
    prior_weight: Annotated[
        float, typer.Option(min=0, help="Samples' worth of the parent region's estimate.")
    ] = 10.0,
    half_life_days: Annotated[
        float | None, typer.Option(min=1, help="Weight older deliveries less (days).")
    ] = None,
    tune: Annotated[
        bool,
        typer.Option(
            help="Choose confidence, prior weight and half-life on the last validation months "
            "of the fitting months (the three options above are then ignored)."
        ),
    ] = True,
    validation_months: Annotated[int, typer.Option(min=1, max=24)] = 3,
    target_on_time: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            max=1.0,
            help="On-time rate to reach on validation (default: Olist's own rate there).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn lane transit times on the earlier months of the Olist history and promise each
    order of the last months; compare with Olist's own estimated dates."""
    from aoms.adapters.importers.olist import deliveries
    from aoms.services.promises import Delivered, evaluate

    try:
        history = [
            Delivered(
                d.ordered_on,
                d.delivered_on,
                d.estimated_on,
                d.origin,
                d.destination,
                shipped_on=d.shipped_on,
            )
            for d in deliveries(directory)
        ]
        report = evaluate(
            history,
            test_months=test_months,
            confidence=confidence,
            prior_weight=prior_weight,
            half_life_days=half_life_days,
            tune_on_validation=tune,
            validation_months=validation_months,
            target_on_time=target_on_time,
        )
    except AomsError as exc:
        console.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(report, indent=2))
        return
    test, train = report["test"], report["train"]
    table = Table(
        title=f"Delivery promises at {report['confidence']:.0%}: fit on {train['orders']} orders "  # type: ignore[index]
        f"({train['from']} to {train['to']}), tested on {test['orders']} "  # type: ignore[index]
        f"({test['from']} to {test['to']})"  # type: ignore[index]
    )
    table.add_column("")
    table.add_column("aoms (learned lanes)", justify="right")
    table.add_column("Olist's estimate", justify="right")
    table.add_row(
        "mean promised days",
        str(report["mean_promised_days"]),
        str(report["mean_history_promised_days"]),
    )
    table.add_row("on time", f"{report['on_time']:.1%}", f"{report['history_on_time']:.1%}")
    Console().print(table)
    Console().print(
        f"ratio {report['ratio_to_history']}×; mean actual {report['mean_actual_days']} days; "
        f"{report['lanes']} lanes learned; prior weight {report['prior_weight']}, "
        f"half-life {report['half_life_days']}"
    )
    chosen = report.get("chosen_on_validation")
    if isinstance(chosen, dict):
        v = chosen["validation"]
        Console().print(
            f"chosen on {chosen['validation_from']} to {chosen['validation_to']} "
            f"({v['orders']} orders): {v['mean_promised_days']} days, {v['on_time']:.1%} on "
            f"time vs target {chosen['target_on_time']:.1%}"
        )
    bound = report.get("hindsight_bound")
    if isinstance(bound, dict) and bound.get("confidence"):
        Console().print(
            f"in hindsight (lanes fitted on the test orders themselves, not a model): "
            f"{bound['mean_promised_days']} days for {bound['on_time']:.1%} on time"
        )
        known = bound.get("knowing_the_hand_over")
        if isinstance(known, dict):
            Console().print(
                f"in hindsight, also knowing each hand-over day: {known['mean_promised_days']} "
                f"days for {known['on_time']:.1%} on time ({known['orders']} orders)"
            )


@promise_app.command("import")
def promise_import(
    file: Annotated[Path, typer.Argument(help="CSV with a header, or JSON lines (.jsonl).")],
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Store a delivery history (all rows or none; a known external_id is skipped)."""
    from aoms.adapters.db.promises import SqlPromiseStore
    from aoms.adapters.importers.history import read_history
    from aoms.bootstrap import build
    from aoms.entrypoints.api.promises import DeliveryIn
    from aoms.services.promises import import_history

    records = []
    for n, row in enumerate(read_history(file), start=1):
        try:
            records.append(DeliveryIn.model_validate(row).to_record())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            console.print(f"[red]invalid_input[/]: row {n}: {where}: {first['msg']}")
            raise typer.Exit(2) from exc
    runtime = build(_settings(database_url=database_url))
    runtime.migrate()
    result = import_history(SqlPromiseStore(runtime.store), records, now=runtime.clock())
    print(json.dumps(result))


@promise_app.command("fit")
def promise_fit(
    confidence: Annotated[float, typer.Option(min=0.01, max=0.99)] = 0.9,
    prior_weight: Annotated[float, typer.Option(min=0)] = 10.0,
    half_life_days: Annotated[float | None, typer.Option(min=1)] = None,
    tune: Annotated[
        bool, typer.Option(help="Choose the three above on the history's last months.")
    ] = False,
    validation_months: Annotated[int, typer.Option(min=1, max=24)] = 1,
    target_on_time: Annotated[float | None, typer.Option(min=0.01, max=1.0)] = None,
    database_url: Annotated[str | None, typer.Option(envvar="AOMS_DATABASE_URL")] = None,
) -> None:
    """Fit lane quantiles on the stored history and store the model (the newest promises)."""
    from aoms.adapters.db.promises import SqlPromiseStore
    from aoms.bootstrap import build
    from aoms.entrypoints.api.promises import model_info
    from aoms.services.promises import Params, fit_and_store

    runtime = build(_settings(database_url=database_url))
    runtime.migrate()
    info = fit_and_store(
        SqlPromiseStore(runtime.store),
        now=runtime.clock(),
        params=Params(confidence, prior_weight, half_life_days),
        tune_on_validation=tune,
        validation_months=validation_months,
        target_on_time=target_on_time,
    )
    print(json.dumps(model_info(info), default=str, indent=2))


@promise_app.command("export-olist")
def promise_export_olist(
    directory: Annotated[Path, typer.Argument(help="Folder with the Olist CSV files.")],
    out: Annotated[Path, typer.Argument(help="The neutral CSV to write.")],
) -> None:
    """Write the Olist delivered orders as a neutral delivery history (for `aoms promise
    import`): origin = the first item's seller state, destination = the customer's state."""
    import csv

    from aoms.adapters.importers.history import COLUMNS
    from aoms.adapters.importers.olist import delivery_history

    rows = delivery_history(directory)
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    console.print(f"{len(rows)} deliveries written to {out}")


def replace_name(scenario: Any, name: str) -> Any:
    from dataclasses import replace

    return replace(scenario, name=name)


def main() -> None:
    from sqlalchemy.exc import OperationalError

    try:
        app()
    except AomsError as exc:
        console.print(f"[red]{exc.code}[/]: {exc.message}")
        sys.exit(2)
    except FileNotFoundError as exc:
        console.print(f"[red]not found[/]: {exc}")
        sys.exit(2)
    except OperationalError as exc:
        console.print(f"[red]database unavailable[/]: {str(exc.orig).strip().splitlines()[0]}")
        sys.exit(3)


if __name__ == "__main__":
    main()
