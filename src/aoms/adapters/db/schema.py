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
    # shipping: packed size of one unit, and its customs data
    Column("length_mm", Integer),
    Column("width_mm", Integer),
    Column("height_mm", Integer),
    Column("hs_code", String(16)),
    Column("country_of_origin", String(2)),
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
    # A key of the channel's lines as it last sent them: it tells a change the channel made to
    # the lines from aoms's own edit (services.orders.receive_order); NULL before 0011.
    Column("channel_key", String(64)),
    Column("shipping_method", String(255)),  # the shipping line's code or title
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

# -- scarcity prices (opportunity costs of stock, per shop) --------------------------------------
stock_prices = Table(
    "stock_prices",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("location_id", String(64), primary_key=True),
    Column("sku", String(255), primary_key=True),
    Column("price_minor", Float, nullable=False),  # minor units per unit taken from there
    Column("computed_at", UTCDateTime, nullable=False),
)

scarcity_refreshes = Table(
    "scarcity_refreshes",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("report", JSON, nullable=False),
)

# -- warehouse / 3PL hand-off ---------------------------------------------------------------

tpl_connections = Table(
    "tpl_connections",
    metadata,
    Column("location_id", String(64), ForeignKey("locations.id"), primary_key=True),
    Column("kind", String(8), nullable=False),  # rest | file
    Column("base_url", String(512)),  # rest: where fulfilment requests are POSTed
    Column("secret", String(255), nullable=False),  # HMAC key of both directions
    Column("directory", String(1024)),  # file: the location's drop directory
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('rest', 'file')", name="known_kind"),
)

fulfilment_order_lines = Table(
    "fulfilment_order_lines",
    metadata,
    Column("fo_id", Id, ForeignKey("fulfilment_orders.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(255), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("shipped", Integer, nullable=False),
    Column("closed", Integer, nullable=False),  # cancelled, or rejected and routed elsewhere
    CheckConstraint("shipped >= 0 AND closed >= 0", name="counts_not_negative"),
    CheckConstraint("shipped + closed <= quantity", name="within_quantity"),
)

fulfilment_handoffs = Table(
    "fulfilment_handoffs",
    metadata,
    Column("fo_id", Id, ForeignKey("fulfilment_orders.id"), primary_key=True),
    Column("location_id", String(64), nullable=False),
    Column("attempts", Integer, nullable=False),  # deliveries of the request tried
    Column("delivered_at", UTCDateTime),  # the 3PL acknowledged the request
    Column("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("external_ref", String(255)),  # the 3PL's own reference, when it gives one
    Column("reject_reason", String(32)),
    Column("reject_note", Text),
    Column("cancel_from", String(16)),  # the state a cancel request was made from
    Column("cancel_attempts", Integer, nullable=False),
    Column("cancel_delivered_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_fulfilment_handoffs_pending", "delivered_at", "fo_id"),
)

fulfilment_shipments = Table(
    "fulfilment_shipments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("fo_id", Id, ForeignKey("fulfilment_orders.id"), nullable=False),
    Column("shipment_ref", String(255), nullable=False),  # the 3PL's id of the shipment
    Column("location_id", String(64), nullable=False),  # where it actually left from
    Column("items", JSON, nullable=False),
    Column("tracking_number", String(255)),
    Column("carrier", String(64)),
    Column("tracking_url", String(1024)),
    Column("shipped_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("fo_id", "shipment_ref", name="uq_fulfilment_shipments_ref"),
)

tpl_messages = Table(
    "tpl_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("location_id", String(64), nullable=False),
    Column("message_id", String(255), nullable=False),  # callback event id, or file digest
    Column("kind", String(32), nullable=False),
    Column("outcome", JSON, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("location_id", "message_id", name="uq_tpl_messages_once"),
)

# -- returns, refunds and payments ----------------------------------------------------------

order_payments = Table(
    "order_payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("method", String(64), nullable=False),  # gateway, e.g. gift_card, shopify_payments
    Column("captured_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("external_id", String(64)),  # the channel's transaction id, if known
    Column("source", String(16), nullable=False),  # channel | default
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("captured_minor >= 0", name="captured_not_negative"),
    Index("ix_order_payments_order", "order_id"),
)

order_deliveries = Table(
    "order_deliveries",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id"), primary_key=True),
    Column("fulfilled_at", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    Column("source", String(32), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

return_policies = Table(
    "return_policies",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

returns = Table(
    "returns",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("shop", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decision", String(16), nullable=False),  # approve | reject | review
    Column("decision_reasons", JSON, nullable=False),
    Column("policy", JSON, nullable=False),  # the policy as it was when the return was opened
    Column("customer_tags", JSON, nullable=False),
    Column("refund_to", String(16), nullable=False),
    Column("refund_shipping", Boolean, nullable=False),
    Column("fees_waived", Boolean, nullable=False),
    Column("carrier", String(32)),
    Column("tracking_number", String(64), unique=True),
    Column("label", Text),
    Column("location_id", String(64)),  # where it was received
    Column("refund_id", Id),
    Column("exchange", JSON),  # the replacement asked for, its price and its order
    Column("exchange_order_id", Id),
    Column("exchange_deadline", UTCDateTime),
    Column("exchange_status", String(16)),  # open | returned | overdue (the replacement is due)
    Column("external_id", String(64)),  # Shopify's return id, when it came from Shopify
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("shop", "external_id", name="uq_returns_external"),
    Index("ix_returns_order", "order_id"),
    Index("ix_returns_status", "status", "id"),
)

return_items = Table(
    "return_items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("return_id", Id, ForeignKey("returns.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(255), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("has_photos", Boolean, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    Index("ix_return_items_return", "return_id"),
)

return_dispositions = Table(
    "return_dispositions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("return_id", Id, ForeignKey("returns.id"), nullable=False),
    Column("item_id", Id, ForeignKey("return_items.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("disposition", String(16), nullable=False),  # restock | refurbish | dispose
    Column("location_id", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    Index("ix_return_dispositions_return", "return_id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("return_id", Id),
    Column("source", String(16), nullable=False),  # aoms | shopify (made in Shopify's admin)
    Column("destination", String(16), nullable=False),  # original | store_credit
    Column("currency", String(3), nullable=False),
    Column("items_minor", BigInteger, nullable=False),
    Column("shipping_minor", BigInteger, nullable=False),
    Column("shipping_tax_minor", BigInteger, nullable=False),
    Column("fees_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("bonus_minor", BigInteger, nullable=False),  # store credit given on top
    Column("exchange_minor", BigInteger, nullable=False),  # kept for an exchange's replacement
    Column("detail", JSON, nullable=False),  # fees and the explanation, as shown
    Column("idempotency_key", String(255), unique=True),
    Column("external_id", String(64)),  # Shopify's refund id once pushed or received
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("order_id", "external_id", name="uq_refunds_external"),
    Index("ix_refunds_order", "order_id"),
)

refund_lines = Table(
    "refund_lines",
    metadata,
    Column("refund_id", Id, ForeignKey("refunds.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("units", Integer, nullable=False),
    Column("goods_minor", BigInteger, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    Column("restock_location_id", String(64)),
)

refund_payments = Table(
    "refund_payments",
    metadata,
    Column("refund_id", Id, ForeignKey("refunds.id"), primary_key=True),
    Column("payment_id", Id, ForeignKey("order_payments.id"), primary_key=True),
    Column("amount_minor", BigInteger, nullable=False),
    CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
)

# -- shipping: boxes, ship-from addresses, rules, shipments, parcels, quotes, tracking ---------

shipping_boxes = Table(
    "shipping_boxes",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("length_mm", Integer, nullable=False),
    Column("width_mm", Integer, nullable=False),
    Column("height_mm", Integer, nullable=False),
    Column("max_grams", Integer, nullable=False),
    Column("tare_grams", Integer, nullable=False),
    Column("fill_pct", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
)

shipping_origins = Table(
    "shipping_origins",
    metadata,
    Column("location_id", String(64), ForeignKey("locations.id"), primary_key=True),
    Column("address", JSON, nullable=False),  # street, city, state, zip, country, phone, ...
)

shipping_rules = Table(
    "shipping_rules",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("rule", String(32), nullable=False),
    Column("min_on_time", Float, nullable=False),
    Column("cost_cap_minor", BigInteger),
    Column("currency", String(3)),
    Column("duties", String(3), nullable=False),
    Column("label_format", String(8), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

shipments = Table(
    "shipments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("fulfilment_order_id", Id, ForeignKey("fulfilment_orders.id"), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("status", String(16), nullable=False),  # planned | labelled | voided
    Column("rule", JSON, nullable=False),  # the rule the choice was made by
    Column("ship_on", UTCDateTime, nullable=False),
    Column("deliver_by", UTCDateTime),
    Column("currency", String(3), nullable=False),
    Column("customs", JSON),  # the commercial invoice, for an international shipment
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_shipments_fulfilment_order", "fulfilment_order_id"),
)

parcels = Table(
    "parcels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shipment_id", Id, ForeignKey("shipments.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("box", String(64)),
    Column("length_mm", Integer, nullable=False),
    Column("width_mm", Integer, nullable=False),
    Column("height_mm", Integer, nullable=False),
    Column("grams", Integer, nullable=False),
    Column("items", JSON, nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("service", String(64), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # the chosen quote
    Column("currency", String(3), nullable=False),
    Column("promised_days", Integer, nullable=False),
    Column("quote_ref", JSON, nullable=False),
    Column("adapter", String(64), nullable=False),  # which configured carrier adapter quoted it
    Column("tracking_number", String(64), unique=True),
    Column("label_id", String(128)),
    Column("label_format", String(8)),
    Column("label", LargeBinary),
    Column("label_url", Text),
    Column("status", String(32), nullable=False),  # planned | label_created | ... | voided
    Column("status_at", UTCDateTime),
    Column("shipped_at", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    Column("voided_at", UTCDateTime),
    Column("late_at", UTCDateTime),  # when it was found past its promise date undelivered
    UniqueConstraint("shipment_id", "seq", name="uq_parcels_shipment_seq"),
)

shipment_quotes = Table(
    "shipment_quotes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("parcel_id", Id, ForeignKey("parcels.id"), nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("service", String(64), nullable=False),
    Column("amount_minor", BigInteger),
    Column("currency", String(3)),
    Column("days", Integer),
    Column("on_time_rate", Float),
    Column("chosen", Boolean, nullable=False),
    Column("reason", Text),  # why it was chosen, or why it lost; a carrier's failure
    Index("ix_shipment_quotes_parcel", "parcel_id"),
)

tracking_events = Table(
    "tracking_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("parcel_id", Id, ForeignKey("parcels.id"), nullable=False),
    Column("source", String(32), nullable=False),  # easypost | shippo | poll
    Column("provider_status", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("description", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("parcel_id", "provider_status", "occurred_at", name="uq_tracking_events_once"),
)

# -- order lifecycle: holds, fraud decisions, store settings, the ledger ----------------------

# Units of each order line that have left a warehouse (written by shipment confirmations).
order_lines.append_column(Column("shipped_qty", Integer, nullable=False, server_default="0"))

# An order's history is read from its events: by aggregate, in id order.
Index("ix_outbox_aggregate_id", outbox.c.aggregate, outbox.c.id)

holds = Table(
    "holds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("resolved_by", String(255)),
    Column("note", Text),
    CheckConstraint("status IN ('open', 'released', 'cancelled')", name="known_status"),
    Index("ix_holds_status_id", "status", "id"),
    Index("ix_holds_order", "order_id", "status"),
)

order_lifecycle = Table(
    "order_lifecycle",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id"), primary_key=True),
    Column("released_at", UTCDateTime),  # when it was released for fulfilment, if it was
    Column("customer_key", String(255)),  # for velocity: the channel's customer, or e-mail
    Column("address_key", String(64)),  # for velocity: a digest of the shipping address
    Column("billing_country", String(2)),
    Column("placed_at", UTCDateTime, nullable=False),
    Index("ix_order_lifecycle_customer", "customer_key", "placed_at"),
    Index("ix_order_lifecycle_address", "address_key", "placed_at"),
)

fraud_decisions = Table(
    "fraud_decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("score", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("signals", JSON, nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Index("ix_fraud_decisions_order", "order_id", "id"),
)

shop_lifecycle_settings = Table(
    "shop_lifecycle_settings",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("settings", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    # The position in the chain, given by the writer (not the database) under the ledger lock:
    # a second writer with the same position fails on the key instead of forking the chain.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("ref", String(255)),  # e.g. "stock_movement:17", "order:4"
    Column("body", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_ledger_entries_ref", "ref"),
)

# -- Shopify sync ---------------------------------------------------------------------------

shopify_stores = Table(
    "shopify_stores",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("ats_buffer", Integer, nullable=False),  # units held back from each SKU's ATS
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("ats_buffer >= 0", name="ats_buffer_not_negative"),
)

shopify_locations = Table(
    "shopify_locations",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("location_id", String(64), ForeignKey("locations.id"), primary_key=True),
    Column("location_gid", String(255), nullable=False),  # gid://shopify/Location/…
    UniqueConstraint("shop", "location_gid", name="uq_shopify_locations_gid"),
)

shopify_inventory_items = Table(
    "shopify_inventory_items",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("sku", String(255), primary_key=True),
    Column("inventory_item_gid", String(255), nullable=False),  # gid://shopify/InventoryItem/…
    UniqueConstraint("shop", "inventory_item_gid", name="uq_shopify_inventory_items_gid"),
)

shopify_inventory_known = Table(
    "shopify_inventory_known",
    metadata,
    Column("shop", String(255), primary_key=True),
    Column("sku", String(255), primary_key=True),
    Column("location_id", String(64), primary_key=True),
    Column("available", Integer, nullable=False),  # what Shopify holds, as last pushed or read
    Column("known_at", UTCDateTime, nullable=False),
)

# What aoms tells Shopify of its orders (services.shopify_pushes): queued by the event relay,
# once per event and kind, sent one order's pushes at a time, oldest first.
shopify_pushes = Table(
    "shopify_pushes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shop", String(255), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # fulfilment | hold | release
    Column("source", String(64), nullable=False),  # event:<outbox id>
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sending | done | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime),  # a sender's lease while sending
    Column("last_error", Text),
    Column("result", JSON),  # what Shopify holds after it: fulfillment ids, holds, …
    Column("created_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime),
    UniqueConstraint("source", "kind", name="uq_shopify_pushes_source"),
    CheckConstraint("status IN ('pending', 'sending', 'done', 'failed')", name="known_status"),
    Index("ix_shopify_pushes_status", "status", "next_attempt_at"),
    Index("ix_shopify_pushes_order", "order_id", "id"),
)

# Fulfillments the channel told aoms of (fulfillments/create, /update): each takes its units
# once, however many times it is delivered or updated.
channel_fulfilments = Table(
    "channel_fulfilments",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id"), primary_key=True),
    Column("external_id", String(64), primary_key=True),
    Column("recorded_at", UTCDateTime, nullable=False),
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
Index("ix_dashboard_inbox_order", webhook_inbox.c.order_id)
Index("ix_dashboard_fulfilment_created", fulfilment_orders.c.created_at)
Index("ix_dashboard_orders_status_shipments", orders.c.status, orders.c.shipments)
