"""housekeeping indexes for sessions and resets

Revision ID: 9c4d2e7f1a35
Revises: 5b8e3f0a6c21
Create Date: 2026-12-06 17:00:00.000000

Housekeeping deletes the sessions that expired or were revoked long enough ago
(`refresh_families.expires_at`, `revoked_at`; their tokens are found by the existing
`family_id` index) and the reset links past their expiry (`password_resets.expires_at`):
without these, every round would scan the whole tables.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9c4d2e7f1a35"
down_revision: str | None = "5b8e3f0a6c21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_refresh_families_expires_at", "refresh_families", ["expires_at"])
    op.create_index("ix_refresh_families_revoked_at", "refresh_families", ["revoked_at"])
    op.create_index("ix_password_resets_expires_at", "password_resets", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_password_resets_expires_at", table_name="password_resets")
    op.drop_index("ix_refresh_families_revoked_at", table_name="refresh_families")
    op.drop_index("ix_refresh_families_expires_at", table_name="refresh_families")
