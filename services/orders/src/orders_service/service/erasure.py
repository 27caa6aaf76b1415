"""Account deletion: what the orders service keeps of a deleted user, and what it forgets.

Orders are accounting records: ids, lines, amounts, coupon, statuses, history and the payment
references stay (tax and refunds need them, and `user_id` is an opaque id). What identifies the
person goes: the recipient and street of the address snapshot, the IP the order came from, the
notes they typed when cancelling, the cart, the checkout responses kept for Idempotency-Key
retries, and the same fields in the timeline's copies of their events. The account is
recorded as erased first: its events the timeline records later keep none of these fields
(`repository.erasure.ERASURES`).

Every step is a no-op the second time (orders carry `anonymised_at`, the rest is deleted or
replaced by constants), so a redelivered or re-emitted deletion changes nothing, and a user
this service never saw has nothing to change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from shopkit.privacy import anonymised_address
from sqlalchemy.ext.asyncio import AsyncSession

from orders_service.cache import CartCache, CartOwner
from orders_service.repository import erasure, orders
from orders_service.service.timeline import PERSONAL_EVENT_FIELDS
from orders_service.service.transitions import Cause, Emit, cancel_or_request
from orders_service.state import CUSTOMER_CANCELLABLE, as_status

ACCOUNT_DELETED: Final = "account_deleted"
"""Why the orders a deleted account still had on their way were cancelled."""

CANCEL_NOTE: Final = "customer_request"
"""What a customer's own cancellation note becomes: the reason recorded when there is none."""

TOMBSTONE_SECONDS: Final = 300
"""How long the empty copy of a deleted cart stays in Redis: longer than any read in flight."""


async def forget_user(
    *, session: AsyncSession, cache: CartCache, emit: Emit, cause: Cause, user_id: str
) -> int:
    """Cancel what the user can no longer receive, anonymise their orders and delete their
    cart; returns how many orders were anonymised."""
    now = datetime.now(UTC)
    # First, committed on its own: a timeline batch holding the user is waited for (and is
    # scrubbed below), one after it stores the user's events without their personal fields.
    await erasure.ERASURES.remember(session, user_id, now)
    to_anonymise = await erasure.orders_to_anonymise(session, user_id)
    for order in to_anonymise:
        await _stop_fulfilment(session, emit, order.id, cause)
    for order in to_anonymise:
        await erasure.anonymise_order(
            session,
            order.id,
            shipping_address=anonymised_address(order.shipping_address),
            now=now,
        )
    # Every order of the user, not only those changed now: a re-emitted deletion also reaches
    # what the timeline recorded after the first one.
    order_ids = await erasure.order_ids_of(session, user_id)
    await erasure.replace_own_notes(
        session, user_id=user_id, order_ids=order_ids, reason=CANCEL_NOTE
    )
    await erasure.delete_idempotency_keys(session, user_id)
    await erasure.scrub_timeline(
        session, user_id=user_id, order_ids=order_ids, keys=PERSONAL_EVENT_FIELDS
    )
    for version in await erasure.delete_carts(session, user_id):
        # Before the commit, raising on a Redis failure: the deletion is then retried as a
        # whole. (After the commit, the inbox would drop the retry and leave the copy behind.)
        await cache.bury(
            CartOwner.of_user(user_id), deleted_version=version, ttl_seconds=TOMBSTONE_SECONDS
        )
    return len(to_anonymise)


async def _stop_fulfilment(session: AsyncSession, emit: Emit, order_id: str, cause: Cause) -> None:
    """An order still on its way to the customer goes no further: its address is about to be
    erased, so nothing could be delivered, and the customer can no longer cancel it. Not yet
    confirmed: cancelled now (payments voids, inventory releases); confirmed: its cancellation
    is asked of shipping, as the customer's own would be (a parcel already gone still ships)."""
    order = await orders.lock(session, order_id)
    if order is None:
        return
    if as_status(order.status) in CUSTOMER_CANCELLABLE:
        await cancel_or_request(
            session,
            emit,
            order,
            reason="customer_request",
            note=ACCOUNT_DELETED,
            cause=cause,
            actor=order.user_id,
        )
