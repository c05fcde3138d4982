"""pos api: rewards, PIN challenges, reward coupons, stored answers of synchronous paths

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 04:57:48.474024
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rewards",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("points_cost", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("required_tier", sa.Text(), nullable=True),
        sa.Column("icon", sa.Text(), nullable=True),
        sa.Column("validity_days", sa.Integer(), server_default="30", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_rewards_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
    )
    op.create_index("ix_rewards_org_id_active", "rewards", ["org_id", "active"], unique=False)
    op.create_table(
        "pin_challenges",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("pin_hash", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("expires_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_pin_challenges_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_pin_challenges_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_challenges")),
        sa.UniqueConstraint("seq", name=op.f("uq_pin_challenges_seq")),
    )
    op.create_index(
        "ix_pin_challenges_customer_id_action",
        "pin_challenges",
        ["customer_id", "action", "seq"],
        unique=False,
    )
    op.add_column("coupons", sa.Column("reward_id", sa.UUID(), nullable=True))
    op.create_index(op.f("ix_coupons_reward_id"), "coupons", ["reward_id"], unique=False)
    op.create_foreign_key(
        op.f("fk_coupons_reward_id_rewards"),
        "coupons",
        "rewards",
        ["reward_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column(
        "transactions", sa.Column("request", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "transactions",
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("transactions", "response")
    op.drop_column("transactions", "request")
    op.drop_constraint(op.f("fk_coupons_reward_id_rewards"), "coupons", type_="foreignkey")
    op.drop_index(op.f("ix_coupons_reward_id"), table_name="coupons")
    op.drop_column("coupons", "reward_id")
    op.drop_index("ix_pin_challenges_customer_id_action", table_name="pin_challenges")
    op.drop_table("pin_challenges")
    op.drop_index("ix_rewards_org_id_active", table_name="rewards")
    op.drop_table("rewards")
