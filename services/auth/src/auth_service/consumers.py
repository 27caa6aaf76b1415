"""What auth reacts to: a user deleting their account."""

from __future__ import annotations

from contracts.events.users import UserDeletionRequested
from shopkit.handlers import EventHandlers

from auth_service.inbox import AuthEventContext
from auth_service.service import accounts
from contracts import Envelope

handlers: EventHandlers[AuthEventContext] = EventHandlers("events")


@handlers.on(UserDeletionRequested)
async def on_user_deletion(
    envelope: Envelope[UserDeletionRequested], ctx: AuthEventContext
) -> None:
    await accounts.delete_account(ctx.session, rt=ctx.rt, user_id=envelope.data.user_id)
