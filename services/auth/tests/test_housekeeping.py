"""Housekeeping: login attempts are kept for `login_attempt_retention_days`, ended sessions
and expired reset links for `ended_credential_retention_days`, then purged."""

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


async def _family(auth_stack: AuthStack, user_id: str, **times: datetime | None) -> str:
    """A session with a spent and a current refresh token; returns its id."""
    now = datetime.now(UTC)
    family = new_id()
    await auth_stack.db.execute(
        "INSERT INTO refresh_families (id, user_id, created_at, expires_at, revoked_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        family,
        user_id,
        times.get("created_at", now - timedelta(days=1)),
        times.get("expires_at", now + timedelta(days=1)),
        times.get("revoked_at"),
    )
    for used_at in (now - timedelta(days=1), None):
        await auth_stack.db.execute(
            "INSERT INTO refresh_tokens (id, family_id, token_hash, created_at, used_at, "
            "access_jti, access_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $4)",
            new_id(),
            family,
            new_id().replace("-", "") * 2,
            now - timedelta(days=1),
            used_at,
            new_id(),
        )
    return family


async def _reset(auth_stack: AuthStack, user_id: str, *, expires_at: datetime) -> str:
    reset = new_id()
    await auth_stack.db.execute(
        "INSERT INTO password_resets (id, user_id, token_hash, created_at, expires_at) "
        "VALUES ($1, $2, $3, $4, $4)",
        reset,
        user_id,
        new_id().replace("-", "") * 2,
        expires_at,
    )
    return reset


async def test_ended_sessions_and_expired_resets_are_purged_after_the_retention(
    auth_stack: AuthStack,
) -> None:
    """Nothing deleted a session, a refresh token (one row per refresh) or a reset link: the
    tables only grew. Live sessions keep their spent tokens, which reuse detection needs."""
    account = await auth_stack.register()
    retention = timedelta(days=auth_stack.settings.ended_credential_retention_days)
    now = datetime.now(UTC)
    long_ago, lately = now - retention - timedelta(hours=1), now - retention + timedelta(hours=1)
    purged = {
        await _family(auth_stack, account.id, created_at=long_ago, expires_at=long_ago),
        await _family(auth_stack, account.id, revoked_at=long_ago),
    }
    kept = {
        await _family(auth_stack, account.id, created_at=lately, expires_at=lately),
        await _family(auth_stack, account.id, revoked_at=lately),
        # Opened long ago and still alive: never purged, however old its spent tokens are.
        await _family(auth_stack, account.id, created_at=long_ago - retention),
    }
    await _reset(auth_stack, account.id, expires_at=long_ago)  # purged
    recent_resets = {
        await _reset(auth_stack, account.id, expires_at=lately),
        await _reset(auth_stack, account.id, expires_at=now + timedelta(minutes=30)),
    }
    # A real session with a spent token: presenting it again must still end the session.
    first = await auth_stack.tokens(account)
    rotated = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": first["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert rotated.status_code == 200

    while await jobs.housekeeping_round(auth_stack.runtime):
        pass

    families = await auth_stack.db.fetch(
        "SELECT id FROM refresh_families WHERE user_id = $1", account.id
    )
    left = {str(row["id"]) for row in families}
    assert not purged & left
    assert kept <= left
    tokens = await auth_stack.db.fetch(
        "SELECT family_id FROM refresh_tokens WHERE family_id = ANY($1::uuid[])",
        [*purged, *kept],
    )
    assert {str(row["family_id"]) for row in tokens} == kept
    resets = await auth_stack.db.fetch(
        "SELECT id FROM password_resets WHERE user_id = $1", account.id
    )
    assert {str(row["id"]) for row in resets} == recent_resets

    reused = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": first["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert reused.status_code == 401
    assert reused.json()["type"].endswith("/refresh-token-reused")
