"""outbox and inbox

Revision ID: 6ff72ff1253b
Revises:
Create Date: 2026-11-29 01:25:17.769946
"""

from collections.abc import Sequence

from shopkit.migrations import create_messaging_tables, drop_messaging_tables

revision: str = "6ff72ff1253b"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
