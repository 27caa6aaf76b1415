"""What users reacts to: new accounts and the catalog (for wishlists)."""

from __future__ import annotations

from contracts.events.auth import UserRegistered
from contracts.events.catalog import ProductCreated, ProductDeactivated, ProductUpdated
from shopkit.handlers import EventHandlers
from shopkit.inbox import EventContext

from contracts import Envelope
from users_service.service import profiles, wishlist

handlers: EventHandlers[EventContext] = EventHandlers("events")


@handlers.on(UserRegistered)
async def on_user_registered(envelope: Envelope[UserRegistered], ctx: EventContext) -> None:
    await profiles.create_from_registration(session=ctx.session, event=envelope.data)


@handlers.on(ProductCreated)
async def on_product_created(envelope: Envelope[ProductCreated], ctx: EventContext) -> None:
    await wishlist.project(session=ctx.session, event=envelope.data)


@handlers.on(ProductUpdated)
async def on_product_updated(envelope: Envelope[ProductUpdated], ctx: EventContext) -> None:
    await wishlist.project(session=ctx.session, event=envelope.data)


@handlers.on(ProductDeactivated)
async def on_product_deactivated(envelope: Envelope[ProductDeactivated], ctx: EventContext) -> None:
    await wishlist.deactivate(session=ctx.session, event=envelope.data)
