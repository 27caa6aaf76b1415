"""Housekeeping: login attempts are kept for `login_attempt_retention_days`, then purged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from auth_service import jobs
from shopkit.testing import eventually

from contracts import new_id

from .conftest import AuthStack, new_email, random_ip


async def _attempt(auth_stack: AuthStack, *, at: datetime) -> str:
    """A failed attempt on an address with no account, recorded at `at`; returns its email."""
    email = new_email()
    await auth_stack.db.execute(
        "INSERT INTO login_attempts (id, user_id, email, ip, user_agent, outcome, at) "
        "VALUES ($1, NULL, $2, $3, 'auth-tests/1.0', 'unknown_account', $4)",
        new_id(),
        email,
        random_ip(),
        at,
    )
    return email


async def test_login_attempts_older_than_the_retention_are_purged(auth_stack: AuthStack) -> None:
    """Nothing expired the attempts: those on unknown addresses (the typed email, IP and user
    agent of whoever tried) stayed for good."""
    retention = timedelta(days=auth_stack.settings.login_attempt_retention_days)
    now = datetime.now(UTC)
    old = await _attempt(auth_stack, at=now - retention - timedelta(hours=1))
    recent = await _attempt(auth_stack, at=now - retention + timedelta(hours=1))
    count = "SELECT count(*) FROM login_attempts WHERE email = $1"

    async def purged() -> bool:
        return await auth_stack.db.fetchval(count, old) == 0

    stop = asyncio.Event()
    rounds = asyncio.create_task(jobs.housekeeping(auth_stack.app, stop))
    try:
        await eventually(purged, timeout=20, interval=0.2)
    finally:
        stop.set()
        await rounds
    assert await auth_stack.db.fetchval(count, recent) == 1
