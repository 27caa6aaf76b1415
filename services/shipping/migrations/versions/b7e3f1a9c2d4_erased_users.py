"""erased users

Revision ID: b7e3f1a9c2d4
Revises: a3a82b431807
Create Date: 2026-12-06 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e3f1a9c2d4"
down_revision: str | None = "a3a82b431807"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erased_users",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_erased_users")),
    )


def downgrade() -> None:
    op.drop_table("erased_users")
