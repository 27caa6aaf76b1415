"""login attempt email and time indexes

Revision ID: 5b8e3f0a6c21
Revises: e7a1c4b2d9f3
Create Date: 2026-12-06 14:00:00.000000

Account deletion also deletes the attempts on the account's address that name no account
(`email`), and housekeeping purges attempts past their retention (`at`): both without a scan
of the whole table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5b8e3f0a6c21"
down_revision: str | None = "e7a1c4b2d9f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_login_attempts_email", "login_attempts", ["email"])
    op.create_index("ix_login_attempts_at", "login_attempts", ["at"])


def downgrade() -> None:
    op.drop_index("ix_login_attempts_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_email", table_name="login_attempts")
