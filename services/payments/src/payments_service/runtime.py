"""What the payments service's handlers, routes and background jobs share: the provider, the
risk engine, the database, and a way to emit events in the caller's transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from redis.asyncio import Redis
from shopkit.app import sessionmaker_of
from shopkit.inbox import EventContext, PostgresInbox, PostgresInboxTransaction
from shopkit.messaging import MessagingTables
from shopkit.outbox import Outbox
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Envelope, Event
from payments_service.config import PaymentsSettings
from payments_service.models import messaging
from payments_service.provider import PaymentProvider
from payments_service.risk import RiskEngine
from payments_service.stripe_provider import StripeProvider

Emit = Callable[..., Awaitable[None]]
"""`await emit(*events)`: writes events to the outbox of the caller's transaction."""


@dataclass
class Payments:
    settings: PaymentsSettings
    provider: PaymentProvider
    risk: RiskEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    webhooks_waiting: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a webhook was stored, so the processor does not wait for its next poll."""


def build_provider(settings: PaymentsSettings) -> PaymentProvider:
    return StripeProvider(
        api_key=settings.stripe_api_key.get_secret_value(),
        api_base=settings.stripe_api_base,
        webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
        webhook_tolerance=settings.stripe_webhook_tolerance_seconds,
        timeout=settings.stripe_timeout_seconds,
        max_network_retries=settings.stripe_max_network_retries,
    )


async def start(app: FastAPI) -> None:
    settings: PaymentsSettings = app.state.settings
    redis: Redis = app.state.redis
    app.state.payments = Payments(
        settings=settings,
        provider=build_provider(settings),
        risk=RiskEngine(redis, settings),
        sessionmaker=sessionmaker_of(app),
    )


async def stop(app: FastAPI) -> None:
    payments: Payments | None = getattr(app.state, "payments", None)
    if payments is not None:
        await payments.provider.close()


async def payments_of(request: Request) -> Payments:
    payments: Payments = request.app.state.payments
    return payments


PaymentsDep = Annotated[Payments, Depends(payments_of)]


def outbox_emitter(
    session: AsyncSession, *, correlation_id: str | None, causation_id: str | None
) -> Emit:
    """An emitter for work that no Kafka event caused (webhooks, admin requests, sweeps):
    the events continue the order's flow through its stored correlation id."""
    outbox = Outbox(session, messaging.outbox)

    async def emit(*events: Event) -> None:
        await outbox.add(
            *(
                Envelope(data=event, correlation_id=correlation_id or "", causation_id=causation_id)
                for event in events
            )
        )

    return emit


class PaymentsContext(EventContext):
    """A handler's unit of work plus the service's dependencies."""

    def __init__(self, base: EventContext, payments: Payments) -> None:
        super().__init__(base.session, base.outbox, base.envelope)
        self.payments = payments


class _Transaction(PostgresInboxTransaction):
    def __init__(self, session: AsyncSession, tables: MessagingTables, payments: Payments) -> None:
        super().__init__(session, tables)
        self.payments = payments

    def context(self, envelope: Envelope[Event]) -> PaymentsContext:
        return PaymentsContext(super().context(envelope), self.payments)


class PaymentsInbox(PostgresInbox):
    """The PostgreSQL inbox, handing handlers a `PaymentsContext`."""

    def __init__(self, payments: Payments) -> None:
        super().__init__(payments.sessionmaker, messaging)
        self.payments = payments

    def open_transaction(self, session: AsyncSession) -> _Transaction:
        return _Transaction(session, self.tables, self.payments)


def inbox_for(app: FastAPI) -> PaymentsInbox:
    return PaymentsInbox(app.state.payments)
