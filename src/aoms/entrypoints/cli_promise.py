"""`aoms promise`: delivery promises learned from a delivery history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from aoms.domain.errors import AomsError
from aoms.entrypoints.cli_common import console, json_default, say_error, settings_or_exit
from aoms.entrypoints.cli_lab import JsonOpt

promise_app = typer.Typer(help="Delivery promises learned from history.", no_args_is_help=True)


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
        say_error(exc)
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
        + (
            f"half-life {report['half_life_days']} days"
            if report["half_life_days"] is not None
            else "no half-life (every delivery weighs the same)"
        )
    )
    chosen = report.get("chosen_on_validation")
    if isinstance(chosen, dict):
        v = chosen["validation"]
        Console().print(
            f"chosen on {chosen['validation_from']} to {chosen['validation_to']} "
            f"({v['orders']} orders): {v['mean_promised_days']} days, {v['on_time']:.1%} on "
            f"time; the target was {chosen['target_on_time']:.1%}"
            + (
                ", Olist's own on-time rate on those months"
                if target_on_time is None
                else " (--target-on-time)"
            )
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
    runtime = build(settings_or_exit(database_url=database_url))
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

    runtime = build(settings_or_exit(database_url=database_url))
    runtime.migrate()
    info = fit_and_store(
        SqlPromiseStore(runtime.store),
        now=runtime.clock(),
        params=Params(confidence, prior_weight, half_life_days),
        tune_on_validation=tune,
        validation_months=validation_months,
        target_on_time=target_on_time,
    )
    print(json.dumps(model_info(info), default=json_default, indent=2))


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
