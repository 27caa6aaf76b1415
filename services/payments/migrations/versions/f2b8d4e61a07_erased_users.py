"""erased users

Revision ID: f2b8d4e61a07
Revises: 41990237ea03
Create Date: 2026-12-06 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op
from shopkit.erasure import create_erased_users_table

revision: str = "f2b8d4e61a07"
down_revision: str | None = "41990237ea03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_erased_users_table()


def downgrade() -> None:
    op.drop_table("erased_users")
