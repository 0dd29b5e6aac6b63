"""Ports: what the use cases need from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from aoms.domain.events import Event
from aoms.domain.experiments import Experiment
from aoms.domain.geo import Point
from aoms.domain.inventory import StockLevel
from aoms.domain.orders import Address, AmountCheck, LineAllocation, Order, OrderStatus
from aoms.domain.policies import RoutingPolicy
from aoms.domain.routing import Candidate, RateCard, RoutingPlan
from aoms.domain.routing_policy import PolicyDocument, PolicyVersion

if TYPE_CHECKING:
    from aoms.services.handoff_ports import HandoffTx


@dataclass(frozen=True, slots=True)
class StoredOrder:
    id: int
    status: OrderStatus
    source_updated_at: datetime
    routing_key: str
    currency: str
    dest: Point | None
    channel_key: str | None = None  # a key of the channel's lines as it last sent them
    shipping_method: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingInputs:
    """What a shop's order is routed with: the shop's policy name (or the default), the rate
    card of the order's currency, and the shop's active policy version, if it has one."""

    policy: str
    card: RateCard | None
    active: PolicyVersion | None = None
    experiment: Experiment | None = None  # a running A/B test overrides `active`


@dataclass(frozen=True, slots=True)
class ActiveReservation:
    id: int
    line_no: int
    sku: str
    location_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook delivery as it was stored in the inbox."""

    id: int
    shop: str
    topic: str
    body: bytes
    attempts: int


class Tx(Protocol):
    """One transaction. Everything done through it commits together or not at all."""

    def find_order(self, shop: str, channel: str, external_id: str) -> StoredOrder | None: ...
    def get_order(self, order_id: int) -> StoredOrder | None: ...
    def insert_order(
        self,
        order: Order,
        *,
        status: OrderStatus,
        dest: Point | None,
        dest_source: str | None,
        amounts: AmountCheck,
        routing_key: str,
        now: datetime,
        channel_key: str | None = None,
    ) -> int: ...
    def update_order(
        self,
        order_id: int,
        order: Order,
        *,
        dest: Point | None,
        dest_source: str | None,
        amounts: AmountCheck,
        routing_key: str,
        replace_lines: bool,
        channel_key: str | None = None,
    ) -> None: ...
    def set_order_outcome(
        self,
        order_id: int,
        *,
        status: OrderStatus,
        backordered_units: int,
        shipments: int,
        line_reserved: dict[int, int],
        line_backordered: dict[int, int],
    ) -> None: ...
    def set_cancelled(self, order_id: int, at: datetime) -> None: ...
    def load_order(self, order_id: int) -> Order: ...

    def routing_inputs(self, shop: str, currency: str) -> RoutingInputs: ...
    def routing_policy(self, name: str) -> RoutingPolicy: ...
    def shipped_today(self, location_ids: Sequence[str], day_start: datetime) -> dict[str, int]: ...
    def open_shipments_before(self, order_id: int, before: datetime) -> dict[str, int]: ...
    def open_shipments_since(self, order_id: int, since: datetime) -> dict[str, int]: ...
    def sku_tags(self, skus: Iterable[str]) -> dict[str, list[str]]: ...
    def product_grams(self, skus: Iterable[str]) -> dict[str, int]: ...
    def stock_prices(self, shop: str, skus: Iterable[str]) -> dict[tuple[str, str], float]: ...
    def handed_off(self, order_id: int) -> bool: ...
    def handoff(self) -> HandoffTx: ...  # this transaction with the hand-off tables
    def open_holds(self, order_id: int) -> list[str]: ...
    def lock_stock(self, skus: Iterable[str]) -> list[StockLevel]: ...
    def reserved_skus(self, order_id: int) -> list[str]: ...
    def active_reservations(self, order_id: int) -> list[ActiveReservation]: ...
    def wave_orders(self, shop: str, since: datetime) -> list[int]: ...
    def candidates(self, levels: Sequence[StockLevel]) -> list[Candidate]: ...
    def change_stock(
        self,
        sku: str,
        location_id: str,
        *,
        on_hand: int = 0,
        reserved: int = 0,
        reason: str,
        reference: str | None,
        now: datetime,
        idempotency_key: str | None = None,
        safety_stock: int | None = None,
    ) -> StockLevel: ...
    def movement_for(self, idempotency_key: str) -> tuple[str, str] | None: ...

    def reserve(
        self, order_id: int, allocations: Sequence[LineAllocation], now: datetime
    ) -> None: ...
    def release(self, order_id: int, now: datetime) -> list[ActiveReservation]: ...
    def replace_fulfilment_orders(
        self, order_id: int, plan: RoutingPlan | None, now: datetime
    ) -> None: ...
    def add_decision(
        self,
        order_id: int,
        plan: RoutingPlan,
        now: datetime,
        *,
        policy_version: int | None = None,
        experiment_id: int | None = None,
        arm: str | None = None,
    ) -> None: ...

    def lock_shop(self, shop: str) -> bool: ...
    def shop_currency(self, shop: str) -> str | None: ...
    def known_locations(self, ids: Iterable[str]) -> set[str]: ...
    def policy_versions(self, shop: str) -> list[PolicyVersion]: ...
    def insert_policy_version(
        self, shop: str, document: PolicyDocument, note: str, now: datetime
    ) -> int: ...
    def running_experiment(self, shop: str) -> int | None: ...
    def insert_experiment(
        self, shop: str, arm_a: int, arm_b: int, share_b: float, note: str, now: datetime
    ) -> int: ...
    def stop_experiment(self, shop: str, experiment_id: int, now: datetime) -> bool: ...
    def set_policy_status(
        self, shop: str, version: int, status: str, now: datetime | None = None
    ) -> None: ...

    def emit(self, events: Iterable[Event], now: datetime) -> None: ...

    def claim_delivery(self, delivery_id: int) -> bool: ...
    def finish_delivery(
        self,
        delivery_id: int,
        *,
        status: str,
        now: datetime,
        order_id: int | None = None,
        error_code: str | None = None,
        error: str | None = None,
    ) -> None: ...


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Tx]: ...
    def pause_between_writes(self) -> None: ...
    def waiting_orders(self, status: OrderStatus, sku: str | None, limit: int) -> list[int]: ...
    def backorders_to_retry(self, routed_before: datetime, limit: int) -> list[int]: ...
    def available_units(self, sku: str) -> int: ...
    def pending_deliveries(self, limit: int, lane: int = 0, lanes: int = 1) -> list[Delivery]: ...


Geocoder = Callable[[Address], tuple[Point, str] | None]
"""Find a destination for an address: (point, source) or None when it cannot be placed."""

OrderParser = Callable[[str, str, bytes], Order | None]
"""(shop, topic, raw body) -> the order in it, or None for a topic that carries no order."""

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class RefundToPush:
    """A refund aoms made, as the channel is to be told of it (after it committed)."""

    refund_id: int
    shop: str
    channel: str
    order_external_id: str
    currency: str
    amount: str  # what goes back to the payments
    lines: tuple[tuple[str | None, int, str | None], ...]  # (line external id, units, restock at)
    shipping: str
    note: str  # carries "aoms-refund:<id>" so the channel's refunds/create is recognised
    # (method/gateway, amount, the channel's id of the payment refunded) per payment
    payments: tuple[tuple[str, str, str | None], ...] = ()


class RefundPublisher(Protocol):
    """Tells the channel (Shopify's Admin API) of a refund; returns the channel's refund id,
    or None when there is nothing to tell (the order came from another channel)."""

    def publish_refund(self, refund: RefundToPush) -> str | None: ...


class NoRefundPublisher:
    """Publishes nothing: the refund stays in aoms until a channel client is wired in."""

    def publish_refund(self, refund: RefundToPush) -> str | None:
        return None


AfterReceive = Callable[[Tx, Order, int, bool], None]
"""Run in the receiving transaction after an order was applied: (tx, order, order id, whether
it was created). The lifecycle checks (payment, address, fraud, holds) hang here."""

AfterRoute = Callable[[Tx, int], None]
"""Run in the routing transaction after an order was routed again: (tx, order id). The
lifecycle releases a fully routed order with no open hold for fulfilment here."""
