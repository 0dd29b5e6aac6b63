"""Shipping use cases: plan a fulfilment order's shipment (pack, rate shop, choose), buy its
labels, void them, take tracking updates, audit a carrier invoice.

Network calls (rates, labels, voids) happen outside the database transaction; what they
produced is then written with its events in one transaction. If that write fails after labels
were bought, the labels are voided again (the undo of the step).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any, Protocol

from aoms.domain.cartonise import Box, cartonise
from aoms.domain.errors import (
    AomsError,
    Conflict,
    InvalidInput,
    NoRates,
    NotFound,
    OrderOnHold,
    ShipmentNotVoidable,
)
from aoms.domain.events import Event
from aoms.domain.money import Money
from aoms.domain.shipping import (
    AuditReport,
    Choice,
    CommercialInvoice,
    CustomsLine,
    Dimensions,
    Duties,
    InvoiceLine,
    OnTimeRecord,
    Parcel,
    ShippingRule,
    TrackingStatus,
    audit_invoice,
    choose,
    commercial_invoice,
)
from aoms.services import handoff, refunds
from aoms.services.carriers import Carrier, Label, RateRequest, ShipAddress, TrackingUpdate
from aoms.services.handoff_ports import HandoffTx, Shipment
from aoms.services.rate_shopping import CarrierFailure, RateShopper
from aoms.services.returns_ports import ReturnsTx

log = logging.getLogger("aoms.shipping")

SHIPMENT_PLANNED = "shipment.planned"
SHIPMENT_LABELLED = "shipment.labelled"
SHIPMENT_VOIDED = "shipment.voided"
PARCEL_TRACKING_CHANGED = "parcel.tracking_changed"
PARCEL_EXCEPTION = "parcel.exception"
PARCEL_DELIVERED = "parcel.delivered"
PARCEL_LATE = "parcel.late"  # past its promise date, not delivered (found by a poll)
PARCEL_DELIVERED_LATE = "parcel.delivered_late"  # delivered after its promise date
PARCEL_NOT_SHIPPED = "parcel.not_shipped"  # it left, but its units could not be shipped
FINAL = {TrackingStatus.DELIVERED, TrackingStatus.RETURNED}
# The scans that say a parcel left its location (a delivery seen first says so too).
LEFT = {TrackingStatus.IN_TRANSIT, TrackingStatus.OUT_FOR_DELIVERY, TrackingStatus.DELIVERED}


@dataclass(frozen=True, slots=True)
class ProductInfo:
    title: str
    grams: int
    dims: Dimensions | None
    hs_code: str | None
    country_of_origin: str | None


@dataclass(frozen=True, slots=True)
class FulfilmentToShip:
    id: int
    order_id: int
    shop: str
    status: str
    location_id: str
    currency: str
    items: Mapping[str, int]
    ship_to: Mapping[str, Any]
    unit_prices: Mapping[str, Money]  # sku -> the order's net price of one unit


@dataclass(frozen=True, slots=True)
class StoreRule:
    rule: ShippingRule
    duties: Duties = Duties.DDU
    label_format: str = "PDF"


@dataclass(frozen=True, slots=True)
class PlannedParcel:
    parcel: Parcel
    request: RateRequest
    choice: Choice
    failures: tuple[CarrierFailure, ...]
    label: Label | None = None


@dataclass(frozen=True, slots=True)
class ParcelLabel:
    parcel_id: int
    adapter: str
    label: Label


class ShippingRepo(Protocol):
    def fulfilment_order(self, fo_id: int) -> FulfilmentToShip | None: ...
    def open_holds(self, order_id: int) -> list[str]: ...
    def routing_promise(self, order_id: int) -> date | None:
        """The day the order's routing promised it by: its placed day + the delivery days its
        shipping method (as it is now) has in the policy version that routed it, if any."""
        ...

    def origin(self, location_id: str) -> Mapping[str, Any] | None: ...
    def products(self, skus: Iterable[str]) -> dict[str, ProductInfo]: ...
    def boxes(self) -> list[Box]: ...
    def store_rule(self, shop: str) -> StoreRule: ...
    def on_time_records(self) -> dict[tuple[str, str], OnTimeRecord]: ...
    def open_shipment(self, fo_id: int) -> int | None: ...
    def lock_fulfilment_order(self, fo_id: int) -> str | None: ...
    def save_shipment(
        self,
        fo: FulfilmentToShip,
        planned: Sequence[PlannedParcel],
        *,
        rule: StoreRule,
        ship_on: datetime,
        deliver_by: date | None,
        customs: CommercialInvoice | None,
        now: datetime,
    ) -> int: ...
    def shipment(self, shipment_id: int) -> dict[str, Any] | None: ...
    def labels(self, shipment_id: int) -> list[ParcelLabel]: ...
    def lock_shipment(self, shipment_id: int) -> str | None: ...
    def mark_voided(
        self, shipment_id: int, parcel_ids: Sequence[int], now: datetime, *, whole: bool
    ) -> None: ...
    def parcel_by_tracking(self, tracking_number: str) -> dict[str, Any] | None: ...
    def add_tracking_event(
        self, parcel_id: int, update: TrackingUpdate, source: str, now: datetime
    ) -> bool: ...
    def set_parcel_status(
        self, parcel_id: int, status: TrackingStatus, at: datetime, *, shipped: bool
    ) -> None: ...
    def parcels_to_poll(self, limit: int) -> list[tuple[str, str, str]]: ...
    def flag_late(self, today: date, now: datetime) -> list[dict[str, Any]]: ...
    def shipments_to_void(self) -> list[int]: ...
    def quoted(self, tracking_numbers: Sequence[str]) -> dict[str, Money]: ...
    def emit(self, events: Iterable[Event], now: datetime) -> None: ...
    def handoff(self) -> HandoffTx: ...  # this (write) transaction with the hand-off tables
    def returns(self) -> ReturnsTx: ...  # ... and with the returns tables


class ShippingStore(Protocol):
    def reading(self) -> AbstractContextManager[ShippingRepo]: ...
    def writing(self) -> AbstractContextManager[ShippingRepo]: ...


@dataclass
class Shipping:
    """What the shipping use cases run with: the store, the configured carrier adapters and
    the rate shopper over them."""

    store: ShippingStore
    carriers: Mapping[str, Carrier]
    shopper: RateShopper
    webhook_secrets: Mapping[str, str] = field(default_factory=dict)
    # The undo of a hand-off when its label cannot be bought: the lifecycle holds the order for
    # a person, which asks the warehouse to stop (bootstrap wires it; None: nothing more).
    on_label_failure: Callable[[FulfilmentToShip, str, datetime], None] | None = None

    def carrier(self, adapter: str) -> Carrier:
        found = self.carriers.get(adapter)
        if found is None:
            raise Conflict(f"carrier adapter {adapter!r} is not configured", adapter=adapter)
        return found


def _destination(ship_to: Mapping[str, Any]) -> ShipAddress:
    address = ShipAddress.from_dict(ship_to)
    if not address.zip and address.country.upper() == "US":
        raise InvalidInput("the shipping address has no ZIP code", field="ship_to.zip")
    return address


def _customs(
    fo: FulfilmentToShip,
    products: Mapping[str, ProductInfo],
    origin: ShipAddress,
    dest: ShipAddress,
    duties: Duties,
) -> CommercialInvoice | None:
    if origin.country.upper() == dest.country.upper():
        return None
    lines = []
    for sku, qty in sorted(fo.items.items()):
        info = products.get(sku)
        price = fo.unit_prices.get(sku, Money.zero(fo.currency))
        lines.append(
            CustomsLine(
                sku=sku,
                description=info.title if info else "",
                quantity=qty,
                value=price * qty,
                grams=(info.grams if info else 0) * qty,
                hs_code=info.hs_code if info else None,
                origin_country=info.country_of_origin if info else None,
            )
        )
    return commercial_invoice(
        lines,
        exporter=origin.country.upper(),
        importer=dest.country.upper(),
        currency=fo.currency,
        duties=duties,
    )


def plan_shipment(
    shipping: Shipping,
    fo_id: int,
    *,
    now: datetime,
    deliver_by: date | None = None,
    buy: bool = True,
    rule: StoreRule | None = None,
) -> int:
    """Pack the fulfilment order, rate shop every parcel, choose, buy the labels (if `buy`)
    and store it all; returns the shipment id. Without `deliver_by`, the date to meet is the
    one routing promised (the order's shipping method's delivery days), if any, so the label
    goes by a service as fast as the one routing chose the location for."""
    with shipping.store.reading() as repo:
        fo = repo.fulfilment_order(fo_id)
        if fo is None:
            raise NotFound(f"no fulfilment order {fo_id}")
        if fo.status not in LABELLABLE:
            raise Conflict(f"fulfilment order {fo_id} is {fo.status}", status=fo.status)
        held = repo.open_holds(fo.order_id)
        if held:  # a label is money paid for a parcel that may not go
            raise OrderOnHold(
                f"order {fo.order_id} is on hold ({', '.join(held)}): release it first",
                field="fulfilment_order_id",
                holds=held,
            )
        existing = repo.open_shipment(fo_id)
        if existing is not None:
            raise Conflict(
                f"fulfilment order {fo_id} already has shipment {existing}; void it first",
                shipment_id=existing,
            )
        origin_row = repo.origin(fo.location_id)
        if origin_row is None:
            raise Conflict(
                f"location {fo.location_id} has no ship-from address "
                f"(PUT /v1/locations/{fo.location_id}/ship-from)",
                location_id=fo.location_id,
            )
        products = repo.products(fo.items)
        boxes = repo.boxes()
        rule = rule or repo.store_rule(fo.shop)
        records = repo.on_time_records()
        if deliver_by is None:
            deliver_by = repo.routing_promise(fo.order_id)
    try:
        planned, customs = _rate_and_buy(
            shipping, fo, origin_row, products, boxes, rule, records,
            now=now, deliver_by=deliver_by, buy=buy,
        )  # fmt: skip
    except AomsError as exc:
        if buy and fo.status in AT_WAREHOUSE and shipping.on_label_failure is not None:
            # The warehouse has the order but no label can be bought for it: it must not pick
            # and pack a parcel that cannot leave. The order is held for a person, which asks
            # the warehouse to stop (its units routed again when it confirms).
            shipping.on_label_failure(fo, f"{exc.code}: {exc}", now)
        raise
    try:
        with shipping.store.writing() as repo:
            status = repo.lock_fulfilment_order(fo_id)
            if status not in LABELLABLE:
                raise Conflict(f"fulfilment order {fo_id} became {status} meanwhile", status=status)
            if repo.open_shipment(fo_id) is not None:
                raise Conflict(f"fulfilment order {fo_id} got a shipment meanwhile")
            return repo.save_shipment(
                fo, planned, rule=rule, ship_on=now, deliver_by=deliver_by, customs=customs,
                now=now,
            )  # fmt: skip
    except BaseException:
        _undo_labels(shipping, [p for p in planned if p.label is not None])
        raise


def _rate_and_buy(
    shipping: Shipping,
    fo: FulfilmentToShip,
    origin_row: Mapping[str, Any],
    products: Mapping[str, ProductInfo],
    boxes: list[Box],
    rule: StoreRule,
    records: Mapping[tuple[str, str], OnTimeRecord],
    *,
    now: datetime,
    deliver_by: date | None,
    buy: bool,
) -> tuple[list[PlannedParcel], CommercialInvoice | None]:
    """Pack, rate shop every parcel, choose, and buy the labels (if `buy`)."""
    fo_id = fo.id
    origin = ShipAddress.from_dict(origin_row)
    dest = _destination(fo.ship_to)
    customs = _customs(fo, products, origin, dest, rule.duties)
    parcels = cartonise(
        fo.items, {s: (p.dims, p.grams) for s, p in products.items()}, boxes
    ) if fo.items else []  # fmt: skip
    if not parcels:
        raise Conflict(f"fulfilment order {fo_id} has nothing to ship")
    planned: list[PlannedParcel] = []
    for parcel in parcels:
        options = {"label_format": rule.label_format}
        request = RateRequest(origin, dest, parcel, fo.currency, customs, options)
        result = shipping.shopper.shop(request)
        choice = choose(
            result.quotes, rule.rule, ship_on=now.date(), deliver_by=deliver_by, records=records
        )
        if choice is None:
            what = f"parcel {len(planned) + 1} ({parcel.box}, {parcel.grams} g)"
            asked = [c.name for c in shipping.shopper.carriers]
            if not asked:
                why = (
                    f"no carrier is configured to quote {what}: set AOMS_TABLE_RATES_CSV, "
                    "an EasyPost or Shippo key, or install a carrier plug-in (docs/carriers.md)"
                )
            elif not result.failures:
                why = (
                    f"no carrier quoted {what}: {', '.join(asked)} answered with no rate for "
                    "it (its weight, size or lane is outside their cards)"
                )
            else:
                why = f"no carrier quoted {what}"
            raise NoRates(
                why, failures=[{"carrier": f.carrier, "reason": f.reason} for f in result.failures]
            )  # fmt: skip
        planned.append(PlannedParcel(parcel, request, choice, result.failures))
    if buy:
        planned = _buy_all(shipping, planned, rule.label_format)
    return planned, customs


def _buy_all(shipping: Shipping, planned: list[PlannedParcel], fmt: str) -> list[PlannedParcel]:
    bought: list[PlannedParcel] = []
    try:
        for p in planned:
            quote = p.choice.chosen.quote
            label = shipping.carrier(quote.ref["adapter"]).buy(quote, p.request, label_format=fmt)
            bought.append(PlannedParcel(p.parcel, p.request, p.choice, p.failures, label))
    except BaseException:
        _undo_labels(shipping, bought)
        raise
    return bought


def _undo_labels(shipping: Shipping, bought: Sequence[PlannedParcel]) -> None:
    for p in bought:
        assert p.label is not None
        try:
            shipping.carrier(p.choice.chosen.quote.ref["adapter"]).void(p.label)
        except Exception:  # the undo must try every label; what failed is logged for a person
            log.exception("could not void label %s", p.label.tracking_number)


def void_shipment(shipping: Shipping, shipment_id: int, *, now: datetime) -> dict[str, Any]:
    """Void every label of a shipment at its carrier, then mark the shipment voided."""
    with shipping.store.reading() as repo:
        shipment = repo.shipment(shipment_id)
        if shipment is None:
            raise NotFound(f"no shipment {shipment_id}")
        if shipment["status"] == "voided":
            return shipment
        labels = repo.labels(shipment_id)
    refused: list[dict[str, str]] = []
    voided: list[int] = []
    for pl in labels:
        try:
            result = shipping.carrier(pl.adapter).void(pl.label)
        except AomsError as exc:
            refused.append({"tracking_number": pl.label.tracking_number, "reason": exc.message})
            continue
        if result.accepted:
            voided.append(pl.parcel_id)
        else:
            refused.append({"tracking_number": pl.label.tracking_number,
                            "reason": result.message or result.status})  # fmt: skip
    with shipping.store.writing() as repo:
        status = repo.lock_shipment(shipment_id)
        if status == "voided":
            return repo.shipment(shipment_id) or {}
        repo.mark_voided(shipment_id, voided, now, whole=not refused)
        if voided:
            data = {"shipment_id": shipment_id, "parcels": voided, "whole": not refused}
            repo.emit([Event(SHIPMENT_VOIDED, f"shipment:{shipment_id}", data)], now)
    if refused:
        raise ShipmentNotVoidable(
            f"{len(refused)} label(s) of shipment {shipment_id} could not be voided",
            refused=refused,
        )
    with shipping.store.reading() as repo:
        return repo.shipment(shipment_id) or {}


VOID_WHEN = {
    "order.cancelled",
    "order.routed",
    "fulfilment_order.rejected",
    "fulfilment_order.cancelled",
}  # fmt: skip  (a re-route cancels the old ones)
# A fulfilment order can be labelled until it ships: before it is handed to its warehouse,
# or once the warehouse has it (and buys no label of its own).
LABELLABLE = frozenset({"open", "requested", "accepted"})
AT_WAREHOUSE = frozenset({"requested", "accepted"})  # handed off, not yet shipped


def void_orphaned(shipping: Shipping, *, now: datetime) -> list[int]:
    """Void the labels of every shipment whose fulfilment order is no longer open (the order
    was cancelled or routed again). What a carrier refuses stays for the next pass."""
    with shipping.store.reading() as repo:
        due = repo.shipments_to_void()
    done = []
    for shipment_id in due:
        try:
            void_shipment(shipping, shipment_id, now=now)
            done.append(shipment_id)
        except AomsError as exc:
            log.warning("shipment %s could not be voided: %s", shipment_id, exc.message)
    return done


def on_event(shipping: Shipping, clock: Callable[[], datetime], event: Event) -> None:
    """After commit, an order's cancellation (or re-route) voids its shipments' labels."""
    if event.name in VOID_WHEN:
        void_orphaned(shipping, now=clock())


@dataclass(frozen=True, slots=True)
class TrackingResult:
    received: int
    new: int
    changed: int
    unknown: int


def record_tracking(
    shipping: Shipping, updates: Sequence[TrackingUpdate], *, source: str, now: datetime
) -> TrackingResult:
    """Store tracking updates once each; a parcel's status moves to the newest update's, and
    each change is an event in the same transaction. An update older than the status it
    would replace is kept in the history but changes nothing (deliveries come out of order).
    The first scan that says a parcel left ships its units from its fulfilment order, and its
    delivery makes them returnable, in the same transaction."""
    new = changed = unknown = 0
    with shipping.store.writing() as repo:
        for update in sorted(updates, key=lambda u: u.occurred_at):
            parcel = repo.parcel_by_tracking(update.tracking_number)
            if parcel is None:
                unknown += 1
                continue
            if not repo.add_tracking_event(parcel["id"], update, source, now):
                continue
            new += 1
            current = parcel["status"]
            if current == "voided":
                continue
            if update.status in LEFT:
                _ship_parcel(repo, parcel, update, now)
            at = parcel["status_at"]
            if at is not None and update.occurred_at < at:
                continue
            if current in {s.value for s in FINAL} and update.status not in FINAL:
                continue  # a late scan after delivery does not undeliver it
            if current == update.status.value:
                continue
            # Left the building: the first scan in transit (a delivery seen first says nothing
            # of when it left, and the ship date stands in).
            shipped = update.status in (TrackingStatus.IN_TRANSIT, TrackingStatus.OUT_FOR_DELIVERY)
            repo.set_parcel_status(parcel["id"], update.status, update.occurred_at, shipped=shipped)
            changed += 1
            data = {
                "parcel_id": parcel["id"],
                "shipment_id": parcel["shipment_id"],
                "tracking_number": update.tracking_number,
                "from": current,
                "to": update.status.value,
                "provider_status": update.provider_status,
                "occurred_at": update.occurred_at.isoformat(),
            }
            events = [Event(PARCEL_TRACKING_CHANGED, f"shipment:{parcel['shipment_id']}", data)]
            if update.status is TrackingStatus.EXCEPTION:
                events.append(Event(PARCEL_EXCEPTION, f"shipment:{parcel['shipment_id']}", data))
            if update.status is TrackingStatus.DELIVERED:
                events.append(Event(PARCEL_DELIVERED, f"shipment:{parcel['shipment_id']}", data))
                refunds.parcel_delivered(
                    repo.returns(), parcel["order_id"], delivered_at=update.occurred_at, now=now
                )
                promised = parcel.get("deliver_by")
                if promised is not None and update.occurred_at.date() > promised.date():
                    late = {**data, "deliver_by": promised.date().isoformat()}
                    events.append(
                        Event(PARCEL_DELIVERED_LATE, f"shipment:{parcel['shipment_id']}", late)
                    )
            repo.emit(events, now)
    return TrackingResult(len(updates), new, changed, unknown)


def _ship_parcel(
    repo: ShippingRepo, parcel: Mapping[str, Any], update: TrackingUpdate, now: datetime
) -> None:
    """The parcel left: its units ship from its fulfilment order through the hand-off, once
    (the label's tracking number is the shipment's reference, so a repeat or a later scan
    changes nothing, nor does the warehouse's own report of the same parcel). What cannot be
    shipped (the order was cancelled meanwhile, aoms counts too few on hand) is kept as the
    tracking it is, and a `parcel.not_shipped` event asks a person to settle it."""
    tn = update.tracking_number
    shipment = Shipment(
        ref=handoff.label_ref(tn),
        items={str(k): int(v) for k, v in parcel["items"].items()},
        shipped_at=update.occurred_at,
        tracking_number=tn,
        carrier=parcel["carrier"],
    )
    try:
        handoff.ship(repo.handoff(), parcel["fulfilment_order_id"], shipment, now)
    except AomsError as exc:
        log.warning("parcel %s left but was not shipped: %s", tn, exc.message)
        data = {"parcel_id": parcel["id"], "shipment_id": parcel["shipment_id"],
                "fulfilment_order_id": parcel["fulfilment_order_id"], "tracking_number": tn,
                "code": exc.code, "reason": exc.message}  # fmt: skip
        repo.emit([Event(PARCEL_NOT_SHIPPED, f"shipment:{parcel['shipment_id']}", data)], now)


def poll_tracking(shipping: Shipping, *, now: datetime, limit: int = 200) -> TrackingResult:
    """Ask each parcel's carrier for its tracking (parcels not yet delivered or voided)."""
    with shipping.store.reading() as repo:
        due = repo.parcels_to_poll(limit)
    updates: list[TrackingUpdate] = []
    for adapter, tracking_number, service in due:
        try:
            updates.extend(shipping.carrier(adapter).track(tracking_number, service=service))
        except AomsError as exc:
            log.warning("tracking %s at %s failed: %s", tracking_number, adapter, exc)
    result = record_tracking(shipping, updates, source="poll", now=now)
    flag_late(shipping, now=now)
    return result


def flag_late(shipping: Shipping, *, now: datetime) -> int:
    """One `parcel.late` event for each parcel past its promise date and not delivered."""
    with shipping.store.writing() as repo:
        late = repo.flag_late(now.date(), now)
        repo.emit(
            [
                Event(PARCEL_LATE, f"shipment:{r['shipment_id']}",
                      {"parcel_id": r["id"], "shipment_id": r["shipment_id"],
                       "tracking_number": r["tracking_number"], "status": r["status"],
                       "deliver_by": r["deliver_by"].date().isoformat()})
                for r in late
            ],
            now,
        )  # fmt: skip
    return len(late)


def read_invoice(source: IO[str]) -> Iterator[InvoiceLine]:
    """A carrier invoice CSV with the columns tracking_number, amount, currency (others are
    ignored). A line that cannot be read is refused with its line number."""
    reader = csv.DictReader(source)
    need = {"tracking_number", "amount", "currency"}
    missing = need - set(reader.fieldnames or ())
    if missing:
        raise InvalidInput(f"the invoice has no column {', '.join(sorted(missing))}",
                           field="invoice")  # fmt: skip
    for n, row in enumerate(reader, start=2):
        try:
            billed = Money.of((row["amount"] or "").strip(), (row["currency"] or "").strip())
        except AomsError as exc:
            raise InvalidInput(f"invoice line {n}: {exc.message}", field="amount") from None
        yield InvoiceLine(n, (row["tracking_number"] or "").strip(), billed)


def audit_carrier_invoice(shipping: Shipping, source: IO[str]) -> AuditReport:
    lines = list(read_invoice(source))
    with shipping.store.reading() as repo:
        quoted = repo.quoted(sorted({ln.tracking_number for ln in lines}))
    return audit_invoice(lines, quoted)


def report_dict(report: AuditReport) -> dict[str, Any]:
    return {
        "lines": report.lines,
        "flagged": len(report.findings),
        "total_overcharge": {c: str(m.amount) for c, m in sorted(report.total_overcharge.items())},
        "findings": [
            {
                "line": f.line_no,
                "tracking_number": f.tracking_number,
                "problem": f.problem,
                "billed": str(f.billed.amount),
                "quoted": None if f.quoted is None else str(f.quoted.amount),
                "overcharge": None if f.overcharge is None else str(f.overcharge.amount),
                "currency": f.billed.currency,
            }
            for f in report.findings
        ],
    }
