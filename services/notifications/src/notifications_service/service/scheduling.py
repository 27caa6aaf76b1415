"""From domain events to queued deliveries, and the projection of who gets them and how.

Handlers only queue: each (source event, channel) gets one `deliveries` row whose unique key
is claimed in the same transaction as the consumer's inbox row. Sending happens later, in the
dispatcher, so a slow or failing provider never blocks or replays the event stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from contracts.events.auth import PasswordResetRequested
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event, new_id
from notifications_service import repository
from notifications_service.models import Delivery, Recipient
from notifications_service.rendering import has_sms

DEFAULT_CHANNELS = ("email",)

ALWAYS_EMAIL = frozenset({"welcome", "password_reset"})
"""Account messages go to the address on the event whatever the channel preferences."""


RESET_EXPIRY_FORMAT = "%Y-%m-%d %H:%M UTC"
"""A reset link's expiry as the message shows it, and as it is kept with the delivery."""


def reset_context(event: PasswordResetRequested) -> dict[str, Any]:
    """What a password reset message needs. The token is its only secret: it is dropped as soon
    as the delivery ends, whatever the outcome."""
    return {
        "reset_token": event.reset_token,
        "expires_at": event.expires_at.strftime(RESET_EXPIRY_FORMAT),
    }


def reset_link_works(context: Mapping[str, Any], now: datetime) -> bool:
    """Whether a reset message would still carry a working link: the token is still there and
    the expiry the message states has not passed."""
    if not context.get("reset_token"):
        return False
    try:
        expires_at = datetime.strptime(str(context.get("expires_at")), RESET_EXPIRY_FORMAT)
    except ValueError:
        return False  # an expiry we cannot read is one we cannot promise the user
    return now < expires_at.replace(tzinfo=UTC)


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
    queued = []
    for channel in channels_for(template, recipient):
        fresh = await _insert(
            session,
            source_event_id=envelope.id,
            source_type=envelope.type,
            template=template,
            channel=channel,
            user_id=user_id,
            order_id=order_id,
            address=email if channel == "email" else None,
            context=context,
        )
        if fresh:
            queued.append(channel)
    return queued


async def queue_owners_channels(
    session: AsyncSession, delivery: Delivery, recipient: Recipient
) -> list[str]:
    """Queue the channels the owner wants besides `delivery`'s, for a message queued before its
    owner was known (a refund read before its order's events): that one went to the default
    channel only, and a customer who wants SMS alone got no notice at all. Once per channel:
    the (event, channel) key makes a second call a no-op."""
    queued = []
    for channel in channels_for(delivery.template, recipient):
        if channel == delivery.channel:
            continue
        fresh = await _insert(
            session,
            source_event_id=delivery.source_event_id,
            source_type=delivery.source_type,
            template=delivery.template,
            channel=channel,
            user_id=recipient.user_id,
            order_id=delivery.order_id,
            address=None,
            context=delivery.context,
        )
        if fresh:
            queued.append(channel)
    return queued


async def _insert(
    session: AsyncSession,
    *,
    source_event_id: str,
    source_type: str,
    template: str,
    channel: str,
    user_id: str | None,
    order_id: str | None,
    address: str | None,
    context: dict[str, Any],
) -> bool:
    now = datetime.now(UTC)
    return await repository.insert_delivery(
        session,
        {
            "id": new_id(),
            "user_id": user_id,
            "order_id": order_id,
            "source_event_id": source_event_id,
            "source_type": source_type,
            "template": template,
            "channel": channel,
            "address": address,
            "language": None,
            "context": context,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )


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
    if recipient.deleted_at is not None:
        return
    if recipient.profile_at is None or recipient.profile_at <= at:
        recipient.name = name
        recipient.profile_at = at
    # At the same time as a preference change, the profile wins: the phone is its field, and
    # the outcome must not depend on which of the two arrived first.
    if recipient.phone_at is None or recipient.phone_at <= at:
        recipient.phone = phone
        recipient.phone_at = at


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
    # The phone the profile had when the preferences changed: what it is now only if no
    # profile update (or preference change) after that time has been applied already. Decided
    # apart from the preferences, whose own order says nothing about the phone's.
    if phone is not None and (recipient.phone_at is None or recipient.phone_at < at):
        recipient.phone = phone
        recipient.phone_at = at
    if recipient.preferences_at is not None and recipient.preferences_at >= at:
        return  # an older change arriving late
    recipient.channels = list(dict.fromkeys(channels))
    recipient.language = language
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
