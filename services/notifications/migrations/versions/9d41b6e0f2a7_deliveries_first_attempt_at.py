"""deliveries first_attempt_at

Revision ID: 9d41b6e0f2a7
Revises: 5c2e7a91d4b3
Create Date: 2026-12-06 15:10:00.000000

`deliveries.first_attempt_at`: retries are bounded by the time since the first attempt instead
of by a count. Messages still being retried take the time of their first recorded attempt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d41b6e0f2a7"
down_revision: str | None = "5c2e7a91d4b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "deliveries", sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE deliveries SET first_attempt_at ="
        " (SELECT min(at) FROM delivery_attempts WHERE delivery_id = deliveries.id)"
        " WHERE status IN ('pending', 'sending') AND attempts > 0"
    )


def downgrade() -> None:
    op.drop_column("deliveries", "first_attempt_at")
