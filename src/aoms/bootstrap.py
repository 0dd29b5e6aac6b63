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
from aoms.adapters.shopify.webhooks import parse_delivery
from aoms.config import Settings
from aoms.domain.events import Event
from aoms.domain.orders import Order
from aoms.domain.policies import PolicyRegistry
from aoms.services.inbox import BatchResult, process_pending
from aoms.services.ports import (
    AfterReceive,
    AfterRoute,
    Delivery,
    Geocoder,
    OrderParser,
    OtherTopic,
)

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
    after_receive: AfterReceive | None = None  # the lifecycle checks, see build()
    after_route: AfterRoute | None = None  # the fulfilment gate, see build()
    other_topic: OtherTopic | None = None  # risk assessment webhooks, see build()

    def process_inbox(self, limit: int = 200, lane: int = 0, lanes: int = 1) -> BatchResult:
        return process_pending(
            self.store,
            parse=self.parse,
            geocode=self.geocode,
            clock=self.clock,
            limit=limit,
            lane=lane,
            lanes=lanes,
            after_receive=self.after_receive,
            other_topic=self.other_topic,
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
    runtime = Runtime(settings=settings, engine=engine, store=store)
    runtime.after_receive = lifecycle_checks(runtime)
    runtime.after_route = fulfilment_gate(runtime)
    runtime.other_topic = risk_assessments(runtime)
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


def risk_assessments(runtime: Runtime) -> OtherTopic:
    """orders/risk_assessment_changed: score the order again with the new assessment."""
    from aoms.adapters.db.lifecycle import SqlLifecycleRepo
    from aoms.adapters.db.store import SqlTx
    from aoms.adapters.shopify.webhooks import parse_risk_assessment
    from aoms.services.holds import check_order

    def run(tx: object, delivery: Delivery) -> int | None:
        assert isinstance(tx, SqlTx)
        found = parse_risk_assessment(delivery.topic, delivery.body)
        if found is None:
            return None
        external_id, assessment = found
        stored = tx.find_order(delivery.shop, "shopify", external_id)
        if stored is None:
            return None  # an order we never received: reconciliation brings it in
        order = tx.load_order(stored.id)
        check_order(SqlLifecycleRepo(tx), stored.id, order, now=runtime.clock(),
                    created=False, assessments=[assessment])  # fmt: skip
        return stored.id

    return run
