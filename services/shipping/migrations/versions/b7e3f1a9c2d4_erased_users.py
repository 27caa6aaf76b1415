"""erased users

Revision ID: b7e3f1a9c2d4
Revises: a3a82b431807
Create Date: 2026-12-06 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op
from shopkit.erasure import create_erased_users_table

revision: str = "b7e3f1a9c2d4"
down_revision: str | None = "a3a82b431807"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_erased_users_table()


def downgrade() -> None:
    op.drop_table("erased_users")
