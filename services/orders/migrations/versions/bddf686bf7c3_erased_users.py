"""erased users

Revision ID: bddf686bf7c3
Revises: 89942d0eacd0
Create Date: 2026-12-09 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op
from shopkit.erasure import create_erased_users_table

revision: str = "bddf686bf7c3"
down_revision: str | None = "89942d0eacd0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_erased_users_table()


def downgrade() -> None:
    op.drop_table("erased_users")
