"""The file drop, as many 3PLs work over SFTP: fulfilment orders written out as CSV to the
location's directory, shipment confirmations, rejections, cancellations and stock counts read
in as CSV from its inbound directory (polled). docs/handoff.md gives the formats.

    <directory>/outbound/fo-<id>.csv        written by aoms (atomically: temp file + rename)
    <directory>/outbound/cancel-<id>.csv    written by aoms
    <directory>/inbound/<kind>-*.csv        dropped by the 3PL; kind is shipments, stock,
                                            rejections or cancellations
    <directory>/inbound/processed/          applied (or a repeat of a file applied before)
    <directory>/inbound/failed/             refused, beside <name>.error.txt saying why

A file is applied whole or not at all (one transaction), and once: its SHA-256 is recorded,
so the same file delivered again is moved to processed/ and changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aoms.adapters.db.handoff import SqlHandoffStore, SqlHandoffTx
from aoms.domain.errors import AomsError, InvalidInput
from aoms.domain.handoff import RejectReason
from aoms.services import handoff as svc
from aoms.services.handoff_ports import (
    Answer,
    DeliveryFailed,
    HandoffRequest,
    Message,
    Shipment,
    TplConnection,
)
from aoms.services.inventory import adjust_stock

FO_COLUMNS = [
    "fulfilment_order_id",
    "order_id",
    "order_name",
    "line_no",
    "sku",
    "quantity",
    "title",
    "ship_name",
    "ship_address1",
    "ship_city",
    "ship_zip",
    "ship_province",
    "ship_country",
    "requested_at",
]
REQUIRED = {
    "shipments": ["fulfilment_order_id", "shipment_id", "sku", "quantity", "shipped_at"],
    "stock": ["sku", "on_hand"],
    "rejections": ["fulfilment_order_id", "reason"],
    "cancellations": ["fulfilment_order_id", "status"],
}
MAX_FILE_BYTES = 20 * 1024 * 1024


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)  # a reader never sees half a file


def fo_csv(request: HandoffRequest) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, FO_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    a = request.ship_to
    for line in request.lines:
        writer.writerow(
            {
                "fulfilment_order_id": request.fo_id,
                "order_id": request.order_id,
                "order_name": request.order_name,
                "line_no": line["line_no"],
                "sku": line["sku"],
                "quantity": line["quantity"],
                "title": line.get("title", ""),
                "ship_name": a.get("name", ""),
                "ship_address1": a.get("address1", ""),
                "ship_city": a.get("city", ""),
                "ship_zip": a.get("zip", ""),
                "ship_province": a.get("province_code", ""),
                "ship_country": a.get("country_code", ""),
                "requested_at": request.requested_at.isoformat(),
            }
        )
    return out.getvalue()


class FileDropChannel:
    """Writes requests and cancel requests as files; the 3PL's answers come back as files."""

    def send_request(self, conn: TplConnection, request: HandoffRequest) -> Answer:
        try:
            _write_atomically(_root(conn) / "outbound" / f"fo-{request.fo_id}.csv", fo_csv(request))
        except OSError as exc:
            raise DeliveryFailed(f"cannot write the file: {exc}", permanent=False) from exc
        return Answer("received")

    def send_cancel(self, conn: TplConnection, fo_id: int, now: datetime) -> Answer:
        body = f"fulfilment_order_id,requested_at\r\n{fo_id},{now.isoformat()}\r\n"
        try:
            _write_atomically(_root(conn) / "outbound" / f"cancel-{fo_id}.csv", body)
        except OSError as exc:
            raise DeliveryFailed(f"cannot write the file: {exc}", permanent=False) from exc
        return Answer("cancel_pending")


def _root(conn: TplConnection) -> Path:
    if not conn.directory:
        raise DeliveryFailed(f"location {conn.location_id} has no directory", permanent=True)
    return Path(conn.directory)


@dataclass(frozen=True, slots=True)
class FileOutcome:
    name: str
    kind: str
    status: str  # processed | duplicate | failed
    detail: str


def poll(
    store: SqlHandoffStore, conn: TplConnection, clock: Callable[[], datetime]
) -> list[FileOutcome]:
    """Apply every file waiting in the location's inbound directory, oldest name first."""
    inbound = _root(conn) / "inbound"
    if not inbound.is_dir():
        return []
    outcomes = []
    for path in sorted(p for p in inbound.iterdir() if p.is_file() and _visible(p)):
        outcomes.append(_process(store, conn, path, clock))
    return outcomes


def _visible(path: Path) -> bool:
    """Dot files and .tmp/.part files are uploads still being written."""
    return not path.name.startswith(".") and path.suffix.lower() == ".csv"


def _kind(name: str) -> str | None:
    stem = name.lower()
    return next((k for k in REQUIRED if stem.startswith(f"{k}-") or stem.startswith(f"{k}_")), None)


def _process(
    store: SqlHandoffStore, conn: TplConnection, path: Path, clock: Callable[[], datetime]
) -> FileOutcome:
    kind = _kind(path.name)
    try:
        if kind is None:
            raise InvalidInput(
                f"{path.name}: the name must start with one of "
                f"{', '.join(k + '-' for k in REQUIRED)}",
                field="file",
            )
        raw = path.read_bytes()
        if len(raw) > MAX_FILE_BYTES:
            raise InvalidInput(f"{path.name} is larger than {MAX_FILE_BYTES} bytes", field="file")
        digest = hashlib.sha256(raw).hexdigest()
        rows = _rows(raw, kind)
        with store.handoff_transaction() as htx:
            file_id = f"file:{digest}"
            if htx.message_outcome(conn.location_id, file_id) is not None:
                outcome = FileOutcome(
                    path.name,
                    kind,
                    "duplicate",
                    "the same file was applied before; nothing changed",
                )
            else:
                detail = _apply(htx, conn, kind, rows, digest, clock())
                htx.save_message(
                    conn.location_id,
                    file_id,
                    f"file:{kind}",
                    {"name": path.name, "detail": detail},
                    clock(),
                )
                outcome = FileOutcome(path.name, kind, "processed", detail)
    except (AomsError, OSError, UnicodeDecodeError, csv.Error) as exc:
        code = exc.code if isinstance(exc, AomsError) else "unreadable_file"
        message = exc.message if isinstance(exc, AomsError) else str(exc)
        _move(path, "failed")
        error = path.parent / "failed" / f"{path.name}.error.txt"
        error.write_text(f"{code}: {message}\n", encoding="utf-8")
        return FileOutcome(path.name, kind or "unknown", "failed", f"{code}: {message}")
    _move(path, "processed")
    return outcome


def _move(path: Path, folder: str) -> None:
    target = path.parent / folder
    target.mkdir(exist_ok=True)
    dest = target / path.name
    n = 1
    while dest.exists():  # a re-delivered file keeps the earlier copy
        dest = target / f"{path.stem}.{n}{path.suffix}"
        n += 1
    os.replace(path, dest)


def _rows(raw: bytes, kind: str) -> list[dict[str, str]]:
    text = raw.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED[kind] if c not in header]
    if missing:
        raise InvalidInput(f"{kind} file: missing column(s) {', '.join(missing)}", field="header")
    rows = []
    for row in reader:
        clean = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if any(clean.values()):
            rows.append(clean)
    if not rows:
        raise InvalidInput(f"{kind} file: no rows", field="rows")
    return rows


def _int(row: dict[str, str], column: str, n: int, *, minimum: int = 0) -> int:
    text = row.get(column, "")
    if not text.isdigit() or int(text) < minimum or len(text) > 12:
        raise InvalidInput(
            f"row {n}: {column} must be a whole number >= {minimum}, not {text!r}", field=column
        )
    return int(text)


def _time(row: dict[str, str], column: str, n: int) -> datetime:
    try:
        value = datetime.fromisoformat(row.get(column, ""))
    except ValueError as exc:
        raise InvalidInput(f"row {n}: {column} is not an ISO 8601 time", field=column) from exc
    if value.tzinfo is None:
        raise InvalidInput(f"row {n}: {column} must carry a UTC offset", field=column)
    return value


def _apply(
    htx: SqlHandoffTx,
    conn: TplConnection,
    kind: str,
    rows: list[dict[str, str]],
    digest: str,
    now: datetime,
) -> str:
    loc = conn.location_id
    if kind == "stock":
        changed = 0
        for n, row in enumerate(rows, start=2):
            if not row.get("sku"):
                raise InvalidInput(f"row {n}: sku is empty", field="sku")
            done = adjust_stock(
                htx.tx,
                sku=row["sku"],
                location_id=loc,
                reason="3pl_stock_count",
                now=now,
                set_on_hand=_int(row, "on_hand", n),
                reference=row.get("reference") or None,
                idempotency_key=f"file:{digest[:40]}:{row['sku']}",
            )
            changed += done.applied
        return f"{changed} stock count(s) applied"
    messages: dict[tuple[int, str], dict[str, Any]] = {}
    for n, row in enumerate(rows, start=2):
        fo_id = _int(row, "fulfilment_order_id", n, minimum=1)
        if kind == "shipments":
            key = (fo_id, row["shipment_id"])
            if not row["shipment_id"] or not row.get("sku"):
                raise InvalidInput(f"row {n}: shipment_id and sku are required", field="sku")
            m = messages.setdefault(key, {"items": {}, "row": row, "n": n})
            m["items"][row["sku"]] = m["items"].get(row["sku"], 0) + _int(
                row, "quantity", n, minimum=1
            )
        elif kind == "rejections":
            m = messages.setdefault((fo_id, ""), {"units": {}, "row": row, "n": n})
            if row.get("sku"):
                q = _int(row, "quantity", n, minimum=1) if row.get("quantity") else 0
                m["units"][row["sku"]] = q
        else:
            messages.setdefault((fo_id, ""), {"row": row, "n": n})
    results = []
    for (fo_id, ref), m in messages.items():
        row, n = m["row"], m["n"]
        msg = _message(kind, fo_id, ref, m, row, n, f"{digest[:40]}:{fo_id}:{ref}")
        results.append(svc.apply_message(htx, loc, msg, now))
    changed = sum(1 for r in results if r["changed"])
    return f"{len(results)} message(s), {changed} changed something"


def _message(
    kind: str, fo_id: int, ref: str, m: dict[str, Any], row: dict[str, str], n: int, mid: str
) -> Message:
    if kind == "shipments":
        shipment = Shipment(
            ref,
            m["items"],
            _time(row, "shipped_at", n),
            row.get("shipped_from") or None,
            row.get("tracking_number") or None,
            row.get("carrier") or None,
            row.get("tracking_url") or None,
        )
        return Message(mid, "shipped", fo_id, shipment=shipment)
    if kind == "rejections":
        try:
            reason = RejectReason(row["reason"])
        except ValueError as exc:
            known = ", ".join(r.value for r in RejectReason)
            raise InvalidInput(f"row {n}: reason must be one of {known}", field="reason") from exc
        units = {k: v for k, v in m["units"].items()}
        # a SKU named without a quantity: all of its remaining units
        return Message(
            mid, "rejected", fo_id, reason=reason, note=row.get("note") or None, units=units or None
        )
    status = row["status"]
    if status not in ("cancelled", "cancel_refused"):
        raise InvalidInput(f"row {n}: status must be cancelled or cancel_refused", field="status")
    return Message(mid, status, fo_id, note=row.get("note") or None)
