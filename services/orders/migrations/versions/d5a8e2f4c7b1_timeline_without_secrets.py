"""timeline without secrets

Revision ID: d5a8e2f4c7b1
Revises: c41a7d2e9b10
Create Date: 2026-12-06 11:00:00.000000

The timeline kept every event's whole payload: live password-reset tokens, Stripe client
secrets and every user's contact data. New rows keep only what `service.timeline.recorded_data`
allows; this clears the rows written before, which the 90-day purge would otherwise keep.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "d5a8e2f4c7b1"
down_revision: str | None = "c41a7d2e9b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Topic names may carry a deployment's namespace prefix: saga topics are matched by suffix.
    op.execute(
        "UPDATE timeline_events SET data = '{}'::jsonb WHERE NOT ("
        "topic LIKE '%orders.events' OR topic LIKE '%inventory.events'"
        " OR topic LIKE '%payments.events' OR topic LIKE '%shipping.events')"
    )
    op.execute(
        "UPDATE timeline_events"
        " SET data = data #- '{next_action,client_secret}' #- '{next_action,redirect_url}'"
        " WHERE data ? 'next_action'"
    )


def downgrade() -> None:
    pass  # what was removed is not kept anywhere
