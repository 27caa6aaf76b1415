"""Every query of the auth service."""

from __future__ import annotations

import zlib
from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import (
    LoginAttempt,
    PasswordReset,
    RecoveryCode,
    RefreshFamily,
    RefreshToken,
    SigningKey,
    User,
)

KEY_ROTATION_LOCK = zlib.crc32(b"shop-auth/signing-key-rotation") & 0x7FFFFFFF


class DuplicateEmailError(Exception):
    pass


# ---------------------------------------------------------------- users


async def add_user(session: AsyncSession, user: User) -> None:
    """Insert `user`; a taken email (even by a concurrent request) raises `DuplicateEmailError`."""
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError as exc:
        raise DuplicateEmailError(user.email) from exc


async def get_user(session: AsyncSession, user_id: str, *, for_update: bool = False) -> User | None:
    query = select(User).where(User.id == user_id)
    if for_update:
        # Locked now, read now: an object the session loaded earlier is refreshed, not kept.
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def get_user_by_email(
    session: AsyncSession, email: str, *, for_update: bool = False
) -> User | None:
    """The live account with this address; a deleted account's placeholder names nobody."""
    query = select(User).where(User.email == email, User.deleted_at.is_(None))
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


# ---------------------------------------------------------------- refresh tokens


async def add_refresh_family(session: AsyncSession, family: RefreshFamily) -> None:
    session.add(family)
    await session.flush()


async def add_refresh_token(session: AsyncSession, token: RefreshToken) -> None:
    session.add(token)
    await session.flush()


async def lock_refresh_token(
    session: AsyncSession, token_hash: str
) -> tuple[RefreshToken, RefreshFamily] | None:
    """The token and its family, both locked: concurrent exchanges of one token serialise."""
    query = (
        select(RefreshToken, RefreshFamily)
        .join(RefreshFamily, RefreshFamily.id == RefreshToken.family_id)
        .where(RefreshToken.token_hash == token_hash)
        .with_for_update()
    )
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])


async def lock_family(session: AsyncSession, family_id: str) -> RefreshFamily | None:
    return (
        await session.execute(
            select(RefreshFamily).where(RefreshFamily.id == family_id).with_for_update()
        )
    ).scalar_one_or_none()


async def revoke_user_families(
    session: AsyncSession, *, user_id: str, reason: str, now: datetime
) -> list[str]:
    """Revoke every live session of a user; returns the revoked family ids."""
    result = await session.execute(
        update(RefreshFamily)
        .where(RefreshFamily.user_id == user_id, RefreshFamily.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .returning(RefreshFamily.id)
    )
    return [row[0] for row in result.all()]


async def live_families(session: AsyncSession, user_id: str, now: datetime) -> list[RefreshFamily]:
    """The user's sessions that are neither revoked nor past their end, newest first."""
    query = (
        select(RefreshFamily)
        .where(
            RefreshFamily.user_id == user_id,
            RefreshFamily.revoked_at.is_(None),
            RefreshFamily.expires_at > now,
        )
        .order_by(RefreshFamily.created_at.desc())
    )
    return list((await session.execute(query)).scalars())


async def live_access_tokens(
    session: AsyncSession, family_ids: list[str], now: datetime
) -> list[tuple[str, datetime]]:
    """`(jti, expires_at)` of the access tokens of these families that have not expired."""
    if not family_ids:
        return []
    query = select(RefreshToken.access_jti, RefreshToken.access_expires_at).where(
        RefreshToken.family_id.in_(family_ids), RefreshToken.access_expires_at > now
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


def _ended_before(cutoff: datetime) -> ColumnElement[bool]:
    """Sessions that expired or were revoked before `cutoff` (a live one never matches)."""
    return or_(RefreshFamily.expires_at < cutoff, RefreshFamily.revoked_at < cutoff)


async def purge_ended_refresh_tokens(
    session: AsyncSession, *, ended_before: datetime, limit: int
) -> int:
    """Delete up to `limit` refresh tokens of sessions that ended before `ended_before`."""
    ended = select(RefreshFamily.id).where(_ended_before(ended_before))
    batch = select(RefreshToken.id).where(RefreshToken.family_id.in_(ended)).limit(limit)
    result = await session.execute(delete(RefreshToken).where(RefreshToken.id.in_(batch)))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_ended_refresh_families(
    session: AsyncSession, *, ended_before: datetime, limit: int
) -> int:
    """Delete up to `limit` sessions that ended before `ended_before` (any token left goes
    with its session: the foreign key cascades)."""
    batch = select(RefreshFamily.id).where(_ended_before(ended_before)).limit(limit)
    result = await session.execute(delete(RefreshFamily).where(RefreshFamily.id.in_(batch)))
    return int(result.rowcount)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- MFA recovery codes


async def replace_recovery_codes(
    session: AsyncSession, user_id: str, codes: list[RecoveryCode]
) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    session.add_all(codes)
    await session.flush()


async def delete_recovery_codes(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


async def use_recovery_code(
    session: AsyncSession, *, user_id: str, code_hash: str, now: datetime
) -> bool:
    """Spend one unused code; False when there is none with that hash (atomic: single use)."""
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == code_hash,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .returning(RecoveryCode.id)
    )
    return result.first() is not None


async def unused_recovery_code_count(session: AsyncSession, user_id: str) -> int:
    query = select(RecoveryCode.id).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
    )
    return len((await session.execute(query)).all())


# ---------------------------------------------------------------- password resets


async def add_password_reset(session: AsyncSession, reset: PasswordReset) -> None:
    session.add(reset)
    await session.flush()


async def latest_password_reset(session: AsyncSession, user_id: str) -> PasswordReset | None:
    query = (
        select(PasswordReset)
        .where(PasswordReset.user_id == user_id)
        .order_by(PasswordReset.created_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_password_reset(session: AsyncSession, token_hash: str) -> PasswordReset | None:
    query = select(PasswordReset).where(PasswordReset.token_hash == token_hash)
    return (await session.execute(query)).scalar_one_or_none()


async def lock_password_reset(session: AsyncSession, token_hash: str) -> PasswordReset | None:
    """Locked now, read now (a row read earlier without the lock is refreshed, not kept)."""
    query = (
        select(PasswordReset)
        .where(PasswordReset.token_hash == token_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def delete_password_resets(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(PasswordReset).where(PasswordReset.user_id == user_id))


async def spend_password_resets(session: AsyncSession, *, user_id: str, now: datetime) -> None:
    """Every outstanding reset of the user becomes unusable (one reset per request)."""
    await session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )


async def purge_password_resets(
    session: AsyncSession, *, expired_before: datetime, limit: int
) -> int:
    """Delete up to `limit` reset links that expired before `expired_before`."""
    batch = select(PasswordReset.id).where(PasswordReset.expires_at < expired_before).limit(limit)
    result = await session.execute(delete(PasswordReset).where(PasswordReset.id.in_(batch)))
    return int(result.rowcount)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- login history


async def add_login_attempt(session: AsyncSession, attempt: LoginAttempt) -> None:
    session.add(attempt)
    await session.flush()


async def login_history(
    session: AsyncSession, *, user_id: str, limit: int, before: str | None
) -> list[LoginAttempt]:
    """Newest first; `before` is the id (UUIDv7, time-ordered) of the last item already seen."""
    query = select(LoginAttempt).where(LoginAttempt.user_id == user_id)
    if before is not None:
        query = query.where(LoginAttempt.id < before)
    query = query.order_by(LoginAttempt.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def delete_login_history(session: AsyncSession, *, user_id: str, email: str) -> None:
    """The account's attempts, and those on its address that name no account (tried before it
    was registered, or while it was unknown): they hold the address, IP and user agent too."""
    await session.execute(
        delete(LoginAttempt).where(
            or_(LoginAttempt.user_id == user_id, LoginAttempt.email == email)
        )
    )


async def purge_login_attempts(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` attempts made before `before`; returns how many went."""
    batch = select(LoginAttempt.id).where(LoginAttempt.at < before).limit(limit)
    result = await session.execute(delete(LoginAttempt).where(LoginAttempt.id.in_(batch)))
    return int(result.rowcount)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- signing keys


async def lock_key_rotation(session: AsyncSession) -> None:
    """Serialise key creation and rotation across replicas (released at commit)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": KEY_ROTATION_LOCK})


def _activated(now: datetime) -> ColumnElement[bool]:
    return or_(SigningKey.activates_at.is_(None), SigningKey.activates_at <= now)


async def active_signing_key(session: AsyncSession, now: datetime) -> SigningKey | None:
    """The key that signs at `now`: the newest unretired one already activated."""
    query = (
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None), _activated(now))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def pending_signing_key(session: AsyncSession, now: datetime) -> SigningKey | None:
    """A key published but not signing yet (a routine rotation under way)."""
    query = (
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None), SigningKey.activates_at > now)
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def published_signing_keys(session: AsyncSession, now: datetime) -> list[SigningKey]:
    query = (
        select(SigningKey)
        .where(or_(SigningKey.publish_until.is_(None), SigningKey.publish_until > now))
        .order_by(SigningKey.created_at.desc())
    )
    return list((await session.execute(query)).scalars())


async def add_signing_key(session: AsyncSession, key: SigningKey) -> None:
    session.add(key)
    await session.flush()


async def retire_signing_keys(
    session: AsyncSession,
    *,
    except_kid: str,
    now: datetime,
    publish_until: datetime,
    keep_pending: bool = False,
) -> list[str]:
    """Retire every unretired key but `except_kid` (with `keep_pending`, keys not activated
    yet stay as they are)."""
    query = update(SigningKey).where(SigningKey.retired_at.is_(None), SigningKey.kid != except_kid)
    if keep_pending:
        query = query.where(_activated(now))
    result = await session.execute(
        query.values(retired_at=now, publish_until=publish_until, private_key=None).returning(
            SigningKey.kid
        )
    )
    return [row[0] for row in result.all()]


async def purge_signing_keys(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(SigningKey).where(
            SigningKey.publish_until.is_not(None), SigningKey.publish_until <= now
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def all_signing_keys(session: AsyncSession) -> list[SigningKey]:
    query = select(SigningKey).order_by(SigningKey.created_at.desc())
    return list((await session.execute(query)).scalars())
