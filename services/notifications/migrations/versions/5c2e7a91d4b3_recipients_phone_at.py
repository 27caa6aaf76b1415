"""recipients phone_at

Revision ID: 5c2e7a91d4b3
Revises: 0a6b6eacbc0c
Create Date: 2026-12-06 15:00:00.000000

`recipients.phone_at`: the time of the event the phone came from, so that a preferences change
applied late no longer puts back a phone a newer profile update removed. Existing rows get the
newest time that could have set their phone: a preference change never clears it, so an empty
phone came from the profile.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c2e7a91d4b3"
down_revision: str | None = "0a6b6eacbc0c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("recipients", sa.Column("phone_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE recipients SET phone_at = CASE WHEN phone IS NULL THEN profile_at"
        " ELSE GREATEST(profile_at, preferences_at) END"
    )


def downgrade() -> None:
    op.drop_column("recipients", "phone_at")
