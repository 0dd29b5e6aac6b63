"""Learned delivery promises: fit on a history, choose the parameters on a validation split
inside the fitting months, and evaluate out of time against the history's own promises."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from aoms.domain.errors import (
    Conflict,
    InvalidInput,
    NoLocationCanShip,
    NoPromiseModel,
    NotFound,
    UnknownLocation,
)
from aoms.domain.events import DELIVERY_HISTORY_IMPORTED, PROMISE_MODEL_FITTED, Event
from aoms.domain.promise import (
    OrderPromise,
    PromiseModel,
    Transit,
    promise_after_routing,
    promise_before_routing,
    region,
)

CONFIDENCES = tuple(round(0.80 + 0.01 * i, 2) for i in range(19))  # 0.80 … 0.98
HALF_LIVES: tuple[float | None, ...] = (None, 30.0, 60.0, 120.0)
PRIOR_WEIGHTS = (5.0, 10.0, 20.0)


@dataclass(frozen=True, slots=True)
class Delivered:
    ordered_on: date
    delivered_on: date
    promised_on: date | None  # the promise the history made (e.g. Olist's estimate), if any
    origin: str
    destination: str
    service: str = ""
    shipped_on: date | None = None  # handed to the carrier, if known (only for diagnostics)


@dataclass(frozen=True, slots=True)
class Params:
    confidence: float
    prior_weight: float
    half_life_days: float | None


@dataclass(frozen=True, slots=True)
class Score:
    orders: int
    mean_promised_days: float
    on_time: float
    mean_history_promised_days: float | None
    history_on_time: float | None
    mean_actual_days: float


def months_back(day: date, months: int) -> date:
    """The first day of the month `months` before `day`'s month."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def split_last_months(
    history: Sequence[Delivered], months: int
) -> tuple[list[Delivered], list[Delivered], date]:
    """(before, the last `months` calendar months, the first day of those months)."""
    if not history:
        raise InvalidInput("no delivered orders to learn from", field="history")
    last = max(d.ordered_on for d in history)
    cut = months_back(date(last.year, last.month, 1), months - 1)
    return (
        [d for d in history if d.ordered_on < cut],
        [d for d in history if d.ordered_on >= cut],
        cut,
    )


def fit(
    history: Sequence[Delivered], params: Params, *, as_of: date, known_only: bool = False
) -> PromiseModel:
    """Fit on deliveries ordered before `as_of` (with `known_only`, only those delivered
    before it too: what was known on that day, so that an out-of-time test never learns from
    a parcel that arrived in the test months). With a half-life, a delivery ordered h days
    before `as_of` weighs 0.5 ** (h / half_life)."""
    hl = params.half_life_days
    return PromiseModel.fit(
        (
            Transit(
                d.origin,
                d.destination,
                (d.delivered_on - d.ordered_on).days,
                d.service,
                0.5 ** ((as_of - d.ordered_on).days / hl) if hl else 1.0,
            )
            for d in history
            if d.ordered_on < as_of and (not known_only or d.delivered_on < as_of)
        ),
        confidence=params.confidence,
        prior_weight=params.prior_weight,
    )


def score(model: PromiseModel, orders: Sequence[Delivered]) -> Score:
    if not orders:
        raise InvalidInput("no orders to score", field="history")
    ours = [model.days(d.origin, d.destination, d.service) for d in orders]
    actual = [(d.delivered_on - d.ordered_on).days for d in orders]
    theirs = [(d.promised_on - d.ordered_on).days for d in orders if d.promised_on is not None]
    their_hits = [d.delivered_on <= d.promised_on for d in orders if d.promised_on is not None]
    return Score(
        orders=len(orders),
        mean_promised_days=statistics.fmean(ours),
        on_time=sum(a <= p for a, p in zip(actual, ours, strict=True)) / len(orders),
        mean_history_promised_days=statistics.fmean(theirs) if theirs else None,
        history_on_time=sum(their_hits) / len(their_hits) if their_hits else None,
        mean_actual_days=statistics.fmean(actual),
    )


@dataclass(frozen=True, slots=True)
class Choice:
    params: Params
    target_on_time: float
    validation: Score
    validation_from: date
    tried: int


def tune(
    history: Sequence[Delivered],
    *,
    validation_months: int = 3,
    target_on_time: float | None = None,
    confidences: Sequence[float] = CONFIDENCES,
    half_lives: Sequence[float | None] = HALF_LIVES,
    prior_weights: Sequence[float] = PRIOR_WEIGHTS,
) -> Choice:
    """Choose confidence, half-life and prior weight on the last `validation_months` of
    `history` (fitting on the months before them): the shortest mean promise whose on-time
    rate on those months reaches the target — by default the history's own on-time rate
    there. If nothing reaches it, the most punctual choice (then the shortest)."""
    if validation_months < 1:
        raise InvalidInput("at least one validation month is needed", field="validation_months")
    before, validation, cut = split_last_months(history, validation_months)
    if not before or not validation:
        raise InvalidInput(
            "the history is too short for that many validation months", field="history"
        )
    target = target_on_time
    if target is None:
        hits = [d.delivered_on <= d.promised_on for d in validation if d.promised_on]
        target = sum(hits) / len(hits) if hits else None
    if target is None:
        raise InvalidInput(
            "the history has no promises of its own: give target_on_time", field="target_on_time"
        )
    if not 0 < target <= 1:
        raise InvalidInput("target_on_time must be in (0, 1]", field="target_on_time")
    best: tuple[tuple[float, float], Params, Score] | None = None
    tried = 0
    for conf, hl, pw in itertools.product(confidences, half_lives, prior_weights):
        params = Params(conf, pw, hl)
        s = score(fit(before, params, as_of=cut, known_only=True), validation)
        tried += 1
        reached = s.on_time >= target - 1e-12
        # Rank: reaching the target first; then the shortest promise (if reached) or the
        # highest on-time rate (if not).
        key = (0.0, s.mean_promised_days) if reached else (1.0, -s.on_time)
        if best is None or key < best[0]:
            best = (key, params, s)
    assert best is not None
    return Choice(best[1], target, best[2], cut, tried)


def _rounded(s: Score) -> dict[str, object]:
    def r(x: float | None, n: int) -> float | None:
        return None if x is None else round(x, n)

    return {
        "orders": s.orders,
        "mean_promised_days": r(s.mean_promised_days, 2),
        "on_time": r(s.on_time, 4),
        "mean_history_promised_days": r(s.mean_history_promised_days, 2),
        "history_on_time": r(s.history_on_time, 4),
        "mean_actual_days": r(s.mean_actual_days, 2),
    }


def evaluate(
    history: Sequence[Delivered],
    *,
    test_months: int = 3,
    confidence: float = 0.9,
    prior_weight: float = 20.0,
    half_life_days: float | None = 60.0,
    tune_on_validation: bool = False,
    validation_months: int = 3,
    target_on_time: float | None = None,
) -> dict[str, object]:
    """Fit on every month before the last `test_months` months; promise each later order and
    compare with what the history promised. With `tune_on_validation`, confidence, prior
    weight and half-life are chosen by `tune` inside the fitting months only (the given
    values are then ignored)."""
    train, test, cut = split_last_months(history, test_months)
    if not train or not test:
        raise InvalidInput("the history is too short for that many test months")
    params = Params(confidence, prior_weight, half_life_days)
    chosen: dict[str, object] | None = None
    if tune_on_validation:
        choice = tune(train, validation_months=validation_months, target_on_time=target_on_time)
        params = choice.params
        chosen = {
            "validation_from": str(choice.validation_from),
            "validation_to": str(max(d.ordered_on for d in train)),
            "target_on_time": round(choice.target_on_time, 4),
            "candidates_tried": choice.tried,
            "validation": _rounded(choice.validation),
        }
    model = fit(train, params, as_of=cut, known_only=True)
    s = score(model, test)
    ours, theirs = s.mean_promised_days, s.mean_history_promised_days
    report: dict[str, object] = {
        "train": {
            "orders": len(train),
            "delivered_before_test": sum(d.delivered_on < cut for d in train),
            "from": str(min(d.ordered_on for d in train)),
            "to": str(max(d.ordered_on for d in train)),
        },
        "test": {"orders": len(test), "from": str(cut), "to": str(max(d.ordered_on for d in test))},
        "confidence": params.confidence,
        "prior_weight": params.prior_weight,
        "half_life_days": params.half_life_days,
        "lanes": len(model.by_lane),
        **{k: v for k, v in _rounded(s).items() if k != "orders"},
        "ratio_to_history": round(ours / theirs, 3) if theirs else None,
    }
    if chosen is not None:
        report["chosen_on_validation"] = chosen
    if s.history_on_time is not None:
        report["hindsight_bound"] = _hindsight(test, params, s.history_on_time)
    return report


def _hindsight(test: Sequence[Delivered], params: Params, target: float) -> dict[str, object]:
    """Not a model: the same lane quantiles fitted on the test orders themselves, at the least
    confidence whose on-time rate there reaches the history's own. No honest fit can beat it
    by much, so it tells whether a goal is reachable at all with lane quantiles. Where the
    hand-over to the carrier is known, a second bound also knows each order's hand-over day
    exactly and adds the lane's carrier-transit quantile (fitted on the test orders too)."""
    confidences = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))

    def transit(items: Sequence[tuple[Delivered, int]], conf: float) -> PromiseModel:
        return PromiseModel.fit(
            (Transit(d.origin, d.destination, days, d.service) for d, days in items),
            confidence=conf,
            prior_weight=params.prior_weight,
        )

    out: dict[str, object] = {"confidence": None}
    whole = [(d, (d.delivered_on - d.ordered_on).days) for d in test]
    for conf in confidences:
        s = score(transit(whole, conf), test)
        if s.on_time >= target - 1e-12:
            out = {"confidence": conf, **_rounded(s)}
            break
    handed = [d for d in test if d.shipped_on is not None]
    if len(handed) < len(test) * 0.9:
        return out
    legs = [(d, (d.delivered_on - d.shipped_on).days) for d in handed if d.shipped_on]
    actual = [(d.delivered_on - d.ordered_on).days for d in handed]
    for conf in confidences:
        model = transit(legs, conf)
        ours = [
            (d.shipped_on - d.ordered_on).days + model.days(d.origin, d.destination, d.service)
            for d in handed
            if d.shipped_on
        ]
        on_time = sum(a <= p for a, p in zip(actual, ours, strict=True)) / len(handed)
        if on_time >= target - 1e-12:
            out["knowing_the_hand_over"] = {
                "orders": len(handed),
                "confidence": conf,
                "mean_promised_days": round(statistics.fmean(ours), 2),
                "on_time": round(on_time, 4),
            }
            break
    return out


# -- the product: import a history, fit and store a model, promise an order ---------------


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One delivery in the neutral import format."""

    ordered_at: datetime
    delivered_at: datetime
    destination_country: str
    destination_region: str | None = None  # province / state code
    origin_location_id: str | None = None  # either a known location …
    origin_country: str | None = None  # … or an origin country (+ region)
    origin_region: str | None = None
    service: str = ""
    shipped_at: datetime | None = None
    promised_at: datetime | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: int
    confidence: float
    prior_weight: float
    half_life_days: float | None
    deliveries: int
    history_from: datetime
    history_to: datetime
    fitted_at: datetime
    chosen_on_validation: dict[str, Any] | None = None
    lanes: int = 0


@dataclass(frozen=True, slots=True)
class OrderToPromise:
    id: int
    status: str
    placed_at: datetime
    country_code: str | None
    province_code: str | None
    lines: tuple[tuple[str, int], ...]  # (sku, quantity) of the lines that ship
    shipments: tuple[str, ...]  # location ids of its fulfilment orders that ship (or shipped)
    backordered_units: int
    services: Mapping[str, str] = field(default_factory=dict)  # location id -> routed service
    waiting: tuple[str, ...] = ()  # of `shipments`, those with units still to leave
    some_shipped: bool = False  # a parcel of it has left


@dataclass(frozen=True, slots=True)
class PromiseAnswer:
    order_id: int
    promise: OrderPromise
    model: ModelInfo
    backordered_units: int
    notes: tuple[str, ...] = field(default_factory=tuple)


class PromiseRepo(Protocol):
    """What the promise use cases need from storage (one transaction)."""

    def location_regions(self) -> dict[str, str]: ...  # location id -> origin region
    def known_external_ids(self, ids: Sequence[str]) -> set[str]: ...
    def add_history(self, rows: Sequence[dict[str, Any]], now: datetime) -> None: ...
    def history(self) -> list[tuple[Delivered, datetime]]: ...  # (delivery, ordered_at)
    def save_model(self, model: PromiseModel, info: ModelInfo) -> int: ...  # the stored model's id
    def latest_model(self) -> tuple[PromiseModel, ModelInfo] | None: ...
    def order_to_promise(self, order_id: int) -> OrderToPromise | None: ...
    def locations_that_can_ship(self, lines: Sequence[tuple[str, int]]) -> list[str]: ...
    def emit(self, events: Iterable[Event], now: datetime) -> None: ...


class PromiseStore(Protocol):
    """Short reads, and writes that commit with their events (the outbox)."""

    def reading(self) -> AbstractContextManager[PromiseRepo]: ...
    def writing(self) -> AbstractContextManager[PromiseRepo]: ...


def _aware(value: datetime | None, name: str, row: int) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput(
            f"deliveries[{row}].{name} needs a time zone (e.g. 2026-01-31T10:00:00Z)",
            field=f"deliveries[{row}].{name}",
        )
    return value.astimezone(UTC)


def import_history(
    store: PromiseStore, records: Sequence[HistoryRecord], *, now: datetime
) -> dict[str, int]:
    """Check every record, then store them all (or none). A record whose external_id is
    already stored — or repeated in this batch — is skipped as a duplicate."""
    if not records:
        raise InvalidInput("no deliveries to import", field="deliveries")
    with store.writing() as repo:
        return _import(repo, records, now)


def _import(repo: PromiseRepo, records: Sequence[HistoryRecord], now: datetime) -> dict[str, int]:
    regions = repo.location_regions()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    batch_duplicates = 0
    for i, r in enumerate(records):
        ordered = _aware(r.ordered_at, "ordered_at", i)
        delivered = _aware(r.delivered_at, "delivered_at", i)
        assert ordered is not None and delivered is not None
        shipped = _aware(r.shipped_at, "shipped_at", i)
        promised = _aware(r.promised_at, "promised_at", i)
        if delivered < ordered:
            raise InvalidInput(
                f"deliveries[{i}]: delivered_at is before ordered_at",
                field=f"deliveries[{i}].delivered_at",
            )
        if shipped is not None and not ordered <= shipped <= delivered:
            raise InvalidInput(
                f"deliveries[{i}]: shipped_at must lie between ordered_at and delivered_at",
                field=f"deliveries[{i}].shipped_at",
            )
        if r.origin_location_id is not None:
            if r.origin_location_id not in regions:
                raise UnknownLocation(
                    f"deliveries[{i}]: no location {r.origin_location_id!r}",
                    field=f"deliveries[{i}].origin_location_id",
                )
            origin = regions[r.origin_location_id]
        else:
            try:
                origin = region(r.origin_country, r.origin_region)
            except InvalidInput as exc:
                raise InvalidInput(
                    f"deliveries[{i}]: give origin_location_id or origin_country",
                    field=f"deliveries[{i}].origin_country",
                ) from exc
        try:
            destination = region(r.destination_country, r.destination_region)
        except InvalidInput as exc:
            raise InvalidInput(
                f"deliveries[{i}]: destination_country is required",
                field=f"deliveries[{i}].destination_country",
            ) from exc
        if r.external_id is not None:
            if r.external_id in seen:
                batch_duplicates += 1
                continue
            seen.add(r.external_id)
        rows.append(
            {
                "external_id": r.external_id,
                "origin_location_id": r.origin_location_id,
                "origin_region": origin,
                "destination_region": destination,
                "service": r.service.strip(),
                "ordered_at": ordered,
                "shipped_at": shipped,
                "delivered_at": delivered,
                "promised_at": promised,
            }
        )
    known = repo.known_external_ids(sorted(seen))
    fresh = [row for row in rows if row["external_id"] is None or row["external_id"] not in known]
    result = {"imported": len(fresh), "duplicates": len(rows) - len(fresh) + batch_duplicates}
    if fresh:
        repo.add_history(fresh, now)
        repo.emit([Event(DELIVERY_HISTORY_IMPORTED, "delivery_history", dict(result))], now)
    return result


def fit_and_store(
    store: PromiseStore,
    *,
    now: datetime,
    params: Params = Params(0.9, 10.0, None),
    tune_on_validation: bool = False,
    validation_months: int = 1,
    target_on_time: float | None = None,
) -> ModelInfo:
    """Fit a model on the whole stored history and store it (the latest model promises).

    With `tune_on_validation`, the parameters are chosen by `tune` on the history's last
    `validation_months` (the given ones are ignored); then the model is fitted on everything
    with them. The history is read, and the model fitted, outside the write transaction."""
    with store.reading() as reader:
        stored = reader.history()
    if not stored:
        raise InvalidInput("no delivery history: import some first", field="history")
    history = [d for d, _ in stored]
    chosen: dict[str, Any] | None = None
    if tune_on_validation:
        choice = tune(history, validation_months=validation_months, target_on_time=target_on_time)
        params = choice.params
        chosen = {
            "validation_from": str(choice.validation_from),
            "target_on_time": round(choice.target_on_time, 4),
            "candidates_tried": choice.tried,
            "validation": _rounded(choice.validation),
        }
    as_of = max(d.ordered_on for d in history) + timedelta(days=1)
    model = fit(history, params, as_of=as_of)
    info = ModelInfo(
        id=0,
        confidence=params.confidence,
        prior_weight=params.prior_weight,
        half_life_days=params.half_life_days,
        deliveries=len(history),
        history_from=min(at for _, at in stored),
        history_to=max(at for _, at in stored),
        fitted_at=now,
        chosen_on_validation=chosen,
        lanes=len(model.by_lane),
    )
    with store.writing() as repo:
        model_id = repo.save_model(model, info)
        data = {"confidence": info.confidence, "lanes": info.lanes, "deliveries": len(history)}
        repo.emit([Event(PROMISE_MODEL_FITTED, f"promise_model:{model_id}", data)], now)
    return replace(info, id=model_id)


def promise_order(
    store: PromiseStore, order_id: int, *, service: str = "", today: date | None = None
) -> PromiseAnswer:
    """Before routing: from the fastest location that can ship the whole order. After
    routing: the date by which every shipment of the chosen plan has arrived. Counted from
    the day the order was placed; when that date is before `today` (the order has not
    shipped), a note says when it would arrive counted from today."""
    with store.reading() as repo:
        return _promise(repo, order_id, service, today)


def latest_model(store: PromiseStore) -> tuple[PromiseModel, ModelInfo]:
    with store.reading() as repo:
        found = repo.latest_model()
    if found is None:
        raise NoPromiseModel("no delivery-promise model yet: import a history and fit one")
    return found


def _promise(repo: PromiseRepo, order_id: int, service: str, today: date | None) -> PromiseAnswer:
    found = repo.latest_model()
    if found is None:
        raise NoPromiseModel("no delivery-promise model yet: import a history and fit one")
    model, info = found
    order = repo.order_to_promise(order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    if order.status == "cancelled":
        raise Conflict(f"order {order_id} is cancelled", field="order_id")
    try:
        destination = region(order.country_code, order.province_code)
    except InvalidInput as exc:
        raise InvalidInput(
            f"order {order_id} has no shipping country to promise to", field="shipping_address"
        ) from exc
    placed = order.placed_at.astimezone(UTC).date()
    regions = repo.location_regions()
    notes: list[str] = []
    if order.shipments:

        def promised(start: date, locations: Sequence[str] = order.shipments) -> OrderPromise:
            return promise_after_routing(
                model, start, [(loc, regions.get(loc, "")) for loc in locations], destination,
                service, services=order.services,
            )  # fmt: skip

        promise = promised(placed)
        if order.backordered_units:
            notes.append(
                f"{order.backordered_units} backordered unit(s) are not covered by this date"
            )
    else:
        able = repo.locations_that_can_ship(order.lines) if order.lines else []
        if not able:
            waiting = (
                f" ({order.backordered_units} backordered unit(s); it is promised once stock "
                "arrives and it is routed)"
                if order.backordered_units
                else ""
            )
            raise NoLocationCanShip(
                f"no active location holds the stock to ship order {order_id}{waiting}",
                backordered_units=order.backordered_units,
            )
        origins = [(loc, regions[loc]) for loc in able if loc in regions]

        def promised(start: date, locations: Sequence[str] = ()) -> OrderPromise:
            # not routed: from the able locations, whichever `locations` are asked for
            return promise_before_routing(model, start, origins, destination, service)

        promise = promised(placed)
    # What has not left yet: the shipments still waiting, or (not routed) the whole order.
    waits = bool(order.waiting) if order.shipments else True
    if today is not None and promise.arrives_by < today and waits:
        what = "part of it has not shipped" if order.some_shipped else "it has not shipped"
        later = promised(today, order.waiting)
        notes.append(
            f"placed on {placed.isoformat()}, {what} and this date has passed: "
            f"counted from today it would arrive by {later.arrives_by.isoformat()}"
        )
    return PromiseAnswer(order_id, promise, info, order.backordered_units, tuple(notes))
