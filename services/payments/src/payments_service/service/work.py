"""What every payments operation runs with, and the rule for provider writes: the request and
its idempotency key are committed before the call, in a transaction of their own, so that a
timeout, a crash or a rolled-back handler is followed by the very same request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from payments_service import repository
from payments_service.models import CallStatus, ProviderCall
from payments_service.provider import PaymentDeclined, RequestRejected
from payments_service.runtime import Emit, Payments

T = TypeVar("T")


@dataclass
class Work:
    """One transaction's worth of payments work: its session, where its events go, and the
    service's dependencies."""

    session: AsyncSession
    emit: Emit
    payments: Payments


@asynccontextmanager
async def detached(payments: Payments) -> AsyncIterator[AsyncSession]:
    """A short transaction of its own, committed on exit whatever the caller's fate."""
    async with payments.sessionmaker() as session, session.begin():
        yield session


async def provider_write(
    work: Work,
    *,
    key: str,
    operation: str,
    order_id: str,
    payment_id: str,
    request: dict[str, Any],
    send: Callable[[dict[str, Any]], Awaitable[T]],
    response_id: Callable[[T], str],
    refund_id: str | None = None,
    committed: ProviderCall | None = None,
) -> T:
    """Persist the call, then send the *recorded* request (a retry resends the first one).

    `committed`: the call's record as read back after it was committed (by whoever recorded
    it), whose request is sent as it is; recording it again would change nothing."""
    if committed is not None:
        assert committed.idempotency_key == key
        recorded = dict(committed.request)
    else:
        async with detached(work.payments) as session:
            call = await repository.record_call(
                session,
                key=key,
                operation=operation,
                order_id=order_id,
                payment_id=payment_id,
                request=request,
                refund_id=refund_id,
            )
            recorded = dict(call.request)
    try:
        result = await send(recorded)
    except (PaymentDeclined, RequestRejected) as exc:
        async with detached(work.payments) as session:
            await repository.finish_call(session, key, status=CallStatus.FAILED, error=str(exc))
        raise
    await repository.finish_call(
        work.session, key, status=CallStatus.SUCCEEDED, response_id=response_id(result)
    )
    return result
