"""From domain events to queued deliveries, and the projection of who gets them and how.

Handlers only queue: each (source event, channel) gets one `deliveries` row whose unique key
is claimed in the same transaction as the consumer's inbox row. Sending happens later, in the
dispatcher, so a slow or failing provider never blocks or replays the event stream.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event, new_id
from notifications_service import repository
from notifications_service.models import Recipient
from notifications_service.rendering import has_sms

DEFAULT_CHANNELS = ("email",)

ALWAYS_EMAIL = frozenset({"welcome", "password_reset"})
"""Account messages go to the address on the event whatever the channel preferences."""


def channels_for(template: str, recipient: Recipient | None) -> list[str]:
    if template in ALWAYS_EMAIL:
        return ["email"]
    chosen = (
        list(recipient.channels)
        if recipient and recipient.channels is not None
        else list(DEFAULT_CHANNELS)
    )
    return [c for c in chosen if c == "email" or (c == "sms" and has_sms(template))]


async def queue(
    *,
    session: AsyncSession,
    envelope: Envelope[Event],
    template: str,
    user_id: str | None,
    context: dict[str, Any],
    email: str | None = None,
    order_id: str | None = None,
) -> list[str]:
    """Queue the messages an event causes; returns the channels newly queued."""
    # Locked (and created if we never heard of the user), as `forget` locks it: an erasure
    # running concurrently (its event comes from another topic) either commits first, and is
    # seen here, or waits for this transaction and then blanks the rows it queued.
    recipient = await repository.ensure_recipient(session, user_id) if user_id else None
    if recipient is not None and recipient.deleted_at is not None:
        return []
    now = datetime.now(UTC)
    queued = []
    for channel in channels_for(template, recipient):
        fresh = await repository.insert_delivery(
            session,
            {
                "id": new_id(),
                "user_id": user_id,
                "order_id": order_id,
                "source_event_id": envelope.id,
                "source_type": envelope.type,
                "template": template,
                "channel": channel,
                "address": email if channel == "email" else None,
                "language": None,
                "context": context,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )
        if fresh:
            queued.append(channel)
    return queued


async def registered(
    *, session: AsyncSession, user_id: str, email: str, name: str, at: datetime
) -> bool:
    """Record a new account's contact; False if the account was already deleted."""
    recipient = await repository.ensure_recipient(session, user_id)
    if recipient.deleted_at is not None:
        return False
    recipient.email = email
    if recipient.profile_at is None or recipient.profile_at <= at:
        recipient.name = name
    return True


async def profile_updated(
    *, session: AsyncSession, user_id: str, name: str, phone: str | None, at: datetime
) -> None:
    recipient = await repository.ensure_recipient(session, user_id)
    if recipient.deleted_at is not None or (recipient.profile_at and recipient.profile_at > at):
        return
    recipient.name = name
    recipient.phone = phone
    recipient.profile_at = at


async def preferences_changed(
    *,
    session: AsyncSession,
    user_id: str,
    channels: list[str],
    language: str,
    phone: str | None,
    at: datetime,
) -> None:
    recipient = await repository.ensure_recipient(session, user_id)
    if recipient.deleted_at is not None:
        return
    if recipient.preferences_at is not None and recipient.preferences_at >= at:
        return  # an older change arriving late
    recipient.channels = list(dict.fromkeys(channels))
    recipient.language = language
    if phone is not None:
        recipient.phone = phone
    recipient.preferences_at = at


async def forget(*, session: AsyncSession, user_id: str) -> None:
    """Account deletion: keep an empty tombstone (so late events don't recreate the contact)
    and strip the delivery log of addresses and message contents."""
    now = datetime.now(UTC)
    recipient = await repository.ensure_recipient(session, user_id)
    recipient.email = None
    recipient.name = None
    recipient.phone = None
    recipient.channels = []
    recipient.deleted_at = recipient.deleted_at or now
    await repository.forget_user_deliveries(session, user_id=user_id, now=now)
