"""outbox and inbox

Revision ID: 5e36c9a7a040
Revises:
Create Date: 2026-11-29 01:25:25.177442
"""

from collections.abc import Sequence

from shopkit.migrations import create_messaging_tables, drop_messaging_tables

revision: str = "5e36c9a7a040"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
