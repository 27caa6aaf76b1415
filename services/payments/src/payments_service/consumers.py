"""Payments' consumer: the saga events it reacts to, one handler each."""

from __future__ import annotations

from contracts.events.inventory import StockReserved
from contracts.events.orders import OrderCancelled, OrderPlaced
from contracts.events.shipping import ShipmentDispatched
from contracts.events.users import UserDeletionRequested
from shopkit.handlers import EventHandlers

from contracts import Envelope
from payments_service.runtime import PaymentsContext
from payments_service.service import erasure, saga
from payments_service.service.work import Work

# An order's OrderPlaced and StockReserved arrive on two topics under the same partition
# number: applied in one transaction they no longer wait on each other's order lock (held
# across the provider call), while the six partition numbers still run concurrently.
handlers: EventHandlers[PaymentsContext] = EventHandlers("saga", by_partition_number=True)


def _work(ctx: PaymentsContext) -> Work:
    return Work(session=ctx.session, emit=ctx.emit, payments=ctx.payments)


@handlers.on(OrderPlaced)
async def on_order_placed(envelope: Envelope[OrderPlaced], ctx: PaymentsContext) -> None:
    """Record what the order must be paid (authorized once its stock is reserved)."""
    await saga.order_placed(_work(ctx), event=envelope.data, correlation_id=envelope.correlation_id)


@handlers.on(StockReserved)
async def on_stock_reserved(envelope: Envelope[StockReserved], ctx: PaymentsContext) -> None:
    await saga.stock_reserved(
        _work(ctx), event=envelope.data, correlation_id=envelope.correlation_id
    )


@handlers.on(OrderCancelled)
async def on_order_cancelled(envelope: Envelope[OrderCancelled], ctx: PaymentsContext) -> None:
    await saga.order_cancelled(
        _work(ctx), event=envelope.data, correlation_id=envelope.correlation_id
    )


@handlers.on(ShipmentDispatched)
async def on_shipment_dispatched(
    envelope: Envelope[ShipmentDispatched], ctx: PaymentsContext
) -> None:
    await saga.shipment_dispatched(_work(ctx), event=envelope.data)


# Its own consumer group: deletions are rare and never wait behind a burst of checkouts.
account_handlers: EventHandlers[PaymentsContext] = EventHandlers("accounts")


@account_handlers.on(UserDeletionRequested)
async def on_user_deletion(envelope: Envelope[UserDeletionRequested], ctx: PaymentsContext) -> None:
    await erasure.forget(_work(ctx), user_id=envelope.data.user_id)
