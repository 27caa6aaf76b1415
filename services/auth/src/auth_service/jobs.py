"""Background housekeeping of the auth service: login attempts past their retention go.

Attempts on addresses that name no account hold what someone typed, with their IP and user
agent, and no account's deletion ever reaches them; the retention is what bounds them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from contracts.types import utc_now
from fastapi import FastAPI
from shopkit.db import UnitOfWork
from shopkit.loops import every

from auth_service import repository
from auth_service.runtime import Runtime

log = logging.getLogger(__name__)

PURGE_BATCH = 5000
"""Attempts deleted per transaction: a long backlog goes in short transactions, not one."""


async def purge_login_attempts(rt: Runtime) -> bool:
    """One batch of attempts older than the retention; True when there may be more."""
    before = utc_now() - timedelta(days=rt.settings.login_attempt_retention_days)
    async with UnitOfWork(rt.sessions) as uow:
        purged = await repository.purge_login_attempts(
            uow.session, before=before, limit=PURGE_BATCH
        )
        await uow.commit()
    if purged:
        log.info("housekeeping", extra={"login_attempts": purged})
    return purged >= PURGE_BATCH


async def housekeeping(app: FastAPI, stop: asyncio.Event) -> None:
    runtime: Runtime = app.state.auth
    await every(
        stop,
        runtime.settings.housekeeping_interval_seconds,
        lambda: purge_login_attempts(runtime),
        name="housekeeping",
    )
