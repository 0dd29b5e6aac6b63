"""The one place that picks implementations and wires them together."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from sqlalchemy import Engine

from aoms.adapters.db import migrate
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.outbox import relay_once
from aoms.adapters.db.store import SqlStore
from aoms.adapters.geocode import geocode
from aoms.adapters.plugins import load_routing_policies
from aoms.adapters.shopify.admin import ShopifyAdminClient
from aoms.adapters.shopify.webhooks import parse_delivery
from aoms.config import Settings
from aoms.domain.errors import ShopifyNotConfigured
from aoms.domain.events import Event
from aoms.domain.policies import PolicyRegistry
from aoms.services.inbox import BatchResult, process_pending
from aoms.services.ports import Geocoder, OrderParser

log = logging.getLogger("aoms")

Subscriber = Callable[[int, Event], None]


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
    inbox_signal: threading.Event = field(default_factory=threading.Event)

    def process_inbox(self, limit: int = 200, lane: int = 0, lanes: int = 1) -> BatchResult:
        return process_pending(
            self.store,
            parse=self.parse,
            geocode=self.geocode,
            clock=self.clock,
            limit=limit,
            lane=lane,
            lanes=lanes,
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

    def relay_events(self) -> int:
        return relay_once(self.store, self.publish, self.clock())

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def build(settings: Settings | None = None) -> Runtime:
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    policies = PolicyRegistry()  # the built-ins, then the installed plug-ins
    load_routing_policies(policies)
    store = SqlStore(engine, default_policy=settings.default_routing_policy, policies=policies)
    return Runtime(settings=settings, engine=engine, store=store)


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

    def start(self) -> None:
        lanes = self.runtime.inbox_threads(dedicated=self.dedicated)
        steps: list[tuple[str, Callable[[], bool]]] = [
            (f"inbox-{lane}", partial(self._inbox_step, lane, lanes)) for lane in range(lanes)
        ]
        steps.append(("outbox", self._outbox_step))
        for name, step in steps:
            thread = threading.Thread(
                target=self._loop, args=(step,), name=f"aoms-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.runtime.inbox_signal.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _inbox_step(self, lane: int, lanes: int) -> bool:
        if lane == 0:
            self.runtime.inbox_signal.clear()
        return self.runtime.process_inbox(lane=lane, lanes=lanes).processed > 0

    def _outbox_step(self) -> bool:
        return self.runtime.relay_events() > 0

    def _loop(self, step: Callable[[], bool]) -> None:
        poll = self.runtime.settings.worker_poll_seconds
        while not self._stop.is_set():
            try:
                busy = step()
            except Exception:  # a worker must outlive one bad batch; it is logged and retried
                log.exception("worker step failed")
                busy = False
            if not busy:
                self.runtime.inbox_signal.wait(poll)
