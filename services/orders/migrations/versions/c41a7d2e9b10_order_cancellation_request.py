"""order cancellation request

Revision ID: c41a7d2e9b10
Revises: b3f1c2a7e5d4
Create Date: 2026-12-06 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c41a7d2e9b10"
down_revision: str | None = "b3f1c2a7e5d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    sa.Column("cancellation_status", sa.String(12), nullable=True),
    sa.Column("cancellation_reason", sa.String(40), nullable=True),
    sa.Column("cancellation_note", sa.String(80), nullable=True),
    sa.Column("cancellation_actor", sa.Uuid(), nullable=True),
    sa.Column("cancellation_requested_at", sa.DateTime(timezone=True), nullable=True),
)


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("orders", column)
    # Stuck-saga detection looks for requests shipping has not answered.
    op.create_index(
        "ix_orders_cancellation_requested",
        "orders",
        ["cancellation_requested_at"],
        postgresql_where=sa.text("cancellation_status = 'requested'"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_cancellation_requested", table_name="orders")
    for column in reversed(_COLUMNS):
        op.drop_column("orders", column.name)
