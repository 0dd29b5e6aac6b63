"""Tables. Money is stored as integer minor units beside its currency (exact on every database);
times are stored as UTC and read back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import DateTime, TypeDecorator

from aoms.domain.money import Money


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def to_minor(money: Money | None) -> int | None:
    """Money as stored: integer minor units (its currency is stored beside it)."""
    return None if money is None else money.in_minor()


from_minor = Money.from_minor


# Integer primary keys that autoincrement on both databases.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

shops = Table(
    "shops",
    metadata,
    Column("domain", String(255), primary_key=True),
    Column("routing_policy", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

rate_cards = Table(
    "rate_cards",
    metadata,
    Column("currency", String(3), primary_key=True),
    Column("card", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

locations = Table(
    "locations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lng", Float, nullable=False),
    Column("country_code", String(2), nullable=False),
    Column("region", String(16)),  # province/state code, for delivery-promise lanes
    Column("handling_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("sku", String(255), primary_key=True),
    Column("title", String(255), nullable=False),
    Column("grams", Integer, nullable=False),
    Column("tags", JSON),  # product tags (a list), for routing policies' eligibility rules
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("sku", String(255), primary_key=True),
    Column("location_id", String(64), ForeignKey("locations.id"), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("safety_stock", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    CheckConstraint("safety_stock >= 0", name="safety_not_negative"),
)

stock_movements = Table(
    "stock_movements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku", String(255), nullable=False),
    Column("location_id", String(64), nullable=False),
    Column("on_hand_delta", Integer, nullable=False),
    Column("reserved_delta", Integer, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("reference", String(255)),
    Column("idempotency_key", String(255), unique=True),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_stock_movements_sku_location", "sku", "location_id"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shop", String(255), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("external_id", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("financial_status", String(32)),
    Column("currency", String(3), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("source_updated_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("cancelled_at", UTCDateTime),
    Column("ship_to", JSON, nullable=False),
    Column("dest_lat", Float),
    Column("dest_lng", Float),
    Column("dest_source", String(32)),
    Column("routing_key", String(64), nullable=False),
    Column("line_items_minor", BigInteger, nullable=False),
    Column("discounts_minor", BigInteger, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    Column("shipping_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger),
    Column("taxes_included", Boolean, nullable=False),
    Column("amounts_add_up", Boolean, nullable=False),
    Column("tags", Text, nullable=False),
    Column("units", Integer, nullable=False),
    Column("backordered_units", Integer, nullable=False),
    Column("shipments", Integer, nullable=False),
    UniqueConstraint("shop", "channel", "external_id", name="uq_orders_external"),
    Index("ix_orders_status_id", "status", "id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("external_id", String(64)),
    Column("sku", String(255), nullable=False),
    Column("variant_id", String(64)),
    Column("title", String(512)),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    Column("grams", Integer, nullable=False),
    Column("requires_shipping", Boolean, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("reserved_qty", Integer, nullable=False),
    Column("backordered_qty", Integer, nullable=False),
    Index("ix_order_lines_sku", "sku"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(255), nullable=False),
    Column("location_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("released_at", UTCDateTime),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    Index("ix_reservations_order", "order_id", "status"),
)

fulfilment_orders = Table(
    "fulfilment_orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("location_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("items", JSON, nullable=False),
    Column("shipping_minor", BigInteger, nullable=False),
    Column("handling_minor", BigInteger, nullable=False),
    Column("distance_km", Float, nullable=False),
    Column("weight_g", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_fulfilment_orders_order", "order_id"),
)

routing_decisions = Table(
    "routing_decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("policy", String(32), nullable=False),
    Column("cost_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("explanation", Text, nullable=False),
    Column("detail", JSON, nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("policy_version", Integer),  # the shop's routing policy version used, if any
    Column("experiment_id", Id),  # the A/B experiment that chose the version, if any
    Column("arm", String(1)),  # "A" or "B"
    Index("ix_routing_decisions_experiment", "experiment_id", "order_id"),
    Index("ix_routing_decisions_order", "order_id"),
)

routing_policies = Table(
    "routing_policies",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("status", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Column("document", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime),
    CheckConstraint("status IN ('draft', 'active', 'retired')", name="known_status"),
    # One active version per shop, kept by the database as well as by the use case.
    Index(
        "uq_routing_policies_one_active",
        "shop",
        unique=True,
        sqlite_where=text("status = 'active'"),
        postgresql_where=text("status = 'active'"),
    ),
)

routing_experiments = Table(
    "routing_experiments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shop", String(255), nullable=False),
    Column("arm_a", Integer, nullable=False),  # policy versions of the shop
    Column("arm_b", Integer, nullable=False),
    Column("share_b", Float, nullable=False),  # the share of orders routed with arm B
    Column("status", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),
    CheckConstraint("status IN ('running', 'stopped')", name="known_status"),
    CheckConstraint("share_b > 0 AND share_b < 1", name="share_between_0_and_1"),
    Index(
        "uq_routing_experiments_one_running",
        "shop",
        unique=True,
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("aggregate", String(255), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Index("ix_outbox_pending", "delivered_at", "id"),
)

webhook_inbox = Table(
    "webhook_inbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shop", String(255), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("webhook_id", String(255), nullable=False),
    Column("event_id", String(255)),
    Column("api_version", String(16)),
    Column("triggered_at", String(64)),
    Column("received_at", UTCDateTime, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error_code", String(64)),
    Column("error", Text),
    Column("order_id", Id),
    Column("processed_at", UTCDateTime),
    UniqueConstraint("shop", "webhook_id", name="uq_webhook_inbox_delivery"),
    UniqueConstraint("shop", "topic", "event_id", name="uq_webhook_inbox_event"),
    Index("ix_webhook_inbox_status_id", "status", "id"),
)

# -- delivery promises ----------------------------------------------------------------------

delivery_history = Table(
    "delivery_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("external_id", String(255), unique=True),  # a re-imported row is kept once
    Column("origin_location_id", String(64)),
    Column("origin_region", String(16), nullable=False),
    Column("destination_region", String(16), nullable=False),
    Column("service", String(64), nullable=False),  # "" when the carrier service is unknown
    Column("ordered_at", UTCDateTime, nullable=False),
    Column("shipped_at", UTCDateTime),
    Column("delivered_at", UTCDateTime, nullable=False),
    Column("promised_at", UTCDateTime),  # the promise made at the time, if known
    Column("imported_at", UTCDateTime, nullable=False),
    Index("ix_delivery_history_ordered_at", "ordered_at"),
)

promise_models = Table(
    "promise_models",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("confidence", Float, nullable=False),
    Column("prior_weight", Float, nullable=False),
    Column("half_life_days", Float),
    Column("overall_days", Float, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("history_from", UTCDateTime, nullable=False),
    Column("history_to", UTCDateTime, nullable=False),
    Column("chosen_on_validation", JSON),  # how the parameters were chosen, when tuned
    Column("fitted_at", UTCDateTime, nullable=False),
)

promise_lanes = Table(
    "promise_lanes",
    metadata,
    Column("model_id", Id, ForeignKey("promise_models.id"), primary_key=True),
    Column("level", String(16), primary_key=True),  # lane | route | destination
    Column("origin", String(16), primary_key=True),  # "" for a destination
    Column("destination", String(16), primary_key=True),
    Column("service", String(64), primary_key=True),  # "" for a route or a destination
    Column("samples", Integer, nullable=False),
    Column("days", Float, nullable=False),
)

# -- dashboard: users, their sessions, and the indexes its pages read by ----------------------

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="known_role"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    # The cookie holds a random token; only its SHA-256 is stored, so a copy of the database
    # opens no session.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_web_sessions_user", "user_id"),
)

Index(
    "ix_dashboard_orders_placed",
    orders.c.placed_at,
    orders.c.status,
    orders.c.shipments,
    orders.c.currency,
)
Index("ix_dashboard_orders_name", orders.c.name)
Index("ix_dashboard_outbox_aggregate", outbox.c.aggregate, outbox.c.id)
Index("ix_dashboard_inbox_order", webhook_inbox.c.order_id)
Index("ix_dashboard_fulfilment_created", fulfilment_orders.c.created_at)
Index("ix_dashboard_orders_status_shipments", orders.c.status, orders.c.shipments)
