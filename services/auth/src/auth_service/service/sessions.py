"""Login sessions: login, refresh rotation with reuse detection, logout, introspection.

A session is a refresh family. Login and refresh run in their own unit of work because their
failures must still leave a trace: a failed login is written to the history, and a reused
refresh token revokes its family even though the request itself is refused.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import NoReturn

from contracts.types import utc_now
from shopkit.db import UnitOfWork
from shopkit.security import InvalidTokenError, Principal, TokenVerifier
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import repository
from auth_service.crypto import new_opaque_token
from auth_service.deps import ClientInfo
from auth_service.errors import (
    InvalidCredentialsError,
    InvalidMfaCodeError,
    InvalidRefreshTokenError,
    MfaRequiredError,
    RefreshTokenReusedError,
    TooManyAttemptsError,
)
from auth_service.models import EMAIL_LENGTH, LoginAttempt, RefreshFamily, RefreshToken, User
from auth_service.runtime import Runtime
from auth_service.schemas import Introspection, LoginRequest, TokenPair
from auth_service.service import mfa
from auth_service.tokens import deny_access_token, issue_access_token
from contracts import new_id

log = logging.getLogger(__name__)


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def open_session(
    session: AsyncSession, *, rt: Runtime, user: User, now: datetime
) -> TokenPair:
    """A new refresh family with its first refresh token and an access token."""
    settings = rt.settings
    family = RefreshFamily(
        id=new_id(),
        user_id=user.id,
        created_at=now,
        expires_at=now + timedelta(days=settings.refresh_token_ttl_days),
    )
    await repository.add_refresh_family(session, family)
    return await _issue_pair(session, rt=rt, user=user, family=family, now=now)


async def _issue_pair(
    session: AsyncSession, *, rt: Runtime, user: User, family: RefreshFamily, now: datetime
) -> TokenPair:
    settings = rt.settings
    access = issue_access_token(
        rt.keyring.ring,
        user_id=user.id,
        roles=user.roles,
        session_id=family.id,
        authenticated_at=family.created_at,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        now=now,
    )
    refresh = new_opaque_token()
    await repository.add_refresh_token(
        session,
        RefreshToken(
            id=new_id(),
            family_id=family.id,
            token_hash=rt.hasher.hash(refresh),
            created_at=now,
            access_jti=access.jti,
            access_expires_at=access.expires_at,
        ),
    )
    return TokenPair(
        access_token=access.token,
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_seconds,
        refresh_expires_at=family.expires_at,
    )


async def deny_family_tokens(
    session: AsyncSession, *, rt: Runtime, family_ids: list[str], now: datetime
) -> None:
    """Every still-valid access token of these sessions is denied at every verifier."""
    for jti, expires_at in await repository.live_access_tokens(session, family_ids, now):
        await deny_access_token(rt.redis, jti=jti, expires_at=int(expires_at.timestamp()), now=now)


async def revoke_all_sessions(
    session: AsyncSession, *, rt: Runtime, user_id: str, reason: str, now: datetime
) -> None:
    family_ids = await repository.revoke_user_families(
        session, user_id=user_id, reason=reason, now=now
    )
    await deny_family_tokens(session, rt=rt, family_ids=family_ids, now=now)


async def _remember(
    session: AsyncSession,
    *,
    user: User | None,
    email: str,
    client: ClientInfo,
    outcome: str,
    now: datetime,
) -> None:
    await repository.add_login_attempt(
        session,
        LoginAttempt(
            id=new_id(),
            user_id=user.id if user else None,
            # What was typed, as far as the column holds it: lowering can lengthen text
            # ("İ" becomes two characters), and the attempt is recorded all the same.
            email=email[:EMAIL_LENGTH],
            ip=client.ip,
            user_agent=client.user_agent,
            outcome=outcome,
            at=now,
        ),
    )


async def login(*, rt: Runtime, request: LoginRequest, client: ClientInfo) -> TokenPair:
    email = normalise_email(request.email)
    now = utc_now()
    async with UnitOfWork(rt.sessions) as uow:
        session = uow.session
        # Not locked yet: a lock held across the password check made concurrent logins to one
        # account wait for each other (N checks in a row) while those to an unknown address ran
        # side by side, and the difference told whether the account exists.
        user = await repository.get_user_by_email(session, email)

        async def refuse(outcome: str, error: Exception) -> NoReturn:
            await _remember(
                session, user=user, email=email, client=client, outcome=outcome, now=now
            )
            await uow.commit()
            raise error

        # Counted as a failure from here on (atomically with the lockout check), so guesses in
        # flight together get no more checks than the limit allows; only an attempt that turns
        # out not to be a failure gives its slot back. An unknown account's attempt is counted
        # the same way: the answer must not tell whether the account exists.
        try:
            attempt = await rt.throttle.reserve(email=email, ip=client.ip)
        except TooManyAttemptsError as locked:
            await refuse("locked_out", locked)

        if user is None:
            await rt.passwords.verify_nothing(request.password)
            await refuse("unknown_account", InvalidCredentialsError())
        checked_at = user.password_changed_at
        if not await rt.passwords.verify(user.password_hash, request.password):
            await refuse("invalid_password", InvalidCredentialsError())
        # The row lock the TOTP step (replay protection), a rehash and the new session need.
        user = await repository.get_user(session, user.id, for_update=True)
        if user is None or user.deleted_at is not None or user.password_changed_at != checked_at:
            # Deleted or given a new password while this login checked the old one. Told by
            # `password_changed_at`, not by the hash: a concurrent login's rehash (new
            # parameters) changes the hash of the same password.
            await refuse("invalid_password", InvalidCredentialsError())

        outcome = "success"
        if user.mfa_enabled:
            if request.totp_code is None and request.recovery_code is None:
                await rt.throttle.release(attempt)  # the right password: no failure
                await refuse("mfa_required", MfaRequiredError())
            if request.totp_code is not None:
                accepted = mfa.accept_totp(rt=rt, user=user, code=request.totp_code, now=now)
            else:
                assert request.recovery_code is not None
                accepted = await mfa.spend_recovery_code(
                    session, rt=rt, user=user, code=request.recovery_code, now=now
                )
                outcome = "success_recovery_code"
            if not accepted:
                await refuse("invalid_mfa_code", InvalidMfaCodeError())

        if rt.passwords.needs_rehash(user.password_hash):
            user.password_hash = await rt.passwords.hash(request.password)
        await rt.throttle.succeeded(attempt)
        pair = await open_session(session, rt=rt, user=user, now=now)
        await _remember(session, user=user, email=email, client=client, outcome=outcome, now=now)
        await uow.commit()
    return pair


async def refresh(*, rt: Runtime, refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair; a spent token revokes its whole family."""
    now = utc_now()
    async with UnitOfWork(rt.sessions) as uow:
        session = uow.session
        found = await repository.lock_refresh_token(session, rt.hasher.hash(refresh_token))
        if found is None:
            raise InvalidRefreshTokenError("unknown refresh token")
        token, family = found
        if family.revoked_at is not None:
            raise InvalidRefreshTokenError("this session was revoked")
        if family.expires_at <= now:
            raise InvalidRefreshTokenError("this session has expired; log in again")
        if token.used_at is not None:
            family.revoked_at = now
            family.revoked_reason = "reuse"
            await deny_family_tokens(session, rt=rt, family_ids=[family.id], now=now)
            await uow.commit()
            log.warning(
                "refresh token reuse: session revoked",
                extra={"user_id": family.user_id, "family_id": family.id},
            )
            raise RefreshTokenReusedError()
        token.used_at = now
        user = await repository.get_user(session, family.user_id)
        if user is None:
            raise InvalidRefreshTokenError("unknown refresh token")
        pair = await _issue_pair(session, rt=rt, user=user, family=family, now=now)
        await uow.commit()
    return pair


def _ends(family: RefreshFamily, principal: Principal) -> bool:
    """Whether the caller's logout may end this session: a live one of its own."""
    return family.user_id == principal.user_id and family.revoked_at is None


async def logout(
    session: AsyncSession, *, rt: Runtime, principal: Principal, refresh_token: str | None
) -> None:
    """Deny the caller's access token and revoke its session: the one its refresh token
    names, or else (no refresh token, or one naming no live session of the caller's) the one
    the access token was issued in. Another user's session is never touched."""
    now = utc_now()
    await deny_access_token(
        rt.redis, jti=principal.token_id, expires_at=principal.expires_at, now=now
    )
    family: RefreshFamily | None = None
    if refresh_token is not None:
        found = await repository.lock_refresh_token(session, rt.hasher.hash(refresh_token))
        if found is not None and _ends(found[1], principal):
            family = found[1]
    if family is None and principal.session_id is not None:
        # No live session of the caller's behind the refresh token (garbage, spent, or
        # someone else's): the session this access token belongs to ends all the same, or it
        # would keep refreshing for up to 30 days after a logout answered 204.
        family = await repository.lock_family(session, principal.session_id)
    if family is None or not _ends(family, principal):
        return  # logout is idempotent: an unknown or foreign session changes nothing
    family.revoked_at = now
    family.revoked_reason = "logout"
    await deny_family_tokens(session, rt=rt, family_ids=[family.id], now=now)


async def introspect(*, verifier: TokenVerifier, token: str) -> Introspection:
    try:
        principal = await verifier.verify(token)
    except InvalidTokenError:
        return Introspection(active=False)
    return Introspection(
        active=True,
        sub=principal.user_id,
        roles=sorted(principal.roles),
        exp=principal.expires_at,
        jti=principal.token_id,
        iss=verifier.issuer,
        aud=verifier.audience,
    )
