"""Background housekeeping of the auth service: login attempts past their retention, sessions
that ended long ago (with every token they rotated through) and expired reset links go.

Attempts on addresses that name no account hold what someone typed, with their IP and user
agent, and no account's deletion ever reaches them; the retention is what bounds them. A
session keeps a row per refresh, and nothing else ever deletes one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from contracts.types import utc_now
from fastapi import FastAPI
from shopkit.db import UnitOfWork
from shopkit.loops import every
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import repository
from auth_service.runtime import Runtime

log = logging.getLogger(__name__)

PURGE_BATCH = 5000
"""Rows deleted per transaction: a long backlog goes in short transactions, not one."""


async def purge_login_attempts(rt: Runtime) -> bool:
    """One batch of attempts older than the retention; True when there may be more."""
    before = utc_now() - timedelta(days=rt.settings.login_attempt_retention_days)
    return await _purge_batch(
        rt,
        "login_attempts",
        lambda session: repository.purge_login_attempts(session, before=before, limit=PURGE_BATCH),
    )


async def purge_ended_sessions(rt: Runtime) -> bool:
    """One batch of the sessions that expired or were revoked longer ago than the retention;
    True when there may be more. Live sessions stay whole: a spent token of one must still be
    recognised as reuse.

    Their tokens go first, in batches of their own: a session holds one per refresh (thousands
    over 30 days), and deleting sessions alone would cascade to all of them in one statement."""
    ended_before = utc_now() - timedelta(days=rt.settings.ended_credential_retention_days)
    async with UnitOfWork(rt.sessions) as uow:
        tokens = await repository.purge_ended_refresh_tokens(
            uow.session, ended_before=ended_before, limit=PURGE_BATCH
        )
        families = 0
        if tokens < PURGE_BATCH:
            families = await repository.purge_ended_refresh_families(
                uow.session, ended_before=ended_before, limit=PURGE_BATCH
            )
        await uow.commit()
    if tokens or families:
        log.info("housekeeping", extra={"refresh_tokens": tokens, "refresh_families": families})
    return tokens >= PURGE_BATCH or families >= PURGE_BATCH


async def purge_password_resets(rt: Runtime) -> bool:
    """One batch of reset links expired longer ago than the retention; True when there may be
    more."""
    expired_before = utc_now() - timedelta(days=rt.settings.ended_credential_retention_days)
    return await _purge_batch(
        rt,
        "password_resets",
        lambda session: repository.purge_password_resets(
            session, expired_before=expired_before, limit=PURGE_BATCH
        ),
    )


async def _purge_batch(
    rt: Runtime, what: str, purge: Callable[[AsyncSession], Awaitable[int]]
) -> bool:
    """Run one batch of `purge` in its own transaction; True when it filled the batch."""
    async with UnitOfWork(rt.sessions) as uow:
        purged = await purge(uow.session)
        await uow.commit()
    if purged:
        log.info("housekeeping", extra={what: purged})
    return purged >= PURGE_BATCH


async def housekeeping_round(rt: Runtime) -> bool:
    """One batch of each purge; True when any of them may have more."""
    more = [
        await purge_login_attempts(rt),
        await purge_ended_sessions(rt),
        await purge_password_resets(rt),
    ]
    return any(more)


async def housekeeping(app: FastAPI, stop: asyncio.Event) -> None:
    runtime: Runtime = app.state.auth
    await every(
        stop,
        runtime.settings.housekeeping_interval_seconds,
        lambda: housekeeping_round(runtime),
        name="housekeeping",
    )
