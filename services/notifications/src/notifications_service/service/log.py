"""The delivery log: the caller's messages, the admin view, data export, deliberate resends."""

from __future__ import annotations

from datetime import UTC, datetime

from shopkit.security import Principal
from sqlalchemy.ext.asyncio import AsyncSession

from notifications_service import repository
from notifications_service.errors import (
    DeliveryNotFoundError,
    DeliveryNotRetryableError,
    ResetLinkGoneError,
)
from notifications_service.models import Delivery, DeliveryAttempt
from notifications_service.schemas import (
    AttemptPublic,
    ContactPublic,
    DeliveryAdmin,
    DeliveryAdminList,
    DeliveryList,
    DeliveryPublic,
    NotificationsExport,
)
from notifications_service.service import scheduling


def _public(delivery: Delivery) -> DeliveryPublic:
    return DeliveryPublic(
        id=delivery.id,
        template=delivery.template,
        channel=delivery.channel,
        status=delivery.status,
        sent_at=delivery.sent_at,
        event_id=delivery.source_event_id,
        created_at=delivery.created_at,
        attempts=delivery.attempts,
    )


def _admin(delivery: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryAdmin:
    return DeliveryAdmin(
        **_public(delivery).model_dump(),
        user_id=delivery.user_id,
        source_type=delivery.source_type,
        address=delivery.address,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        provider_message_id=delivery.provider_message_id,
        history=[
            AttemptPublic(attempt=a.attempt, outcome=a.outcome, error=a.error, at=a.at)
            for a in attempts
        ],
    )


async def mine(
    *, session: AsyncSession, principal: Principal, limit: int, cursor: str | None
) -> DeliveryList:
    rows = await repository.deliveries_of_user(
        session, principal.user_id, limit=limit + 1, before=cursor
    )
    page = rows[:limit]
    return DeliveryList(
        items=[_public(d) for d in page], next_cursor=page[-1].id if len(rows) > limit else None
    )


async def admin_list(
    *,
    session: AsyncSession,
    user_id: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> DeliveryAdminList:
    rows = await repository.deliveries(
        session, user_id=user_id, status=status, limit=limit + 1, before=cursor
    )
    page = rows[:limit]
    attempts = await repository.attempts_of(session, [d.id for d in page])
    return DeliveryAdminList(
        items=[_admin(d, attempts[d.id]) for d in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


async def resend(*, session: AsyncSession, delivery_id: str) -> DeliveryAdmin:
    """An admin's deliberate decision to send a failed or in-doubt message again."""
    delivery = await repository.get_delivery(session, delivery_id, for_update=True)
    if delivery is None:
        raise DeliveryNotFoundError(f"no delivery {delivery_id}")
    if delivery.status not in ("failed", "uncertain"):
        raise DeliveryNotRetryableError(f"delivery is {delivery.status}")
    now = datetime.now(UTC)
    if delivery.template == "password_reset" and not scheduling.reset_link_works(
        delivery.context, now
    ):
        # Its token goes when the delivery ends, and it expires soon anyway: sending it again
        # would mail a dead link. The user asks for a new one, which is a new message.
        raise ResetLinkGoneError(f"delivery {delivery_id} no longer holds a working reset link")
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.first_attempt_at = None  # a new window of retries, from the next attempt
    delivery.updated_at = now
    attempts = await repository.attempts_of(session, [delivery.id])
    return _admin(delivery, attempts[delivery.id])


async def export(*, session: AsyncSession, principal: Principal) -> NotificationsExport:
    recipient = await repository.recipient(session, principal.user_id)
    rows = await repository.deliveries_of_user(session, principal.user_id, limit=100_000)
    attempts = await repository.attempts_of(session, [d.id for d in rows])
    contact = None
    if recipient is not None:
        contact = ContactPublic(
            email=recipient.email,
            name=recipient.name,
            phone=recipient.phone,
            language=recipient.language,
            channels=recipient.channels,
        )
    return NotificationsExport(
        user_id=principal.user_id,
        contact=contact,
        deliveries=[_admin(d, attempts[d.id]) for d in rows],
    )
