"""What the orders service reacts to: the saga's events, the catalog's products and deleted
accounts.

One registry (and consumer group) each, so a burst of catalog updates never delays a checkout.
(The timeline projection, which reads every topic, is in service/timeline.py.)
"""

from __future__ import annotations

from contracts.events import catalog, inventory, payments, shipping, users
from fastapi import FastAPI
from shopkit.app import sessionmaker_of
from shopkit.handlers import EventHandlers
from shopkit.inbox import EventContext, PostgresInbox, PostgresInboxTransaction
from shopkit.outbox import Outbox
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event
from orders_service.cache import CartCache
from orders_service.models import messaging
from orders_service.service import catalog as catalog_service
from orders_service.service import erasure, saga
from orders_service.service.transitions import cause_of
from orders_service.session import run_after_commit


class OrdersInboxTransaction(PostgresInboxTransaction):
    """A consumer batch's unit of work that, once committed, runs what its handlers asked to
    follow the commit (`after_commit`, session.py): a cancelled order's coupon use is given back
    in a short transaction of its own, not in the batch's, which holds its locks longer."""

    async def commit(self) -> None:
        await super().commit()
        await run_after_commit(self.session)


def orders_inbox(app: FastAPI) -> PostgresInbox:
    """The PostgreSQL inbox, with the after-commit actions of `OrdersInboxTransaction`."""
    inbox = PostgresInbox(sessionmaker_of(app), messaging)
    inbox.transaction_class = OrdersInboxTransaction
    return inbox


# One transaction for what all partitions brought: the handlers only touch the database.
saga_handlers: EventHandlers[EventContext] = EventHandlers("saga", across_partitions=True)


@saga_handlers.on(inventory.StockReservationFailed)
async def on_stock_reservation_failed(
    envelope: Envelope[inventory.StockReservationFailed], ctx: EventContext
) -> None:
    await saga.on_stock_reservation_failed(session=ctx.session, emit=ctx.emit, envelope=envelope)


@saga_handlers.on(inventory.StockReleased)
async def on_stock_released(envelope: Envelope[inventory.StockReleased], ctx: EventContext) -> None:
    await saga.on_stock_released(session=ctx.session, emit=ctx.emit, envelope=envelope)


@saga_handlers.on(payments.PaymentAuthorized)
async def on_payment_authorized(
    envelope: Envelope[payments.PaymentAuthorized], ctx: EventContext
) -> None:
    await saga.on_payment_authorized(session=ctx.session, emit=ctx.emit, envelope=envelope)


@saga_handlers.on(payments.PaymentActionRequired)
async def on_payment_action_required(
    envelope: Envelope[payments.PaymentActionRequired], ctx: EventContext
) -> None:
    await saga.on_payment_action_required(session=ctx.session, emit=ctx.emit, envelope=envelope)


@saga_handlers.on(payments.PaymentReviewResolved)
async def on_payment_review_resolved(
    envelope: Envelope[payments.PaymentReviewResolved], ctx: EventContext
) -> None:
    await saga.on_payment_review_resolved(session=ctx.session, emit=ctx.emit, envelope=envelope)


@saga_handlers.on(payments.PaymentFailed)
async def on_payment_failed(envelope: Envelope[payments.PaymentFailed], ctx: EventContext) -> None:
    await saga.on_payment_failed(session=ctx.session, emit=ctx.emit, envelope=envelope)


@saga_handlers.on(payments.PaymentCaptured)
async def on_payment_captured(
    envelope: Envelope[payments.PaymentCaptured], ctx: EventContext
) -> None:
    await saga.on_payment_settled(
        session=ctx.session, order_id=envelope.data.order_id, reported="captured"
    )


@saga_handlers.on(payments.PaymentVoided)
async def on_payment_voided(envelope: Envelope[payments.PaymentVoided], ctx: EventContext) -> None:
    await saga.on_payment_voided(session=ctx.session, emit=ctx.emit, envelope=envelope)


@saga_handlers.on(payments.PaymentRefunded)
async def on_payment_refunded(
    envelope: Envelope[payments.PaymentRefunded], ctx: EventContext
) -> None:
    await saga.on_payment_refunded(session=ctx.session, emit=ctx.emit, envelope=envelope)


@saga_handlers.on(shipping.ShipmentDispatched)
async def on_shipment_dispatched(
    envelope: Envelope[shipping.ShipmentDispatched], ctx: EventContext
) -> None:
    await saga.on_shipment_dispatched(session=ctx.session, emit=ctx.emit, envelope=envelope)


@saga_handlers.on(shipping.ShipmentCancelled)
async def on_shipment_cancelled(
    envelope: Envelope[shipping.ShipmentCancelled], ctx: EventContext
) -> None:
    await saga.on_shipment_cancelled(session=ctx.session, emit=ctx.emit, envelope=envelope)


@saga_handlers.on(shipping.ShipmentDelivered)
async def on_shipment_delivered(
    envelope: Envelope[shipping.ShipmentDelivered], ctx: EventContext
) -> None:
    await saga.on_shipment_delivered(session=ctx.session, emit=ctx.emit, envelope=envelope)


# Product updates may reach the projection a moment later: fetched in batches.
catalog_handlers: EventHandlers[EventContext] = EventHandlers(
    "catalog", across_partitions=True, linger_seconds=0.2
)


@catalog_handlers.on(catalog.ProductCreated)
async def on_product_created(envelope: Envelope[catalog.ProductCreated], ctx: EventContext) -> None:
    await catalog_service.apply_snapshot(session=ctx.session, event=envelope.data)


@catalog_handlers.on(catalog.ProductUpdated)
async def on_product_updated(envelope: Envelope[catalog.ProductUpdated], ctx: EventContext) -> None:
    await catalog_service.apply_snapshot(session=ctx.session, event=envelope.data)


@catalog_handlers.on(catalog.PriceChanged)
async def on_price_changed(envelope: Envelope[catalog.PriceChanged], ctx: EventContext) -> None:
    await catalog_service.apply_price_change(session=ctx.session, event=envelope.data)


@catalog_handlers.on(catalog.ProductDeactivated)
async def on_product_deactivated(
    envelope: Envelope[catalog.ProductDeactivated], ctx: EventContext
) -> None:
    await catalog_service.apply_deactivation(session=ctx.session, event=envelope.data)


class AccountContext(EventContext):
    """An event context that also reaches the cart copies in Redis (a deleted cart's goes too)."""

    def __init__(
        self, session: AsyncSession, outbox: Outbox, envelope: Envelope[Event], cache: CartCache
    ) -> None:
        super().__init__(session, outbox, envelope)
        self.cache = cache


def account_inbox(app: FastAPI) -> PostgresInbox:
    """The PostgreSQL inbox, handing `account_handlers` an `AccountContext`."""
    cache: CartCache = app.state.cart_cache

    class AccountInboxTransaction(OrdersInboxTransaction):
        def context(self, envelope: Envelope[Event]) -> AccountContext:
            return AccountContext(self.session, self.outbox, envelope, cache)

    inbox = PostgresInbox(sessionmaker_of(app), messaging)
    inbox.transaction_class = AccountInboxTransaction
    return inbox


account_handlers: EventHandlers[AccountContext] = EventHandlers("accounts")


@account_handlers.on(users.UserDeletionRequested)
async def on_user_deletion(
    envelope: Envelope[users.UserDeletionRequested], ctx: AccountContext
) -> None:
    await erasure.forget_user(
        session=ctx.session,
        cache=ctx.cache,
        emit=ctx.emit,
        cause=cause_of(envelope),
        user_id=envelope.data.user_id,
    )
