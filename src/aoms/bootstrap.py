"""The one place that picks implementations and wires them together."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from sqlalchemy import Engine

from aoms.adapters.carriers.easypost import EasyPostCarrier
from aoms.adapters.carriers.plugins import load_carriers
from aoms.adapters.carriers.shippo import ShippoCarrier
from aoms.adapters.carriers.table_rate import TableRateCarrier, load_rate_card
from aoms.adapters.carriers.zones import load_zones
from aoms.adapters.db import migrate, queries, shopify_pushes
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.outbox import relay_once
from aoms.adapters.db.scarcity import SqlScarcityStore
from aoms.adapters.db.shipping import SqlShippingStore
from aoms.adapters.db.shopify import SqlShopifyStore
from aoms.adapters.db.store import SqlStore
from aoms.adapters.geocode import geocode
from aoms.adapters.plugins import load_routing_policies
from aoms.adapters.return_labels import BuiltinReturnCarrier
from aoms.adapters.shopify.admin import ShopifyAdminClient
from aoms.adapters.shopify.fulfilment_orders import ShopifyPushAdmin
from aoms.adapters.shopify.refunds import ShopifyRefundPublisher
from aoms.adapters.shopify.returns import TOPIC_HANDLERS
from aoms.adapters.shopify.webhooks import parse_delivery
from aoms.config import Settings
from aoms.domain.errors import AomsError, ShopifyNotConfigured
from aoms.domain.events import Event
from aoms.domain.orders import Order, OrderStatus
from aoms.domain.policies import PolicyRegistry
from aoms.domain.routing_policy import utc_day_start
from aoms.services import orders as order_cases
from aoms.services import scarcity, waves
from aoms.services.carriers import Carrier
from aoms.services.inbox import BatchResult, TopicHandler, process_pending
from aoms.services.ports import (
    AfterReceive,
    AfterRoute,
    Delivery,
    Geocoder,
    NoRefundPublisher,
    OrderParser,
    RefundPublisher,
)
from aoms.services.rate_shopping import RateShopper
from aoms.services.returns_ports import ReturnCarrier
from aoms.services.shipping import FulfilmentToShip, Shipping
from aoms.services.shipping import on_event as shipping_on_event
from aoms.services.shopify_pushes import drain as drain_pushes
from aoms.services.shopify_sync import push_inventory

log = logging.getLogger("aoms")

Subscriber = Callable[[int, Event], None]
TIMER_CHECK_SECONDS = 20.0  # how often the workers look for a closed wave or stale prices
TIMERS_POLL_SECONDS = 1.0  # the timers' own beat; a queued Shopify push wakes them at once


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    store: SqlStore
    geocode: Geocoder = geocode
    parse: OrderParser = parse_delivery
    clock: Callable[[], datetime] = utc_now
    subscribers: list[Subscriber] = field(default_factory=list)
    recent_events: deque[tuple[int, Event]] = field(default_factory=lambda: deque(maxlen=200))
    inbox_signal: threading.Event = field(default_factory=threading.Event)  # a delivery came
    timers_signal: threading.Event = field(default_factory=threading.Event)  # a push is queued
    waves_closed: dict[str, datetime] = field(default_factory=dict)  # shop -> last wave re-planned
    shopify_clients: dict[str, ShopifyAdminClient] = field(default_factory=dict)  # kept per shop
    shopify_pushed: dict[str, float] = field(default_factory=dict)  # shop -> monotonic time
    inventory_dirty: bool = False  # events were relayed since the last push: stock may differ
    clients_lock: threading.Lock = field(default_factory=threading.Lock)
    stock_checked: float = -math.inf  # monotonic time of the last stock invariant check
    refund_publisher: RefundPublisher = field(default_factory=NoRefundPublisher)
    return_carrier: ReturnCarrier = field(default_factory=BuiltinReturnCarrier)
    topic_handlers: dict[str, TopicHandler] = field(default_factory=lambda: dict(TOPIC_HANDLERS))
    shipping: Shipping | None = None  # carriers and the rate shopper (docs/carriers.md)
    after_receive: AfterReceive | None = None  # the lifecycle checks, see build()
    after_route: AfterRoute | None = None  # the fulfilment gate, see build()

    def process_inbox(self, limit: int = 200, lane: int = 0, lanes: int = 1) -> BatchResult:
        return process_pending(
            self.store,
            parse=self.parse,
            geocode=self.geocode,
            clock=self.clock,
            limit=limit,
            lane=lane,
            lanes=lanes,
            handlers=self.topic_handlers,
            after_receive=self.after_receive,
        )

    def inbox_threads(self, *, dedicated: bool) -> int:
        """How many inbox threads to run: the setting, or else one — except in a dedicated
        worker process on PostgreSQL, where work waits on round trips and four threads overlap
        them (each delivery is claimed with SKIP LOCKED). Beside the API, more threads would
        take the interpreter from webhook acknowledgements."""
        if self.settings.inbox_threads:
            return self.settings.inbox_threads
        return 4 if dedicated and self.store.dialect == "postgresql" else 1

    def publish(self, batch: Sequence[tuple[int, Event]]) -> None:
        for event_id, event in batch:
            self.recent_events.append((event_id, event))
            for subscriber in self.subscribers:
                subscriber(event_id, event)

    def replan_due_waves(self) -> list[dict[str, object]]:
        """Re-plan, together, each wave that has closed for a shop whose active routing policy
        sets `wave_minutes`. A shop that fails is logged and left for its next wave."""
        with self.store.read() as conn:
            schedules = queries.wave_schedules(conn)
        reports: list[dict[str, object]] = []
        for shop, since in waves.due_waves(schedules, self.waves_closed, self.clock()):
            try:
                with self.store.transaction() as tx:
                    report = waves.replan_wave(tx, shop, since, now=self.clock())
            except AomsError:
                log.exception("the wave of %s since %s was not re-planned", shop, since)
                continue
            log.info("wave re-planned: %s", report)
            reports.append(report)
        return reports

    def refresh_due_prices(self) -> list[dict[str, object]]:
        """Refresh the scarcity prices of each shop whose last refresh is older than its active
        policy's `refresh_minutes`. A shop that fails is logged and tried on the next pass."""
        prices = SqlScarcityStore(self.store)
        reports: list[dict[str, object]] = []
        for shop in scarcity.due_refreshes(prices, self.clock()):
            try:
                reports.append(scarcity.refresh_prices(prices, shop, now=self.clock()))
            except AomsError:
                log.exception("the scarcity prices of %s were not refreshed", shop)
        return reports

    def shopify_client(self, shop: str) -> ShopifyAdminClient:
        """The shop's Admin API client, made once and kept: its pacing knows the bucket."""
        with self.clients_lock:
            if shop not in self.shopify_clients:
                self.shopify_clients[shop] = shopify_admin(self.settings, shop)
            return self.shopify_clients[shop]

    def push_due_inventory(self) -> list[dict[str, object]]:
        """Push available-to-sell where it changed, to each shop with an access token and
        mapped locations: every `shopify_push_seconds`, and `shopify_push_after_change_seconds`
        after a relayed event. A shop that fails is logged and tried on the next pass."""
        every = self.settings.shopify_push_seconds
        if not every or not self.settings.shopify_admin_tokens:
            return []
        soon = min(every, self.settings.shopify_push_after_change_seconds)
        with self.clients_lock:  # events relayed from here on mark it again
            dirty, self.inventory_dirty = self.inventory_dirty, False
        wait = soon if dirty else every
        repo = SqlShopifyStore(self.store)
        reports: list[dict[str, object]] = []
        for shop in sorted(self.settings.shopify_admin_tokens):
            now = time.monotonic()
            if now - self.shopify_pushed.get(shop, -math.inf) < wait:
                if dirty:
                    with self.clients_lock:
                        self.inventory_dirty = True  # not yet: keep it for the next pass
                continue
            self.shopify_pushed[shop] = now
            if not repo.targets(shop):
                continue  # nothing mapped yet
            try:
                pushed = push_inventory(repo, self.shopify_client(shop), shop, now=self.clock())
            except AomsError:
                log.exception("available-to-sell was not pushed to %s", shop)
                continue
            reports.append(pushed.as_dict())
        return reports

    def queue_shopify_pushes(self, event_id: int, event: Event) -> None:
        """Queue what an event tells Shopify (a shipment, a hold placed or released), for
        a shop aoms has an access token for; sent by `send_shopify_pushes`."""
        shops = self.settings.shopify_admin_tokens
        if shops and not event.name.startswith("shopify."):
            with self.clients_lock:
                self.inventory_dirty = True  # available-to-sell may have moved: push it soon
        if not shops or event.name not in shopify_pushes.PUSH_EVENTS:
            return
        with self.store.writer() as conn:
            rows = shopify_pushes.pushes_for(conn, event_id, event, shops)
            if rows:
                shopify_pushes.enqueue(conn, rows, self.clock())
                self.timers_signal.set()  # wake the timers: Shopify hears of it at once

    def send_shopify_pushes(self) -> dict[str, int]:
        """Send the queued pushes that are due, to each shop with an access token."""
        shops = sorted(self.settings.shopify_admin_tokens)
        if not shops:
            return {}
        return drain_pushes(
            shopify_pushes.SqlShopifyPushes(self.store),
            lambda shop: ShopifyPushAdmin(self.shopify_client(shop)),
            shops,
            now=self.clock(),
        )

    def check_stock_if_due(self) -> int | None:
        """Check every stock counter against its reservations and movements, at most every
        `stock_check_seconds`; the number of breaches (each also an event), None if not due."""
        every = self.settings.stock_check_seconds
        if not every or time.monotonic() - self.stock_checked < every:
            return None
        self.stock_checked = time.monotonic()
        from aoms.adapters.db.lifecycle import SqlStockCheck
        from aoms.services.stock_checks import check_stock

        with self.store.transaction() as tx:
            found = check_stock(SqlStockCheck(tx), now=self.clock())
        for b in found:
            log.error("stock invariant broken: %s at %s: %s", b.sku, b.location_id, b.detail)
        return len(found)

    def retry_earlier_backorders(self, limit: int = 200) -> dict[str, int] | None:
        """Route again, oldest first and up to `limit` at a time, the backordered orders last
        routed before today (UTC) whose backordered units have free stock somewhere: a
        location at its daily capacity yesterday has room today. Each is tried once a day —
        its new decision is today's — and one whose routing failed (a busy database) is tried
        at the next look; what the workers knew before a restart does not matter. None when
        there is nothing to try."""
        ids = self.store.backorders_to_retry(utc_day_start(self.clock()), limit)
        if not ids:
            return None
        outcome = order_cases.retry_waiting(
            self.store, geocode=self.geocode, clock=self.clock, status=OrderStatus.BACKORDERED,
            after_route=self.after_route, order_ids=ids,
        )  # fmt: skip
        log.info("backordered orders routed again on a new day: %s", outcome)
        return outcome

    def relay_events(self) -> int:
        return relay_once(self.store, self.publish, self.clock())

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def close(self) -> None:
        if self.shipping is not None:
            self.shipping.shopper.close()
        for client in self.shopify_clients.values():
            client.close()
        self.engine.dispose()


def build(settings: Settings | None = None) -> Runtime:
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    policies = PolicyRegistry()  # the built-ins, then the installed plug-ins
    load_routing_policies(policies)
    store = SqlStore(engine, default_policy=settings.default_routing_policy, policies=policies)
    runtime = Runtime(settings=settings, engine=engine, store=store)
    runtime.shipping = build_shipping(settings, store)
    runtime.shipping.on_label_failure = label_failure_hold(runtime)
    runtime.subscribers.append(partial(_void_labels_on, runtime))
    runtime.subscribers.append(runtime.queue_shopify_pushes)
    runtime.after_receive = lifecycle_checks(runtime)
    runtime.after_route = fulfilment_gate(runtime)
    runtime.topic_handlers["orders/risk_assessment_changed"] = risk_assessments(runtime)
    if settings.shopify_admin_tokens:  # refunds made in aoms are told to Shopify
        runtime.refund_publisher = ShopifyRefundPublisher(runtime.shopify_client)
    return runtime


def lifecycle_checks(runtime: Runtime) -> AfterReceive:
    """Payment, address, fraud and merchant-rule checks on every order received."""
    from aoms.adapters.db.lifecycle import SqlLifecycleRepo
    from aoms.adapters.db.store import SqlTx
    from aoms.services.holds import check_order

    def run(tx: object, order: Order, order_id: int, created: bool) -> None:
        assert isinstance(tx, SqlTx)
        check_order(SqlLifecycleRepo(tx), order_id, order, now=runtime.clock(), created=created)

    return run


def label_failure_hold(runtime: Runtime) -> Callable[[FulfilmentToShip, str, datetime], None]:
    """No label for a fulfilment order a warehouse has: hold the order for a person (manual
    review), which asks the warehouse to stop (services.holds.place_hold)."""
    from aoms.adapters.db.lifecycle import SqlLifecycleRepo
    from aoms.domain.lifecycle import HoldKind
    from aoms.services.holds import place_hold

    def run(fo: FulfilmentToShip, why: str, now: datetime) -> None:
        with runtime.store.transaction() as tx:
            stored = tx.get_order(fo.order_id)  # locked: as every order write starts
            if stored is None or stored.status is OrderStatus.CANCELLED:
                return  # cancelled meanwhile: its warehouse was told to stop already
            reason = f"no label could be bought for fulfilment order {fo.id} ({why})"
            detail = {"fulfilment_order_id": fo.id, "label_error": why}
            place_hold(SqlLifecycleRepo(tx), fo.order_id, HoldKind.MANUAL_REVIEW, reason,
                       now=now, detail=detail)  # fmt: skip

    return run


def _void_labels_on(runtime: Runtime, event_id: int, event: Event) -> None:
    if runtime.shipping is None:
        return
    try:
        shipping_on_event(runtime.shipping, runtime.clock, event)
    except Exception:  # a carrier's failure must not stop the relay; the next event retries
        log.exception("voiding labels after %s failed", event.name)


def build_shipping(settings: Settings, store: SqlStore, extra: Sequence[Carrier] = ()) -> Shipping:
    """The carriers the settings name (the table-rate card, EasyPost, Shippo), the installed
    carrier plug-ins (entry points `aoms.carriers`), and `extra`."""
    deadline = settings.rate_shop_deadline_seconds
    carriers: list[Carrier] = []
    if settings.table_rates_csv is not None:
        cards = load_rate_card(settings.table_rates_csv, settings.table_surcharges_csv)
        carriers.append(TableRateCarrier(cards, load_zones(settings.zones_csv)))
    if settings.easypost_api_key is not None:
        carriers.append(
            EasyPostCarrier(settings.easypost_api_key.get_secret_value(),
                            base_url=settings.easypost_base_url, timeout=deadline)
        )  # fmt: skip
    if settings.shippo_api_token is not None:
        carriers.append(
            ShippoCarrier(settings.shippo_api_token.get_secret_value(),
                          base_url=settings.shippo_base_url, timeout=deadline)
        )  # fmt: skip
    carriers.extend(load_carriers(settings))
    carriers.extend(extra)
    secrets = {
        name: value.get_secret_value()
        for name, value in (
            ("easypost", settings.easypost_webhook_secret),
            ("shippo", settings.shippo_webhook_secret),
            ("shippo_token", settings.shippo_webhook_token),
        )
        if value is not None
    }
    shopper = RateShopper(
        carriers, deadline_seconds=deadline, cache_seconds=settings.rate_cache_seconds
    )
    return Shipping(SqlShippingStore(store), {c.name: c for c in carriers}, shopper, secrets)


def shopify_admin(settings: Settings, shop: str) -> ShopifyAdminClient:
    """The shop's Admin API client, with its access token and the pinned API version."""
    token = settings.shopify_admin_tokens.get(shop)
    if token is None:
        raise ShopifyNotConfigured(
            f"no Admin API access token for {shop}: set AOMS_SHOPIFY_ADMIN_TOKENS", field="shop"
        )
    return ShopifyAdminClient(
        shop,
        token.get_secret_value(),
        api_version=settings.shopify_api_version,
        base_url=settings.shopify_admin_url,
    )


class Workers:
    """In-process workers for the one-process mode: drain the inbox, relay the outbox."""

    def __init__(self, runtime: Runtime, *, dedicated: bool = False) -> None:
        self.runtime = runtime
        self.dedicated = dedicated
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_wave_check = 0.0

    def start(self) -> None:
        lanes = self.runtime.inbox_threads(dedicated=self.dedicated)
        poll = self.runtime.settings.worker_poll_seconds
        inbox, timers = self.runtime.inbox_signal, self.runtime.timers_signal
        # Each loop waits on its own signal: the inbox on deliveries, the relay on its poll,
        # the timers on their beat or a queued push — so a burst of webhooks wakes only the
        # inbox, not every loop (a loop woken by every acknowledgement spins on the GIL and
        # the database the acknowledgements need).
        steps: list[tuple[str, Callable[[], bool], Callable[[], object]]] = [
            (f"inbox-{lane}", partial(self._inbox_step, lane, lanes), partial(inbox.wait, poll))
            for lane in range(lanes)
        ]
        steps.append(("outbox", self._outbox_step, partial(self._stop.wait, poll)))
        beat = max(poll, TIMERS_POLL_SECONDS)
        steps.append(("timers", self._timers_step, partial(self._wait_timers, timers, beat)))
        for name, step, wait in steps:
            thread = threading.Thread(
                target=self._loop, args=(step, wait), name=f"aoms-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.runtime.inbox_signal.set()
        self.runtime.timers_signal.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _inbox_step(self, lane: int, lanes: int) -> bool:
        if lane == 0:
            self.runtime.inbox_signal.clear()
        return self.runtime.process_inbox(lane=lane, lanes=lanes).processed > 0

    def _outbox_step(self) -> bool:
        return self.runtime.relay_events() > 0

    def _timers_step(self) -> bool:
        now = time.monotonic()
        if now >= self._next_wave_check:
            self._next_wave_check = now + TIMER_CHECK_SECONDS
            self.runtime.replan_due_waves()
            self.runtime.refresh_due_prices()
            self.runtime.retry_earlier_backorders()
        self.runtime.push_due_inventory()  # each paced by its own setting
        self.runtime.send_shopify_pushes()
        self.runtime.check_stock_if_due()
        return False

    @staticmethod
    def _wait_timers(signal: threading.Event, seconds: float) -> None:
        signal.wait(seconds)
        signal.clear()

    def _loop(self, step: Callable[[], bool], wait: Callable[[], object]) -> None:
        while not self._stop.is_set():
            try:
                busy = step()
            except Exception:  # a worker must outlive one bad batch; it is logged and retried
                log.exception("worker step failed")
                busy = False
            if not busy:
                wait()


def fulfilment_gate(runtime: Runtime) -> AfterRoute:
    """Release an order routed again (stock arrived, a rate card was set, by hand) for
    fulfilment when it is now fully routed and nothing holds it."""
    from aoms.adapters.db.lifecycle import SqlLifecycleRepo
    from aoms.adapters.db.store import SqlTx
    from aoms.services.holds import gate

    def run(tx: object, order_id: int) -> None:
        assert isinstance(tx, SqlTx)
        gate(SqlLifecycleRepo(tx), order_id, now=runtime.clock())

    return run


def risk_assessments(runtime: Runtime) -> TopicHandler:
    """orders/risk_assessment_changed: score the order again with the new assessment."""
    from aoms.adapters.db.lifecycle import SqlLifecycleRepo
    from aoms.adapters.db.store import SqlTx
    from aoms.adapters.shopify.webhooks import parse_risk_assessment
    from aoms.services.holds import check_order

    def run(tx: object, delivery: Delivery, now: datetime) -> int | None:
        assert isinstance(tx, SqlTx)
        found = parse_risk_assessment(delivery.topic, delivery.body)
        if found is None:
            return None
        external_id, assessment = found
        stored = tx.find_order(delivery.shop, "shopify", external_id)
        if stored is None:
            return None  # an order we never received: reconciliation brings it in
        order = tx.load_order(stored.id)
        check_order(SqlLifecycleRepo(tx), stored.id, order, now=now,
                    created=False, assessments=[assessment])  # fmt: skip
        return stored.id

    return run
