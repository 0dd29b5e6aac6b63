"""shopify pushes: fulfilments, holds and tags told to Shopify; the channel's fulfilments
seen; the channel's lines key and the order's shipping method

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 05:00:00
"""

import sqlalchemy as sa
from alembic import op

import aoms.adapters.db.schema

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = aoms.adapters.db.schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shopify_pushes",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("shop", sa.String(length=255), nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=False),
        sa.Column("claimed_until", UTC, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("done_at", UTC, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'done', 'failed')",
            name=op.f("ck_shopify_pushes_known_status"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_shopify_pushes_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shopify_pushes")),
        sa.UniqueConstraint("source", "kind", name="uq_shopify_pushes_source"),
    )
    op.create_index("ix_shopify_pushes_status", "shopify_pushes", ["status", "next_attempt_at"])
    op.create_index("ix_shopify_pushes_order", "shopify_pushes", ["order_id", "id"])
    op.create_table(
        "channel_fulfilments",
        sa.Column("order_id", ID, nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_channel_fulfilments_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", "external_id", name=op.f("pk_channel_fulfilments")),
    )
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("channel_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("shipping_method", sa.String(length=255), nullable=True))


def downgrade() -> None:
    op.drop_table("channel_fulfilments")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("shipping_method")
        batch.drop_column("channel_key")
    op.drop_index("ix_shopify_pushes_order", table_name="shopify_pushes")
    op.drop_index("ix_shopify_pushes_status", table_name="shopify_pushes")
    op.drop_table("shopify_pushes")
