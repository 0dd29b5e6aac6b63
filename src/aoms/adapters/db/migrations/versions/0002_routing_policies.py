"""routing policies: versioned policy documents per shop, A/B experiments between two
versions, the version and arm on each decision, product tags

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
RUNNING = sa.text("status = 'running'")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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
    op.create_table(
        "routing_experiments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("shop", sa.String(length=255), nullable=False),
        sa.Column("arm_a", sa.Integer(), nullable=False),
        sa.Column("arm_b", sa.Integer(), nullable=False),
        sa.Column("share_b", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("stopped_at", UTC, nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'stopped')", name=op.f("ck_routing_experiments_known_status")
        ),
        sa.CheckConstraint(
            "share_b > 0 AND share_b < 1",
            name=op.f("ck_routing_experiments_share_between_0_and_1"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_experiments")),
    )
    op.create_index(
        "uq_routing_experiments_one_running",
        "routing_experiments",
        ["shop"],
        unique=True,
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )
    with op.batch_alter_table("routing_decisions") as batch_op:
        batch_op.add_column(sa.Column("policy_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("experiment_id", ID, nullable=True))
        batch_op.add_column(sa.Column("arm", sa.String(length=1), nullable=True))
        batch_op.create_index(
            "ix_routing_decisions_experiment", ["experiment_id", "order_id"], unique=False
        )
    with op.batch_alter_table("products") as batch_op:
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("products") as batch_op:
        batch_op.drop_column("tags")
    with op.batch_alter_table("routing_decisions") as batch_op:
        batch_op.drop_index("ix_routing_decisions_experiment")
        batch_op.drop_column("arm")
        batch_op.drop_column("experiment_id")
        batch_op.drop_column("policy_version")
    op.drop_index("uq_routing_experiments_one_running", table_name="routing_experiments")
    op.drop_table("routing_experiments")
    op.drop_index("uq_routing_policies_one_active", table_name="routing_policies")
    op.drop_table("routing_policies")
