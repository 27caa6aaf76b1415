"""Signing-key lifecycle on real PostgreSQL, lockout growth on real Redis, settings guards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from auth_service import keys, repository
from auth_service.config import AuthSettings
from auth_service.crypto import SecretBox
from auth_service.errors import TooManyAttemptsError
from auth_service.throttle import LoginThrottle, ThrottlePolicy
from contracts.types import utc_now
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import ValidationError
from redis.asyncio import Redis
from shopkit.db import UnitOfWork, create_engine, create_sessionmaker
from shopkit.testing import migrated_database, unique_suffix
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

BOX = SecretBox("test-master-secret")
TTL = timedelta(minutes=15)
REFRESH = timedelta(seconds=30)
MAX_AGE = timedelta(days=30)


@pytest.fixture(scope="module")
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with migrated_database("auth") as url:
        engine = create_engine(url, pool_size=5)
        try:
            yield create_sessionmaker(engine)
        finally:
            await engine.dispose()


async def _maintain(sessions: async_sessionmaker[AsyncSession], *, now: object = None) -> bool:
    async with UnitOfWork(sessions) as uow:
        rotated = await keys.maintain(
            uow.session,
            box=BOX,
            max_age=MAX_AGE,
            access_token_ttl=TTL,
            refresh_interval=REFRESH,
            now=now,
        )  # type: ignore[arg-type]
        await uow.commit()
    return rotated


async def _ring(
    sessions: async_sessionmaker[AsyncSession], *, now: object = None, box: SecretBox = BOX
) -> keys.KeyRing:
    async with UnitOfWork(sessions) as uow:
        return await keys.load(uow.session, box=box, now=now)  # type: ignore[arg-type]


async def test_key_lifecycle_create_rotate_by_age_publish_then_purge(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Several replicas starting at once create exactly one key.
    created = await asyncio.gather(*(_maintain(sessions) for _ in range(4)))
    assert sum(created) == 1
    first = await _ring(sessions)
    assert first.kids == [first.kid]
    assert not await _maintain(sessions)  # young key: nothing to do

    # An aged key's successor is published first and signs only once every replica has
    # reloaded its ring: signing at once, its tokens met JWKS copies that did not know it yet.
    aged = utc_now() + MAX_AGE
    assert await _maintain(sessions, now=aged)
    announced = await _ring(sessions, now=aged)
    assert announced.kid == first.kid  # the aged key still signs
    (successor,) = set(announced.kids) - {first.kid}  # ...and its successor is published
    assert not await _maintain(sessions, now=aged + REFRESH)  # one successor, not one a round
    assert (await _ring(sessions, now=aged + REFRESH)).kid == first.kid

    activated = aged + keys.activation_delay(refresh_interval=REFRESH)
    second = await _ring(sessions, now=activated)
    assert second.kid == successor
    assert not await _maintain(sessions, now=activated)  # retires the key it replaced
    assert second.kids == [second.kid, first.kid]
    async with UnitOfWork(sessions) as uow:
        retired = {k.kid: k.retired_at for k in await repository.all_signing_keys(uow.session)}
    assert retired == {successor: None, first.kid: activated}

    window = keys.publish_window(access_token_ttl=TTL, refresh_interval=REFRESH)
    still = activated + window - timedelta(seconds=1)
    assert not await _maintain(sessions, now=still)
    assert (await _ring(sessions, now=still)).kids == [second.kid, first.kid]

    gone = activated + window + timedelta(seconds=1)
    await _maintain(sessions, now=gone)
    assert (await _ring(sessions, now=gone)).kids == [second.kid]


async def test_an_emergency_rotation_signs_at_once_and_retires_a_pending_key(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _maintain(sessions)
    before = await _ring(sessions)
    async with UnitOfWork(sessions) as uow:
        pending = await keys.schedule_rotation(uow.session, box=BOX, refresh_interval=REFRESH)
        await uow.commit()
    async with UnitOfWork(sessions) as uow:
        leaked_fix = await keys.rotate(
            uow.session, box=BOX, access_token_ttl=TTL, refresh_interval=REFRESH
        )
        await uow.commit()
    after = await _ring(sessions)
    assert after.kid == leaked_fix.kid
    assert before.kid in after.kids and pending.kid in after.kids  # retired, still published
    later = utc_now() + keys.activation_delay(refresh_interval=REFRESH) + timedelta(seconds=1)
    assert (await _ring(sessions, now=later)).kid == leaked_fix.kid  # the pending one never signs


async def test_private_keys_are_encrypted_at_rest(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _maintain(sessions)
    ring = await _ring(sessions)
    raw = ring.private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    async with UnitOfWork(sessions) as uow:
        stored = await repository.active_signing_key(uow.session, utc_now())
        assert stored is not None and stored.private_key is not None
        sealed = stored.private_key
        stored_kid = stored.kid
    assert raw not in sealed
    other = SecretBox("another-master-secret")
    with pytest.raises(InvalidTag):
        await _ring(sessions, box=other)
    # After a change of AUTH_SECRET_KEY the service replaces the key instead of failing to start;
    # the old public key stays published so tokens it signed still verify.
    async with UnitOfWork(sessions) as uow:
        rotated = await keys.maintain(
            uow.session, box=other, max_age=MAX_AGE, access_token_ttl=TTL, refresh_interval=REFRESH
        )
        await uow.commit()
    assert rotated
    ring = await _ring(sessions, box=other)
    assert ring.kid != stored_kid
    assert stored_kid in ring.kids


def _throttle(redis: Redis, *, account_max_failures: int, ip_max_failures: int) -> LoginThrottle:
    policy = ThrottlePolicy(
        account_max_failures=account_max_failures,
        ip_max_failures=ip_max_failures,
        base_seconds=30,
        max_seconds=200,
        memory_seconds=3600,
    )
    return LoginThrottle(redis, policy, namespace=f"test-{unique_suffix()}:")


async def _unlock(redis: Redis, throttle: LoginThrottle) -> None:
    """Let every lockout of this throttle expire now (the counters stay)."""
    async for key in redis.scan_iter(match=f"{throttle._prefix}:lock:*"):
        await redis.delete(key)


async def test_an_ipv6_client_is_counted_by_its_64_network() -> None:
    """Keyed by the full IPv6 address, a client walking through the 2^64 addresses it is
    given was never locked out."""
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    throttle = _throttle(redis, account_max_failures=100, ip_max_failures=3)
    try:
        for host in (1, 2, 3):
            await throttle.reserve(email=f"u{host}@example.com", ip=f"2001:db8:1:2::{host}")
        with pytest.raises(TooManyAttemptsError):
            await throttle.reserve(email="other@example.com", ip="2001:db8:1:2:ffff::9")
        await throttle.reserve(email="other@example.com", ip="2001:db8:1:3::1")  # another /64
        await throttle.reserve(email="other@example.com", ip="10.0.0.1")
    finally:
        await redis.aclose()


async def test_lockout_doubles_with_each_failure_up_to_the_cap() -> None:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    throttle = _throttle(redis, account_max_failures=3, ip_max_failures=100)
    try:
        locks = []
        for _ in range(7):
            locks.append((await throttle.reserve(email="a@example.com", ip="10.0.0.1")).lockout)
            if locks[-1]:
                with pytest.raises(TooManyAttemptsError) as raised:
                    await throttle.reserve(email="a@example.com", ip="10.0.0.2")
                assert 0 < raised.value.extensions["retry_after"] <= locks[-1]
                await _unlock(redis, throttle)
        assert locks == [0, 0, 30, 60, 120, 200, 200]
        await throttle.reserve(email="a@example.com", ip="10.0.0.3")  # 8th: locks again
        with pytest.raises(TooManyAttemptsError):
            await throttle.reserve(email="a@example.com", ip="10.0.0.2")
        await throttle.reserve(email="b@example.com", ip="10.0.0.1")  # IP below its threshold
        await throttle.clear_account(email="a@example.com")
        await throttle.reserve(email="a@example.com", ip="10.0.0.2")
    finally:
        await redis.aclose()


async def test_parallel_reservations_get_no_more_slots_than_the_limit() -> None:
    """Checking the lock and counting the failure were two steps: every attempt in flight
    passed the check before any was counted."""
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    throttle = _throttle(redis, account_max_failures=5, ip_max_failures=100)
    try:
        results = await asyncio.gather(
            *(throttle.reserve(email="a@example.com", ip=f"10.0.0.{n}") for n in range(20)),
            return_exceptions=True,
        )
        assert sum(not isinstance(r, BaseException) for r in results) == 5
        assert all(isinstance(r, TooManyAttemptsError) for r in results if isinstance(r, Exception))
    finally:
        await redis.aclose()


async def test_an_attempt_that_did_not_fail_gives_its_slot_back() -> None:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    throttle = _throttle(redis, account_max_failures=2, ip_max_failures=2)
    try:
        first = await throttle.reserve(email="a@example.com", ip="10.0.0.1")
        second = await throttle.reserve(email="a@example.com", ip="10.0.0.1")
        assert (first.lockout, second.lockout) == (0, 30)
        # The second one was a right password waiting for its MFA code: not a failure, so the
        # lockout its reservation started goes with its slot.
        await throttle.release(second)
        third = await throttle.reserve(email="a@example.com", ip="10.0.0.1")
        assert third.lockout == 30  # the first one's failure still counts
        await throttle.succeeded(third)
        # The account is forgiven; its IP only got this slot back (the first failure stays).
        assert (await throttle.reserve(email="a@example.com", ip="10.0.0.9")).lockout == 0
        assert (await throttle.reserve(email="b@example.com", ip="10.0.0.1")).lockout == 30
    finally:
        await redis.aclose()


def test_placeholder_secret_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="secret_key"):
        AuthSettings(environment="production")
    assert AuthSettings(
        environment="production", secret_key="a-real-secret-from-the-vault-0123456789"
    ).secret_key


def test_argon2_below_owasp_minimum_is_refused() -> None:
    with pytest.raises(ValidationError, match="OWASP"):
        AuthSettings(argon2_time_cost=1, argon2_memory_kib=19456)
    assert AuthSettings(argon2_time_cost=1, argon2_memory_kib=47104).argon2_time_cost == 1
