"""The events that cause messages, and the ones that keep the recipient projection current."""

from __future__ import annotations

from contracts.events.auth import PasswordResetRequested, UserRegistered
from contracts.events.orders import OrderCancelled, OrderConfirmed
from contracts.events.payments import PaymentRefunded
from contracts.events.shipping import ShipmentDelivered, ShipmentDispatched
from contracts.events.users import (
    UserDeletionRequested,
    UserPreferencesChanged,
    UserProfileUpdated,
)
from shopkit.handlers import EventHandlers
from shopkit.inbox import EventContext

from contracts import Envelope
from notifications_service import repository
from notifications_service.service import scheduling

handlers: EventHandlers[EventContext] = EventHandlers("events")


@handlers.on(UserRegistered)
async def on_user_registered(envelope: Envelope[UserRegistered], ctx: EventContext) -> None:
    event = envelope.data
    if await scheduling.registered(
        session=ctx.session,
        user_id=event.user_id,
        email=event.email,
        name=event.name,
        at=event.registered_at,
    ):
        await scheduling.queue(
            session=ctx.session,
            envelope=envelope,
            template="welcome",
            user_id=event.user_id,
            email=event.email,
            context={"name": event.name},
        )


@handlers.on(PasswordResetRequested)
async def on_password_reset(envelope: Envelope[PasswordResetRequested], ctx: EventContext) -> None:
    event = envelope.data
    # The link is built at send time from the storefront URL setting; the token itself is
    # kept only until the delivery ends (or the account is deleted, see `forget`).
    await scheduling.queue(
        session=ctx.session,
        envelope=envelope,
        template="password_reset",
        user_id=event.user_id,
        email=event.email,
        context=scheduling.reset_context(event),
    )


@handlers.on(OrderConfirmed)
async def on_order_confirmed(envelope: Envelope[OrderConfirmed], ctx: EventContext) -> None:
    order = envelope.data
    await repository.remember_order_owner(
        ctx.session, order_id=order.order_id, user_id=order.user_id
    )
    await scheduling.queue(
        session=ctx.session,
        envelope=envelope,
        template="order_confirmed",
        user_id=order.user_id,
        order_id=order.order_id,
        context={
            "order_id": order.order_id,
            "total": order.total,
            "subtotal": order.subtotal,
            "discount": order.discount,
            "shipping": order.shipping,
            "coupon_code": order.coupon_code,
            "currency": order.currency,
            "lines": [
                {"name": line.name, "quantity": line.quantity, "line_total": line.line_total}
                for line in order.lines
            ],
            "carrier": order.shipping_choice.carrier,
            "service": order.shipping_choice.service,
            "estimated_days": order.shipping_choice.estimated_days,
        },
    )


@handlers.on(OrderCancelled)
async def on_order_cancelled(envelope: Envelope[OrderCancelled], ctx: EventContext) -> None:
    event = envelope.data
    await repository.remember_order_owner(
        ctx.session, order_id=event.order_id, user_id=event.user_id
    )
    await scheduling.queue(
        session=ctx.session,
        envelope=envelope,
        template="order_cancelled",
        user_id=event.user_id,
        order_id=event.order_id,
        context={"order_id": event.order_id, "reason": event.reason},
    )


@handlers.on(ShipmentDispatched)
async def on_shipment_dispatched(envelope: Envelope[ShipmentDispatched], ctx: EventContext) -> None:
    event = envelope.data
    await scheduling.queue(
        session=ctx.session,
        envelope=envelope,
        template="order_shipped",
        user_id=event.user_id,
        order_id=event.order_id,
        context={
            "order_id": event.order_id,
            "carrier": event.carrier,
            "tracking_number": event.tracking_number,
        },
    )


@handlers.on(ShipmentDelivered)
async def on_shipment_delivered(envelope: Envelope[ShipmentDelivered], ctx: EventContext) -> None:
    event = envelope.data
    await scheduling.queue(
        session=ctx.session,
        envelope=envelope,
        template="order_delivered",
        user_id=event.user_id,
        order_id=event.order_id,
        context={"order_id": event.order_id, "tracking_number": event.tracking_number},
    )


@handlers.on(PaymentRefunded)
async def on_payment_refunded(envelope: Envelope[PaymentRefunded], ctx: EventContext) -> None:
    event = envelope.data
    # Refunds carry no user id: the owner comes from the order events (now or at send time).
    owner = await repository.order_owner(ctx.session, event.order_id)
    await scheduling.queue(
        session=ctx.session,
        envelope=envelope,
        template="payment_refunded",
        user_id=owner,
        order_id=event.order_id,
        context={
            "order_id": event.order_id,
            "amount": event.amount,
            "currency": event.currency,
            "full": event.full,
        },
    )


@handlers.on(UserProfileUpdated)
async def on_profile_updated(envelope: Envelope[UserProfileUpdated], ctx: EventContext) -> None:
    event = envelope.data
    await scheduling.profile_updated(
        session=ctx.session,
        user_id=event.user_id,
        name=event.name,
        phone=event.phone,
        at=event.updated_at,
    )


@handlers.on(UserPreferencesChanged)
async def on_preferences_changed(
    envelope: Envelope[UserPreferencesChanged], ctx: EventContext
) -> None:
    event = envelope.data
    await scheduling.preferences_changed(
        session=ctx.session,
        user_id=event.user_id,
        channels=list(event.channels),
        language=event.language,
        phone=event.phone,
        at=event.changed_at,
    )


@handlers.on(UserDeletionRequested)
async def on_user_deletion(envelope: Envelope[UserDeletionRequested], ctx: EventContext) -> None:
    await scheduling.forget(session=ctx.session, user_id=envelope.data.user_id)
