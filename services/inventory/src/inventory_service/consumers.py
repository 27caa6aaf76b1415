"""What inventory reacts to: new products, and the checkout saga's order, payment and shipping
events."""

from __future__ import annotations

from contracts.events.catalog import ProductCreated
from contracts.events.orders import OrderCancelled, OrderConfirmed, OrderPlaced
from contracts.events.payments import PaymentActionRequired, PaymentFailed
from contracts.events.shipping import ShipmentCancelled
from contracts.types import utc_now
from shopkit.handlers import EventHandlers

from contracts import Envelope
from inventory_service import service
from inventory_service.inbox import InventoryContext

# One transaction for what all partitions brought: the handlers only touch the database.
saga: EventHandlers[InventoryContext] = EventHandlers("saga", across_partitions=True)
products: EventHandlers[InventoryContext] = EventHandlers("products", linger_seconds=0.2)


@products.on(ProductCreated)
async def on_product_created(envelope: Envelope[ProductCreated], ctx: InventoryContext) -> None:
    service.record_product(ctx.book, sku=envelope.data.sku, product_id=envelope.data.product_id)


@saga.on(OrderPlaced)
async def on_order_placed(envelope: Envelope[OrderPlaced], ctx: InventoryContext) -> None:
    await ctx.emit(
        *service.reserve(
            ctx.book,
            order_id=envelope.data.order_id,
            lines=[(line.sku, line.quantity) for line in envelope.data.lines],
            policy=ctx.policy,
            now=utc_now(),
            correlation_id=envelope.correlation_id,
            placed_event_id=envelope.id,
        )
    )


@saga.on(OrderConfirmed)
async def on_order_confirmed(envelope: Envelope[OrderConfirmed], ctx: InventoryContext) -> None:
    await ctx.emit(*service.commit(ctx.book, order_id=envelope.data.order_id, now=utc_now()))


@saga.on(OrderCancelled)
async def on_order_cancelled(envelope: Envelope[OrderCancelled], ctx: InventoryContext) -> None:
    await ctx.emit(
        *service.release(
            ctx.book,
            order_id=envelope.data.order_id,
            reason="order_cancelled",
            now=utc_now(),
        )
    )


@saga.on(ShipmentCancelled)
async def on_shipment_cancelled(
    envelope: Envelope[ShipmentCancelled], ctx: InventoryContext
) -> None:
    """Nothing will ship for a cancelled order: its units, committed or still held, go back.
    It may come before this service saw the order confirmed or cancelled (other topics): the
    hold is then released, and neither of those can take the units out again."""
    await ctx.emit(
        *service.release(
            ctx.book,
            order_id=envelope.data.order_id,
            reason="order_cancelled",
            now=utc_now(),
            restock=True,
        )
    )


@saga.on(PaymentFailed)
async def on_payment_failed(envelope: Envelope[PaymentFailed], ctx: InventoryContext) -> None:
    await ctx.emit(
        *service.release(
            ctx.book, order_id=envelope.data.order_id, reason="payment_failed", now=utc_now()
        )
    )


@saga.on(PaymentActionRequired)
async def on_payment_action_required(
    envelope: Envelope[PaymentActionRequired], ctx: InventoryContext
) -> None:
    await ctx.emit(
        *service.extend(ctx.book, order_id=envelope.data.order_id, policy=ctx.policy, now=utc_now())
    )
