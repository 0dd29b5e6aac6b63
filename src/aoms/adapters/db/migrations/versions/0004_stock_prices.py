"""scarcity prices of stock per shop

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 02:45:00
"""

import sqlalchemy as sa
from alembic import op

import aoms.adapters.db.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_prices",
        sa.Column("shop", sa.String(length=255), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("price_minor", sa.Float(), nullable=False),
        sa.Column(
            "computed_at", aoms.adapters.db.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("shop", "location_id", "sku"),
    )
    op.create_table(
        "scarcity_refreshes",
        sa.Column("shop", sa.String(length=255), nullable=False),
        sa.Column(
            "computed_at", aoms.adapters.db.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("shop"),
    )


def downgrade() -> None:
    op.drop_table("scarcity_refreshes")
    op.drop_table("stock_prices")
