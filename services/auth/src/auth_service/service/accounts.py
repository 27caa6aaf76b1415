"""Accounts: registration, profile, password change and reset, login history, admins,
deletion."""

from __future__ import annotations

from datetime import timedelta

from contracts.events.auth import PasswordChanged, PasswordResetRequested, UserRegistered
from contracts.types import utc_now
from shopkit.outbox import Outbox
from shopkit.security import Principal
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import repository
from auth_service.crypto import new_opaque_token
from auth_service.deps import ClientInfo
from auth_service.errors import (
    EmailTakenError,
    InvalidAccessTokenError,
    InvalidResetTokenError,
    UserNotFoundError,
)
from auth_service.models import PasswordReset, User, messaging
from auth_service.passwords import UNUSABLE_PASSWORD_HASH, Passwords, check_policy
from auth_service.runtime import Runtime
from auth_service.schemas import (
    AccountExport,
    AuthExport,
    LoginAttemptPublic,
    LoginHistoryPage,
    MePublic,
    ProfileUpdate,
    RegisterRequest,
    SessionExport,
    TokenPair,
    UserPublic,
)
from auth_service.service import mfa
from auth_service.service.reauthentication import reauthenticate
from auth_service.service.sessions import normalise_email, open_session, revoke_all_sessions
from contracts import new_id

DELETED_NAME = "[deleted]"
"""A deleted account's name (the users service shows the same)."""


def deleted_email(user_id: str) -> str:
    """A deleted account's address: unique (the column is) and never deliverable, since
    `.invalid` is reserved (RFC 2606); registration refuses that domain, so it names nobody."""
    return f"deleted-{user_id}@deleted.invalid"


async def create_user(
    session: AsyncSession,
    *,
    passwords: Passwords,
    email: str,
    password: str,
    name: str,
    is_admin: bool = False,
) -> User:
    """A new account and its `UserRegistered` event, in the caller's transaction."""
    email = normalise_email(email)
    check_policy(password, email=email)
    now = utc_now()
    user = User(
        id=new_id(),
        email=email,
        name=name,
        password_hash=await passwords.hash(password),
        is_admin=is_admin,
        mfa_enabled=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    try:
        await repository.add_user(session, user)
    except repository.DuplicateEmailError as exc:
        raise EmailTakenError("an account with this email already exists") from exc
    await Outbox(session, messaging.outbox).publish(
        UserRegistered(user_id=user.id, email=user.email, name=user.name, registered_at=now)
    )
    return user


async def register(session: AsyncSession, *, rt: Runtime, request: RegisterRequest) -> UserPublic:
    # Roles are not a field of the request: a new account is always a plain customer.
    user = await create_user(
        session,
        passwords=rt.passwords,
        email=str(request.email),
        password=request.password,
        name=request.name,
    )
    return UserPublic(id=user.id, email=user.email, name=user.name)


async def _user(session: AsyncSession, user_id: str, *, for_update: bool = False) -> User:
    user = await repository.get_user(session, user_id, for_update=for_update)
    if user is None:
        raise UserNotFoundError("the account of this token no longer exists")
    refuse_deleted(user)
    return user


def refuse_deleted(user: User) -> None:
    """A deleted account's token is answered as a revoked one would be. Checked on the row as
    read (under its lock, for a write): the token was verified before a deletion that
    committed meanwhile, and a write must not put data back onto the erased row."""
    if user.deleted_at is not None:
        raise InvalidAccessTokenError("the account of this token was deleted")


def _me(user: User) -> MePublic:
    return MePublic(
        id=user.id,
        email=user.email,
        name=user.name,
        roles=user.roles,
        mfa_enabled=user.mfa_enabled,
        created_at=user.created_at,
    )


async def me(session: AsyncSession, *, principal: Principal) -> MePublic:
    return _me(await _user(session, principal.user_id))


async def update_profile(
    session: AsyncSession, *, principal: Principal, update: ProfileUpdate
) -> MePublic:
    user = await _user(session, principal.user_id, for_update=True)
    user.name = update.name
    user.updated_at = utc_now()
    return _me(user)


async def forgot_password(session: AsyncSession, *, rt: Runtime, email: str) -> None:
    """Start a reset if the account exists; the caller answers the same either way."""
    user = await repository.get_user_by_email(session, normalise_email(email), for_update=True)
    if user is None:
        return
    now = utc_now()
    latest = await repository.latest_password_reset(session, user.id)
    cooldown = timedelta(seconds=rt.settings.password_reset_cooldown_seconds)
    if latest is not None and latest.used_at is None and now - latest.created_at < cooldown:
        return  # one email per cooldown: the endpoint must not become a mail cannon
    # Only the newest link works: one asked for earlier may sit in a mailbox that leaked, and
    # a new request is the owner saying which link they mean to use.
    await repository.spend_password_resets(session, user_id=user.id, now=now)
    token = new_opaque_token()
    expires_at = now + timedelta(minutes=rt.settings.password_reset_ttl_minutes)
    await repository.add_password_reset(
        session,
        PasswordReset(
            id=new_id(),
            user_id=user.id,
            token_hash=rt.hasher.hash(token),
            created_at=now,
            expires_at=expires_at,
        ),
    )
    await Outbox(session, messaging.outbox).publish(
        PasswordResetRequested(
            user_id=user.id,
            email=user.email,
            reset_token=token,
            expires_at=expires_at,
        )
    )


async def _set_password(
    session: AsyncSession, *, rt: Runtime, user: User, password: str, via_reset: bool
) -> None:
    check_policy(password, email=user.email)
    now = utc_now()
    user.password_hash = await rt.passwords.hash(password)
    user.password_changed_at = now
    user.updated_at = now
    await revoke_all_sessions(
        session,
        rt=rt,
        user_id=user.id,
        reason="password_reset" if via_reset else "password_changed",
        now=now,
    )
    await repository.spend_password_resets(session, user_id=user.id, now=now)
    await Outbox(session, messaging.outbox).publish(
        PasswordChanged(user_id=user.id, changed_at=now, via_reset=via_reset)
    )


async def reset_password(
    session: AsyncSession, *, rt: Runtime, token: str, new_password: str
) -> None:
    """Set a new password with a reset token; every session of the account ends.

    Locks are taken in the order every other password write takes them, the user's row first
    and then its resets: locking the reset first deadlocked with a change (or a reset with
    another link of the same user) holding the user and spending the resets. The reset is
    read unlocked only to learn whose it is, then locked and checked again under the user's
    lock, where a writer that got there first has spent it."""
    token_hash = rt.hasher.hash(token)
    found = await repository.get_password_reset(session, token_hash)
    if found is not None:
        user = await repository.get_user(session, found.user_id, for_update=True)
        reset = await repository.lock_password_reset(session, token_hash)
        if user is not None and user.deleted_at is None and _usable(reset):
            await _set_password(session, rt=rt, user=user, password=new_password, via_reset=True)
            await rt.throttle.clear_account(email=user.email)
            return
    raise InvalidResetTokenError("the reset link is invalid, used or expired")


def _usable(reset: PasswordReset | None) -> bool:
    return reset is not None and reset.used_at is None and reset.expires_at > utc_now()


async def change_password(
    session: AsyncSession,
    *,
    rt: Runtime,
    principal: Principal,
    current_password: str,
    new_password: str,
    totp_code: str | None = None,
    recovery_code: str | None = None,
    client: ClientInfo,
) -> TokenPair:
    """Ends every session (this one included) and opens a fresh one for the caller.

    The new session counts as a sign-in (its `auth_time` is now), so it is proven as a login
    is: the password and, with MFA on, a code. Otherwise a stolen access token and the password
    would buy a 30-day session fresh enough for what needs a recent sign-in, and end the
    owner's."""
    user = await _user(session, principal.user_id, for_update=True)
    await reauthenticate(
        rt,
        user=user,
        client=client,
        proof=lambda: rt.passwords.verify(user.password_hash, current_password),
        failure="the current password is wrong",
        second_factor=mfa.second_factor(
            session,
            rt=rt,
            user=user,
            totp_code=totp_code,
            recovery_code=recovery_code,
            now=utc_now(),
        ),
    )
    verified_at = utc_now()
    await _set_password(session, rt=rt, user=user, password=new_password, via_reset=False)
    return await open_session(session, rt=rt, user=user, now=verified_at)


async def login_history(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> LoginHistoryPage:
    attempts = await repository.login_history(
        session, user_id=principal.user_id, limit=limit + 1, before=cursor
    )
    page = attempts[:limit]
    return LoginHistoryPage(
        items=[
            LoginAttemptPublic(at=a.at, ip=a.ip, user_agent=a.user_agent, outcome=a.outcome)
            for a in page
        ],
        next_cursor=page[-1].id if len(attempts) > limit else None,
    )


EXPORT_LIMIT = 100_000
"""More login attempts than any account keeps (failed ones are throttled)."""


async def export(session: AsyncSession, *, principal: Principal) -> AuthExport:
    """Everything auth holds about the caller: the account without its secrets, the login
    history and the live sessions. A user auth has no live account for gets empty sections."""
    user = await repository.get_user(session, principal.user_id)
    account = None
    if user is not None and user.deleted_at is None:
        account = AccountExport(
            id=user.id,
            email=user.email,
            name=user.name,
            created_at=user.created_at,
            mfa_enabled=user.mfa_enabled,
        )
    attempts = await repository.login_history(
        session, user_id=principal.user_id, limit=EXPORT_LIMIT, before=None
    )
    families = await repository.live_families(session, principal.user_id, utc_now())
    return AuthExport(
        user_id=principal.user_id,
        account=account,
        login_history=[
            LoginAttemptPublic(at=a.at, ip=a.ip, user_agent=a.user_agent, outcome=a.outcome)
            for a in attempts
        ],
        sessions=[
            SessionExport(created_at=f.created_at, expires_at=f.expires_at) for f in families
        ],
    )


async def make_admin(
    session: AsyncSession, *, passwords: Passwords, email: str, password: str, name: str
) -> tuple[User, bool]:
    """Create an admin account or promote an existing one; returns (user, created)."""
    user = await repository.get_user_by_email(session, normalise_email(email), for_update=True)
    if user is not None:
        user.is_admin = True
        user.updated_at = utc_now()
        return user, False
    user = await create_user(
        session, passwords=passwords, email=email, password=password, name=name, is_admin=True
    )
    return user, True


async def delete_account(session: AsyncSession, *, rt: Runtime, user_id: str) -> None:
    """Anonymise the account and end all its sessions; nothing to do for an account this
    service never had, or one an earlier event already deleted.

    The row stays, with placeholders: its id must stay unique and keep meaning for the other
    services that hold it. Freeing the address lets its owner register again from scratch.
    """
    user = await repository.get_user(session, user_id, for_update=True)
    if user is None or user.deleted_at is not None:
        return
    now = utc_now()
    email = user.email
    # The address as attempts store it (normalised, like the account's own) is personal data
    # too: attempts made on it while no account answered carry it without the account's id.
    await repository.delete_login_history(session, user_id=user.id, email=email)
    await repository.delete_password_resets(session, user.id)
    await repository.delete_recovery_codes(session, user.id)
    user.email = deleted_email(user.id)
    user.name = DELETED_NAME
    user.password_hash = UNUSABLE_PASSWORD_HASH
    user.is_admin = False
    user.mfa_enabled = False
    user.mfa_secret = None
    user.mfa_last_step = None
    user.deleted_at = now
    user.updated_at = now
    # The access tokens are denied in Redis before the caller commits, not after: a failure
    # then rolls the whole deletion back and the event is retried (denying a jti twice is
    # harmless), whereas a denial lost after the commit would never be retried (the inbox
    # already holds the event) and the tokens would live on until they expire.
    await revoke_all_sessions(session, rt=rt, user_id=user.id, reason="account_deleted", now=now)
    # Failure counters of the address must not follow it to a new account.
    await rt.throttle.clear_account(email=email)
