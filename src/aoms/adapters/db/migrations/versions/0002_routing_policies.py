"""routing policies: versioned policy documents per shop, the version on each decision,
product tags

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import aoms.adapters.db.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = aoms.adapters.db.schema.UTCDateTime(timezone=True)
ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table(
        "routing_policies",
        sa.Column("shop", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("activated_at", UTC, nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'retired')",
            name=op.f("ck_routing_policies_known_status"),
        ),
        sa.PrimaryKeyConstraint("shop", "version", name=op.f("pk_routing_policies")),
    )
    op.create_index(
        "uq_routing_policies_one_active",
        "routing_policies",
        ["shop"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    with op.batch_alter_table("routing_decisions") as batch_op:
        batch_op.add_column(sa.Column("policy_version", sa.Integer(), nullable=True))
    with op.batch_alter_table("products") as batch_op:
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("products") as batch_op:
        batch_op.drop_column("tags")
    with op.batch_alter_table("routing_decisions") as batch_op:
        batch_op.drop_column("policy_version")
    op.drop_index("uq_routing_policies_one_active", table_name="routing_policies")
    op.drop_table("routing_policies")
