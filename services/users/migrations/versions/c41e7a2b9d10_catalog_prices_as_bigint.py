"""catalog projection prices as bigint

Prices are integer minor units without an upper bound in the contract (orders and payments
store them as bigint); an int4 column parked every product above R$ 21,474,836.47 in the DLQ.

Revision ID: c41e7a2b9d10
Revises: 81db6dd4cc4d
Create Date: 2026-11-29 06:02:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c41e7a2b9d10"
down_revision: str | None = "81db6dd4cc4d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("catalog_products", "price", type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    op.alter_column("catalog_products", "price", type_=sa.Integer(), existing_type=sa.BigInteger())
