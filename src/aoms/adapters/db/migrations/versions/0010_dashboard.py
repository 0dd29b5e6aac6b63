"""dashboard: users, web sessions, indexes for the dashboard's pages

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 02:10:00
"""

import sqlalchemy as sa
from alembic import op

import aoms.adapters.db.schema

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = aoms.adapters.db.schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("disabled_at", UTC, nullable=True),
        sa.CheckConstraint(
            "role IN ('viewer', 'operator', 'admin')", name=op.f("ck_users_known_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user_id"], unique=False)
    op.create_index(
        "ix_dashboard_orders_placed",
        "orders",
        ["placed_at", "status", "shipments", "currency"],
        unique=False,
    )
    op.create_index("ix_dashboard_orders_name", "orders", ["name"], unique=False)
    op.create_index("ix_dashboard_inbox_order", "webhook_inbox", ["order_id"], unique=False)
    op.create_index(
        "ix_dashboard_fulfilment_created", "fulfilment_orders", ["created_at"], unique=False
    )
    op.create_index(
        "ix_dashboard_orders_status_shipments", "orders", ["status", "shipments"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_dashboard_orders_status_shipments", table_name="orders")
    op.drop_index("ix_dashboard_fulfilment_created", table_name="fulfilment_orders")
    op.drop_index("ix_dashboard_inbox_order", table_name="webhook_inbox")
    op.drop_index("ix_dashboard_orders_name", table_name="orders")
    op.drop_index("ix_dashboard_orders_placed", table_name="orders")
    op.drop_index("ix_web_sessions_user", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("users")
