"""The auth service's runtime: built at start-up, key ring kept fresh by a background job."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI
from redis.asyncio import Redis
from shopkit.app import sessionmaker_of
from shopkit.db import UnitOfWork
from shopkit.loops import every
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service import keys
from auth_service.config import AuthSettings
from auth_service.crypto import SecretBox, TokenHasher
from auth_service.passwords import Passwords
from auth_service.throttle import LoginThrottle, ThrottlePolicy
from auth_service.tokens import KeyRingTokenVerifier

log = logging.getLogger(__name__)


class KeyRingHolder:
    """The current key ring; replaced as a whole when reloaded."""

    def __init__(self, ring: keys.KeyRing) -> None:
        self.ring = ring


@dataclass(frozen=True)
class Runtime:
    """Everything the service functions need besides a request session."""

    settings: AuthSettings
    passwords: Passwords
    box: SecretBox
    hasher: TokenHasher
    throttle: LoginThrottle
    redis: Redis
    sessions: async_sessionmaker[AsyncSession]
    keyring: KeyRingHolder

    async def refresh_keys(self, *, rotate: bool = True) -> keys.KeyRing:
        ring = await load_keyring(
            self.sessions, box=self.box, settings=self.settings, rotate=rotate
        )
        self.keyring.ring = ring
        return ring


async def load_keyring(
    sessions: async_sessionmaker[AsyncSession],
    *,
    box: SecretBox,
    settings: AuthSettings,
    rotate: bool = True,
) -> keys.KeyRing:
    """Rotate when due (creating the first key if there is none), then load the ring."""
    async with UnitOfWork(sessions) as uow:
        if rotate:
            await keys.maintain(
                uow.session,
                box=box,
                max_age=timedelta(days=settings.signing_key_max_age_days),
                access_token_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
                refresh_interval=timedelta(seconds=settings.key_refresh_seconds),
            )
        ring = await keys.load(uow.session, box=box)
        await uow.commit()
    return ring


def passwords_for(settings: AuthSettings) -> Passwords:
    return Passwords(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


async def start(app: FastAPI) -> None:
    """Start-up hook: key ring, hashers, throttle, and a verifier fed from the key ring."""
    settings: AuthSettings = app.state.settings
    redis: Redis = app.state.redis
    master = settings.secret_key.get_secret_value()
    box = SecretBox(master)
    sessions = sessionmaker_of(app)
    ring = await load_keyring(sessions, box=box, settings=settings)
    runtime = Runtime(
        settings=settings,
        passwords=await asyncio.to_thread(passwords_for, settings),
        box=box,
        hasher=TokenHasher(master),
        throttle=LoginThrottle(
            redis,
            ThrottlePolicy(
                account_max_failures=settings.login_account_max_failures,
                ip_max_failures=settings.login_ip_max_failures,
                base_seconds=settings.login_lockout_base_seconds,
                max_seconds=settings.login_lockout_max_seconds,
                memory_seconds=settings.login_failure_memory_seconds,
            ),
            namespace=settings.redis_namespace,
        ),
        redis=redis,
        sessions=sessions,
        keyring=KeyRingHolder(ring),
    )
    verifier = KeyRingTokenVerifier(
        reload=lambda: runtime.refresh_keys(rotate=False),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        redis=redis,
    )
    verifier.set_keys(ring.jwks)
    app.state.auth = runtime
    app.state.token_verifier = verifier


async def keep_keys_fresh(app: FastAPI, stop: asyncio.Event) -> None:
    """Background job: rotate when the active key is old enough, reload what other replicas did."""
    runtime: Runtime = app.state.auth

    async def refresh() -> None:
        # A failure keeps the current key ring until the next round.
        ring = await runtime.refresh_keys()
        app.state.token_verifier.set_keys(ring.jwks)

    await every(
        stop, runtime.settings.key_refresh_seconds, refresh, name="signing-keys", wait_first=True
    )
