"""Every query of the payments service.

Reads that must see what other transactions committed (a row just locked, an attempt recorded
by a detached transaction) reload their objects (`populate_existing`). Sessions do not
autoflush, so pending changes are flushed first: a reload must never discard them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from shopkit.db import insert_new, table_of
from shopkit.erasure import ErasureGuard
from sqlalchemy import DateTime, Update, bindparam, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from payments_service.models import (
    AttemptStatus,
    CallStatus,
    ErasedUser,
    PaymentAttempt,
    PaymentOrder,
    ProviderCall,
    Refund,
    ReviewStatus,
    StripeEvent,
)

# The statements every checkout runs are built once, with bound parameters: building one costs
# about as much CPU as sending it. Those that want no mapped object back run on the tables.
_ATTEMPTS = table_of(PaymentAttempt)
_CALLS = table_of(ProviderCall)
_STRIPE_EVENTS = table_of(StripeEvent)

# One round trip: an existing row is "updated" to what it holds, which takes the same lock as
# SELECT ... FOR NO KEY UPDATE (no key column is set) and lets RETURNING give the row whether it
# was just inserted or already there.
_LOCK_ORDER = (
    insert(PaymentOrder)
    .values(order_id=bindparam("order_id"))
    .on_conflict_do_update(
        index_elements=[PaymentOrder.order_id],
        set_={PaymentOrder.updated_at: PaymentOrder.updated_at},
    )
    .returning(PaymentOrder)
    .execution_options(populate_existing=True)
)
_ATTEMPTS_OF = (
    select(PaymentAttempt)
    .where(PaymentAttempt.order_id == bindparam("order_id"))
    .order_by(PaymentAttempt.number)
    .execution_options(populate_existing=True)
)
_ATTEMPT = (
    select(PaymentAttempt)
    .where(PaymentAttempt.id == bindparam("payment_id"))
    .execution_options(populate_existing=True)
)
_ATTEMPT_BY_INTENT = (
    select(PaymentAttempt)
    .where(PaymentAttempt.provider_payment_id == bindparam("intent_id"))
    .execution_options(populate_existing=True)
)
_ATTEMPT_PROGRESS = select(
    PaymentAttempt.id,
    PaymentAttempt.user_id,
    PaymentAttempt.status,
    PaymentAttempt.provider_event_at,
).where(PaymentAttempt.provider_payment_id == bindparam("intent_id"))
_AT = bindparam("at", type_=DateTime(timezone=True))
_NOTE_PROVIDER_EVENT = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("payment_id"))
    .values(provider_event_at=func.greatest(func.coalesce(_ATTEMPTS.c.provider_event_at, _AT), _AT))
)

# -------------------------------------------------------------------------------- orders


async def lock_order(session: AsyncSession, order_id: str) -> PaymentOrder:
    """The order's row, created if new, locked until the transaction ends: every change to one
    order's payments (events, webhooks, admin actions) runs one at a time."""
    await session.flush()
    order = await session.scalar(_LOCK_ORDER, {"order_id": order_id})
    assert order is not None
    return order


# ----------------------------------------------------------------------------- erased accounts

ERASURES = ErasureGuard(ErasedUser, lock_space=0x504159)  # "PAY"
"""`ERASURES.hold(session, user_id)` before storing a user's personal data (see
`shopkit.erasure`); `ERASURES.remember` when the account is deleted."""

REMOVED_PAYLOAD: dict[str, Any] = {"removed": True}
"""What replaces a stored provider event's payload once the account it concerns is erased."""


async def scrub_user(session: AsyncSession, user_id: str, *, removed: str) -> None:
    """Remove what identifies the user from their payments; amounts, ids, statuses and the
    card's brand and last four digits stay (accounting, refunds, disputes)."""
    orders = select(PaymentOrder.order_id).where(PaymentOrder.user_id == user_id)
    await session.execute(
        update(PaymentOrder)
        .where(PaymentOrder.user_id == user_id)
        .values(customer_ip=None, shipping_country=None)
    )
    await session.execute(
        update(PaymentAttempt)
        .where(PaymentAttempt.order_id.in_(orders))
        .values(
            card_fingerprint=None,
            card_country=None,
            risk_reasons=[],
            review_note=case((PaymentAttempt.review_note.is_(None), None), else_=removed),
        )
    )
    # The provider's copies of the intents (billing details may ride along) once applied; one
    # still to apply keeps what it needs until it is.
    intents = select(PaymentAttempt.provider_payment_id).where(PaymentAttempt.order_id.in_(orders))
    await session.execute(
        update(StripeEvent)
        .where(StripeEvent.payment_intent_id.in_(intents), StripeEvent.processed_at.is_not(None))
        .values(payload=REMOVED_PAYLOAD)
    )


async def lock_existing_order(
    session: AsyncSession, order_id: str, *, skip_locked: bool = False
) -> PaymentOrder | None:
    await session.flush()
    return await session.scalar(
        select(PaymentOrder)
        .where(PaymentOrder.order_id == order_id)
        .with_for_update(key_share=True, skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    )


async def get_order(session: AsyncSession, order_id: str) -> PaymentOrder | None:
    return await session.get(PaymentOrder, order_id)


async def orders_of_user(session: AsyncSession, user_id: str) -> list[PaymentOrder]:
    """The orders payments knows to be the user's (from OrderPlaced), oldest first."""
    rows = await session.scalars(
        select(PaymentOrder).where(PaymentOrder.user_id == user_id).order_by(PaymentOrder.order_id)
    )
    return list(rows)


# -------------------------------------------------------------------------------- attempts


async def attempts_of_orders(session: AsyncSession, order_ids: list[str]) -> list[PaymentAttempt]:
    if not order_ids:
        return []
    rows = await session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.order_id.in_(order_ids))
        .order_by(PaymentAttempt.order_id, PaymentAttempt.number)
    )
    return list(rows)


async def attempts_of(session: AsyncSession, order_id: str) -> list[PaymentAttempt]:
    await session.flush()
    return list(await session.scalars(_ATTEMPTS_OF, {"order_id": order_id}))


async def get_attempt(session: AsyncSession, payment_id: str) -> PaymentAttempt | None:
    await session.flush()
    return await session.scalar(_ATTEMPT, {"payment_id": payment_id})


async def attempt_by_intent(session: AsyncSession, intent_id: str) -> PaymentAttempt | None:
    await session.flush()
    return await session.scalar(_ATTEMPT_BY_INTENT, {"intent_id": intent_id})


@dataclass(frozen=True, slots=True)
class AttemptProgress:
    id: str
    user_id: str
    status: AttemptStatus
    provider_event_at: datetime | None


async def attempt_progress(session: AsyncSession, intent_id: str) -> AttemptProgress | None:
    """Where the attempt of an intent stands, read without locking anything."""
    row = (await session.execute(_ATTEMPT_PROGRESS, {"intent_id": intent_id})).first()
    if row is None:
        return None
    return AttemptProgress(
        id=str(row.id),
        user_id=str(row.user_id),
        status=AttemptStatus(row.status),
        provider_event_at=row.provider_event_at,
    )


async def note_provider_event(session: AsyncSession, payment_id: str, *, at: datetime) -> None:
    """The attempt heard from the provider as of `at` (never moved back)."""
    await session.execute(_NOTE_PROVIDER_EVENT, {"payment_id": payment_id, "at": at})


async def insert_attempt(session: AsyncSession, attempt: PaymentAttempt) -> None:
    session.add(attempt)
    await session.flush()


async def record_attempt(session: AsyncSession, attempt: PaymentAttempt) -> None:
    """Insert a new attempt for a transaction that only records it: the object stays out of
    the session."""
    await insert_new(session, attempt)


async def attempts_in_window(
    session: AsyncSession, *, since: datetime, until: datetime
) -> list[PaymentAttempt]:
    rows = await session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.created_at >= since, PaymentAttempt.created_at < until)
        .order_by(PaymentAttempt.created_at)
    )
    return list(rows)


async def attempts_to_sweep(
    session: AsyncSession,
    *,
    pending_before: datetime,
    action_before: datetime,
    authorized_before: datetime,
    limit: int,
) -> list[tuple[str, str]]:
    """(order id, payment id) of attempts waiting on the provider or the customer, and of
    authorizations old enough to be captured before they lapse (of orders still going ahead,
    not under review nor rejected by one)."""
    order_goes_ahead = (
        select(PaymentOrder.order_id)
        .where(PaymentOrder.order_id == PaymentAttempt.order_id)
        .where(PaymentOrder.cancelled_at.is_(None))
        .exists()
    )
    rows = await session.execute(
        select(PaymentAttempt.order_id, PaymentAttempt.id)
        .where(
            or_(
                (PaymentAttempt.status == AttemptStatus.PENDING)
                & (PaymentAttempt.updated_at < pending_before),
                (PaymentAttempt.status == AttemptStatus.REQUIRES_ACTION)
                & (PaymentAttempt.updated_at < action_before),
                (PaymentAttempt.status == AttemptStatus.AUTHORIZED)
                & (PaymentAttempt.authorized_at < authorized_before)
                & PaymentAttempt.review_status.in_((ReviewStatus.NONE, ReviewStatus.APPROVED))
                & order_goes_ahead,
            )
        )
        .order_by(PaymentAttempt.updated_at)
        .limit(limit)
    )
    return [(str(order_id), str(payment_id)) for order_id, payment_id in rows.all()]


async def touch_attempt(session: AsyncSession, payment_id: str) -> None:
    """Mark an attempt as just checked, so sweeps go round the others first."""
    await session.execute(
        update(PaymentAttempt).where(PaymentAttempt.id == payment_id).values(updated_at=func.now())
    )


async def reviews(
    session: AsyncSession, *, status: ReviewStatus | None, limit: int, before: str | None
) -> list[PaymentAttempt]:
    query = select(PaymentAttempt).where(PaymentAttempt.review_status != ReviewStatus.NONE)
    if status is not None:
        query = query.where(PaymentAttempt.review_status == status)
    if before is not None:
        query = query.where(PaymentAttempt.id < before)
    rows = await session.scalars(query.order_by(PaymentAttempt.id.desc()).limit(limit))
    return list(rows)


# -------------------------------------------------------------------------------- provider calls


_new_call = insert(ProviderCall).values(
    idempotency_key=bindparam("key"),
    operation=bindparam("operation"),
    order_id=bindparam("order_id"),
    payment_id=bindparam("payment_id"),
    refund_id=bindparam("refund_id"),
    request=bindparam("request"),
    status=CallStatus.PENDING,
    attempts=0,
)
_INSERT_NEW_CALL = _new_call.returning(ProviderCall)
_INSERT_CALL_UNLESS_RECORDED = (
    _new_call.on_conflict_do_nothing(index_elements=[ProviderCall.idempotency_key])
    .returning(ProviderCall)
    .execution_options(populate_existing=True)
)


async def record_call(
    session: AsyncSession,
    *,
    key: str,
    operation: str,
    order_id: str,
    payment_id: str,
    request: dict[str, Any],
    refund_id: str | None = None,
    new_key: bool = False,
) -> ProviderCall:
    """Record a provider write before sending it; an existing record (a retry) is returned
    unchanged, so the retry sends exactly what the first try sent.

    `new_key`: the key names something created in this transaction (a new attempt), so no call
    can have been recorded under it, and it is inserted without looking first."""
    values = {
        "key": key,
        "operation": operation,
        "order_id": order_id,
        "payment_id": payment_id,
        "refund_id": refund_id,
        "request": request,
    }
    await session.flush()
    if new_key:
        created: ProviderCall | None = await session.scalar(_INSERT_NEW_CALL, values)
        assert created is not None
        return created
    # Read first: a retry inside a transaction that already updated this row must not queue
    # behind its own row lock (the insert below would wait for it).
    call = await get_call(session, key)
    if call is not None:
        return call
    inserted = await session.scalar(_INSERT_CALL_UNLESS_RECORDED, values)
    if inserted is not None:
        return inserted
    call = await get_call(session, key)  # recorded concurrently by another transaction
    assert call is not None
    return call


async def refused_calls(
    session: AsyncSession, *, order_id: str, payment_id: str, operation: str
) -> int:
    """How many of an attempt's calls of one kind the provider refused (recorded as failed)."""
    await session.flush()
    count = await session.scalar(
        select(func.count())
        .select_from(ProviderCall)
        .where(
            ProviderCall.order_id == order_id,  # indexed
            ProviderCall.payment_id == payment_id,
            ProviderCall.operation == operation,
            ProviderCall.status == CallStatus.FAILED,
        )
    )
    return int(count or 0)


async def get_call(session: AsyncSession, key: str) -> ProviderCall | None:
    await session.flush()
    return await session.get(ProviderCall, key, populate_existing=True)


@cache
def _finish_call_statement(*, done: bool, only_pending: bool) -> Update:
    statement = (
        update(_CALLS)
        .where(_CALLS.c.idempotency_key == bindparam("key"))
        .values(
            status=bindparam("status"),
            response_id=bindparam("response_id"),
            last_error=bindparam("error"),
            attempts=_CALLS.c.attempts + 1,
            completed_at=func.now() if done else None,
        )
    )
    if only_pending:
        statement = statement.where(_CALLS.c.status == CallStatus.PENDING)
    return statement


async def finish_call(
    session: AsyncSession,
    key: str,
    *,
    status: CallStatus,
    response_id: str | None = None,
    error: str | None = None,
    only_pending: bool = False,
) -> None:
    await session.execute(
        _finish_call_statement(done=status != CallStatus.PENDING, only_pending=only_pending),
        {"key": key, "status": status, "response_id": response_id, "error": error},
    )


# -------------------------------------------------------------------------------- refunds


async def refunds_of_order(session: AsyncSession, order_id: str) -> list[Refund]:
    rows = await session.scalars(
        select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at, Refund.id)
    )
    return list(rows)


async def refunds_of_orders(session: AsyncSession, order_ids: list[str]) -> list[Refund]:
    if not order_ids:
        return []
    rows = await session.scalars(
        select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.created_at, Refund.id)
    )
    return list(rows)


async def refunds_of_attempt(session: AsyncSession, payment_id: str) -> list[Refund]:
    await session.flush()
    rows = await session.scalars(
        select(Refund)
        .where(Refund.payment_id == payment_id)
        .order_by(Refund.created_at, Refund.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def refund_by_request_key(
    session: AsyncSession, order_id: str, request_key: str
) -> Refund | None:
    await session.flush()
    return await session.scalar(
        select(Refund)
        .where(Refund.order_id == order_id, Refund.request_key == request_key)
        .execution_options(populate_existing=True)
    )


async def insert_refund(session: AsyncSession, refund: Refund) -> None:
    session.add(refund)
    await session.flush()


# -------------------------------------------------------------------------------- webhook inbox


@cache
def _store_webhook_statement(columns: frozenset[str]) -> ReturningInsert[str]:
    """Built once per set of columns given. Each is a named value, so a name no column takes
    fails to compile instead of being dropped, as a parameter of execute() would be."""
    return (
        insert(_STRIPE_EVENTS)
        .values({name: bindparam(name) for name in sorted(columns)})
        .on_conflict_do_nothing(index_elements=[_STRIPE_EVENTS.c.event_id])
        .returning(_STRIPE_EVENTS.c.event_id)
    )


async def store_webhook(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store a provider event once; False when its id was stored before (a replay)."""
    result = await session.execute(_store_webhook_statement(frozenset(values)), values)
    return result.scalar_one_or_none() is not None


async def next_webhook(session: AsyncSession, now: datetime) -> StripeEvent | None:
    """The oldest unprocessed event nobody else is processing."""
    return await session.scalar(
        select(StripeEvent)
        .where(
            StripeEvent.processed_at.is_(None),
            or_(StripeEvent.next_attempt_at.is_(None), StripeEvent.next_attempt_at <= now),
        )
        .order_by(StripeEvent.provider_created_at, StripeEvent.seq)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
