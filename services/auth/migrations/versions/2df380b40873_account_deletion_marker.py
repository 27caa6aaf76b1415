"""account deletion marker

Revision ID: 2df380b40873
Revises: 628f8c6c24cd
Create Date: 2026-11-29 04:45:06.470890

`users.deleted_at`: an account deleted by its owner keeps its row (other services refer to its
id) with placeholders instead of personal data. Nullable, no default: existing rows are live.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2df380b40873"
down_revision: str | None = "628f8c6c24cd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "deleted_at")
