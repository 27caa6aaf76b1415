"""The recipients projection ends the same whatever order the users service's events arrive in
(a replay, a restored backup, a consumer group reset)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest
from notifications_service.models import Recipient
from notifications_service.service import scheduling
from shopkit.app import sessionmaker_of
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import new_id

from .conftest import Running

PHONE = "+5511987654321"
Apply = Callable[[AsyncSession, str], Awaitable[None]]


def profile(phone: str | None, at: datetime) -> Apply:
    async def apply(session: AsyncSession, user_id: str) -> None:
        await scheduling.profile_updated(
            session=session, user_id=user_id, name="Ana", phone=phone, at=at
        )

    return apply


def preferences(phone: str | None, at: datetime) -> Apply:
    """A preferences change, carrying the phone the profile had at that time."""

    async def apply(session: AsyncSession, user_id: str) -> None:
        await scheduling.preferences_changed(
            session=session,
            user_id=user_id,
            channels=["email"],
            language="pt-BR",
            phone=phone,
            at=at,
        )

    return apply


T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
T1, T2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("history", "phone"),
    [
        # The user adds a phone, changes preferences, then removes the phone.
        ([profile(PHONE, T0), preferences(PHONE, T1), profile(None, T2)], None),
        # Only the preferences change tells of the phone (its profile event is not here).
        ([profile(None, T0), preferences(PHONE, T2)], PHONE),
        # A phone replaced after the preferences change.
        ([preferences(PHONE, T0), profile("+5511911112222", T1)], "+5511911112222"),
    ],
)
async def test_the_phone_ends_the_same_in_any_order(
    quiet: Running, history: list[Apply], phone: str | None
) -> None:
    """A preferences change applied late put back the phone a later profile update removed:
    only the preferences' own time was compared, never the time the phone was set."""
    sessionmaker = sessionmaker_of(quiet.app)
    for order in permutations(history):
        user_id = new_id()
        for event in order:
            async with sessionmaker() as session, session.begin():
                await event(session, user_id)
        async with sessionmaker() as session:
            recipient = await session.get(Recipient, user_id)
        assert recipient is not None
        assert recipient.phone == phone, [history.index(e) for e in order]
