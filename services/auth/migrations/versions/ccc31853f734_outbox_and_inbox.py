"""outbox and inbox

Revision ID: ccc31853f734
Revises:
Create Date: 2026-11-29 01:25:12.724185
"""

from collections.abc import Sequence

from shopkit.migrations import create_messaging_tables, drop_messaging_tables

revision: str = "ccc31853f734"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
