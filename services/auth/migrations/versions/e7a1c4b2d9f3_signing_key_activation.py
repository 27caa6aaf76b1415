"""signing key activation

Revision ID: e7a1c4b2d9f3
Revises: 2df380b40873
Create Date: 2026-12-06 07:30:00.000000

`signing_keys.activates_at`: a key made by a routine rotation is published at once but signs
only from this instant, once every replica's JWKS holds it. Nullable: existing keys (and keys
of an emergency rotation) sign from their creation.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7a1c4b2d9f3"
down_revision: str | None = "2df380b40873"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "signing_keys", sa.Column("activates_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("signing_keys", "activates_at")
