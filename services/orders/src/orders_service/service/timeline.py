"""The timeline projection: every event of every topic, stored by correlation id and subject.

Only what the saga needs is kept of a payload: admins read it for 90 days, so a secret or the
contact data of another context's event has no place in it. The saga's own topics keep their
payload without its secrets (a 3-D Secure client secret or redirect completes someone's payment);
the other topics' events (auth, users, catalog, notifications: reset tokens, emails, names,
phones) keep only their envelope: type, source, time, subject, correlation and causation.

It sees every event of the platform, so it is built for volume: instead of the inbox table
plus one insert per event, each consumed batch becomes a single multi-row insert whose primary
key (the event id) drops redeliveries. The effect is the same exactly-once projection.

A deleted account's events may still be in this consumer's backlog when its erasure runs (that
is another consumer group): a batch holds the users whose personal fields it carries until it
commits (`repository.erasure.ERASURES`), so an erasure waits for it and then scrubs what it
stored, and a batch after the erasure stores them without those fields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

from shopkit.handlers import EventHandlers
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import REGISTRY, Envelope, Event, topics
from orders_service.repository import timeline
from orders_service.repository.erasure import ERASURES

SAGA_TOPICS: Final = frozenset({topics.ORDERS, topics.INVENTORY, topics.PAYMENTS, topics.SHIPPING})
"""Topics whose payloads the timeline keeps: the steps of the order's saga."""

SECRET_FIELDS: Final = frozenset({"client_secret", "redirect_url", "reset_token"})
"""Fields removed at any depth of a kept payload: each lets its holder act for someone
(`NextAction` of PaymentActionRequired; `reset_token` should a saga event ever carry one)."""

PERSONAL_EVENT_FIELDS: Final = (
    "shipping_address",  # OrderPlaced, OrderConfirmed
    "customer_ip",  # OrderPlaced
    "reason",  # OrderStatusChanged: may be the customer's cancellation note
    "name",  # UserRegistered, UserProfileUpdated
    "email",  # UserRegistered, PasswordResetRequested
    "phone",  # UserProfileUpdated, UserPreferencesChanged
    "reset_token",  # PasswordResetRequested
)
"""Top-level fields of the timeline's recorded events that identify the user: a deleted
account's rows lose them (`service.erasure`), and its events recorded later never store them.
The timeline no longer keeps the payloads of auth and users events (name, email, phone,
reset_token), but rows recorded before that stay for `timeline_retention_days`: the keys stay
here until then."""


def recorded_data(event: Event) -> dict[str, Any]:
    """What the timeline keeps of an event's payload."""
    if event.topic not in SAGA_TOPICS:
        return {}
    kept: dict[str, Any] = _without_secrets(event.model_dump(mode="json"))
    return kept


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_secrets(item) for key, item in value.items() if key not in SECRET_FIELDS
        }
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


def without_personal_fields(data: dict[str, Any]) -> dict[str, Any]:
    """`data` as an erased account's row keeps it: what `repository.erasure.scrub_timeline`
    leaves of a stored row (`data - PERSONAL_EVENT_FIELDS`, top-level keys only)."""
    return {key: value for key, value in data.items() if key not in PERSONAL_EVENT_FIELDS}


def _personal_data_owner(data: dict[str, Any]) -> str | None:
    """The user whose personal fields `data` carries, if any. The saga's events name their user;
    a row without one is never scrubbed (`scrub_timeline` matches `user_id`), so it needs no
    hold either."""
    if not any(key in data for key in PERSONAL_EVENT_FIELDS):
        return None
    user_id = data.get("user_id")
    return user_id if isinstance(user_id, str) else None


class TimelineBatch:
    """One consumed batch: collects the events, writes them on commit."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.rows: list[dict[str, Any]] = []

    async def claim(self, consumer: str, envelopes: Sequence[Envelope[Event]]) -> set[str]:
        return {envelope.id for envelope in envelopes}  # duplicates are dropped by the insert

    def context(self, envelope: Envelope[Event]) -> TimelineBatch:
        return self

    def record(self, envelope: Envelope[Event]) -> None:
        self.rows.append(
            {
                "event_id": envelope.id,
                "correlation_id": envelope.correlation_id,
                "subject": envelope.subject[:200],
                "causation_id": envelope.causation_id,
                "type": envelope.type,
                "source": envelope.source,
                "topic": envelope.topic,
                "time": envelope.time,
                "data": recorded_data(envelope.data),
            }
        )

    async def commit(self) -> None:
        rows = self.rows
        owner_of_row = [_personal_data_owner(row["data"]) for row in rows]
        owners = {owner for owner in owner_of_row if owner}
        if owners:
            # Once per batch, on the hot path of every checkout (each OrderPlaced carries an
            # address): the locks last until the commit below, so an erasure of one of these
            # users waits for it and then scrubs these rows; one that ran before shows here.
            erased = await ERASURES.hold_many(self.session, owners)
            if erased:
                rows = [
                    {**row, "data": without_personal_fields(row["data"])}
                    if owner in erased
                    else row
                    for row, owner in zip(rows, owner_of_row, strict=True)
                ]
        await timeline.add(self.session, rows)
        await self.session.commit()


class TimelineStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[TimelineBatch]:
        async with self.sessionmaker() as session:
            await session.begin()
            try:
                yield TimelineBatch(session)
            finally:
                if session.in_transaction():
                    await session.rollback()


async def _record(envelope: Envelope[Event], batch: TimelineBatch) -> None:
    batch.record(envelope)


def timeline_handlers() -> EventHandlers[TimelineBatch]:
    """Every event type of every platform topic."""
    # Every partition of every topic: one insert for all of them, and a short pause between
    # batches so each carries more events (the timeline may trail the saga by that much).
    handlers: EventHandlers[TimelineBatch] = EventHandlers(
        "timeline", across_partitions=True, linger_seconds=0.2
    )
    for event_type in REGISTRY.values():
        if event_type.topic in topics.ALL:
            handlers.on(event_type)(_record)
    return handlers
