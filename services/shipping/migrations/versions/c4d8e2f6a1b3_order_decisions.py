"""order decisions: cancellations and releases that came before the order's shipment

Revision ID: c4d8e2f6a1b3
Revises: b7e3f1a9c2d4
Create Date: 2026-12-13 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4d8e2f6a1b3"
down_revision: str | None = "b7e3f1a9c2d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_decisions",
        sa.Column("order_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("user_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("cancel_reason", sa.String(length=40), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shipment_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_decisions")),
    )


def downgrade() -> None:
    op.drop_table("order_decisions")
