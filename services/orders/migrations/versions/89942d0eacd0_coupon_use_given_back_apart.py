"""coupon use given back apart

Revision ID: 89942d0eacd0
Revises: d5a8e2f4c7b1
Create Date: 2026-12-08 10:00:00.000000

A cancellation used to subtract its coupon use in its own transaction, which for the saga is a
whole batch: the coupon row stayed locked while the batch went on to lock other orders. Now the
cancellation only marks its redemption (`return_due_at`) and the use goes back in a short
transaction after the commit (`repository.coupons.give_back_uses`).

Redemptions released before this revision had their use subtracted already: they keep
`return_due_at` empty, which means nothing is due. So do those released by pods still on the
previous release while this one rolls out (migrations run first, and they give the use back at
once): the mark is set only by the new release, never inferred from `released_at`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "89942d0eacd0"
down_revision: str | None = "d5a8e2f4c7b1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "coupon_redemptions",
        sa.Column("return_due_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_coupon_redemptions_return_due",
        "coupon_redemptions",
        ["coupon_id"],
        unique=False,
        postgresql_where=sa.text("return_due_at IS NOT NULL"),
    )


def downgrade() -> None:
    # The previous release gives a use back within the cancellation and has no give-back of
    # its own: what is still due goes back now, or it would stay taken for good.
    op.execute(
        "UPDATE coupons SET uses = coupons.uses - due.uses"
        " FROM (SELECT coupon_id, count(*) AS uses FROM coupon_redemptions"
        " WHERE return_due_at IS NOT NULL GROUP BY coupon_id) AS due"
        " WHERE coupons.id = due.coupon_id"
    )
    op.drop_index(
        "ix_coupon_redemptions_return_due",
        table_name="coupon_redemptions",
        postgresql_where=sa.text("return_due_at IS NOT NULL"),
    )
    op.drop_column("coupon_redemptions", "return_due_at")
