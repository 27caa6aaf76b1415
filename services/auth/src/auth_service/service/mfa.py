"""TOTP multi-factor authentication: enrolment, single-use recovery codes, disabling."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

import pyotp
from contracts.types import utc_now
from cryptography.exceptions import InvalidTag
from shopkit.security import Principal
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import repository
from auth_service.deps import ClientInfo
from auth_service.errors import (
    InvalidAccessTokenError,
    MfaAlreadyEnabledError,
    MfaCodeRejectedError,
    MfaNotEnabledError,
    MfaSetupMissingError,
    UserNotFoundError,
)
from auth_service.models import RecoveryCode, User
from auth_service.runtime import Runtime
from auth_service.schemas import MfaSetup, RecoveryCodes
from auth_service.service.reauthentication import SecondFactor, reauthenticate
from contracts import new_id

RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i look-alikes
_RECOVERY_HALF = 5  # two groups of 5 from 31 symbols: ~50 bits per code


def _secret_context(user: User) -> str:
    return f"mfa:{user.id}"


def _totp_secret(rt: Runtime, user: User) -> str | None:
    if user.mfa_secret is None:
        return None
    try:
        return rt.box.open(user.mfa_secret, context=_secret_context(user)).decode()
    except InvalidTag:  # sealed under another AUTH_SECRET_KEY: no code can match
        return None


def accept_totp(*, rt: Runtime, user: User, code: str, now: datetime) -> bool:
    """Check a TOTP code (one step of clock drift either way); each step is accepted once."""
    secret = _totp_secret(rt, user)
    if secret is None or not code.isdigit():
        return False
    totp = pyotp.TOTP(secret)
    current = int(totp.timecode(now))
    for step in (current - 1, current, current + 1):
        if user.mfa_last_step is not None and step <= user.mfa_last_step:
            continue  # replay of a code already used (possibly by an eavesdropper)
        if hmac.compare_digest(str(totp.generate_otp(step)), code):
            user.mfa_last_step = step
            return True
    return False


def _normalise_recovery_code(code: str) -> str:
    return "".join(code.lower().split()).replace("-", "")


async def spend_recovery_code(
    session: AsyncSession, *, rt: Runtime, user: User, code: str, now: datetime
) -> bool:
    return await repository.use_recovery_code(
        session, user_id=user.id, code_hash=rt.hasher.hash(_normalise_recovery_code(code)), now=now
    )


def second_factor(
    session: AsyncSession,
    *,
    rt: Runtime,
    user: User,
    totp_code: str | None,
    recovery_code: str | None,
    now: datetime,
) -> SecondFactor | None:
    """The code a re-authentication of `user` needs besides the password, as the login takes
    it (a TOTP code, or else a recovery code, spent); None while MFA is off."""
    if not user.mfa_enabled:
        return None

    async def check() -> bool:
        if totp_code is not None:
            return accept_totp(rt=rt, user=user, code=totp_code, now=now)
        assert recovery_code is not None
        return await spend_recovery_code(session, rt=rt, user=user, code=recovery_code, now=now)

    return SecondFactor(given=totp_code is not None or recovery_code is not None, check=check)


def _new_recovery_code() -> str:
    chars = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(2 * _RECOVERY_HALF))
    return f"{chars[:_RECOVERY_HALF]}-{chars[_RECOVERY_HALF:]}"


async def _user(session: AsyncSession, principal: Principal) -> User:
    user = await repository.get_user(session, principal.user_id, for_update=True)
    if user is None:
        raise UserNotFoundError("the account of this token no longer exists")
    if user.deleted_at is not None:
        # Checked under the row lock: a deletion that committed after the token was verified
        # must not get a TOTP secret written back onto the erased row (as `accounts._user`).
        raise InvalidAccessTokenError("the account of this token was deleted")
    return user


async def setup(session: AsyncSession, *, rt: Runtime, principal: Principal) -> MfaSetup:
    """A new pending secret; MFA is on only once `enable` confirms a code from it."""
    user = await _user(session, principal)
    if user.mfa_enabled:
        raise MfaAlreadyEnabledError("disable MFA before enrolling a new authenticator")
    secret = pyotp.random_base32()
    user.mfa_secret = rt.box.seal(secret.encode(), context=_secret_context(user))
    user.mfa_last_step = None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=rt.settings.mfa_issuer)
    return MfaSetup(secret=secret, otpauth_uri=str(uri))


async def enable(
    session: AsyncSession,
    *,
    rt: Runtime,
    principal: Principal,
    password: str,
    code: str,
    client: ClientInfo,
) -> RecoveryCodes:
    """Needs the password as well as a code from the new authenticator: with a bearer token
    alone, whoever stole one could enrol their own device and lock the owner out. Failures
    count towards the lockout, as a login's do."""
    user = await _user(session, principal)
    if user.mfa_enabled:
        raise MfaAlreadyEnabledError()
    if user.mfa_secret is None:
        raise MfaSetupMissingError("call /api/auth/mfa/setup first")
    await reauthenticate(
        rt,
        user=user,
        client=client,
        proof=lambda: rt.passwords.verify(user.password_hash, password),
        failure="the password is wrong",
    )
    if not accept_totp(rt=rt, user=user, code=code, now=utc_now()):
        raise MfaCodeRejectedError("the code does not match the authenticator being enrolled")
    user.mfa_enabled = True
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    await repository.replace_recovery_codes(
        session,
        user.id,
        [
            RecoveryCode(
                id=new_id(),
                user_id=user.id,
                code_hash=rt.hasher.hash(_normalise_recovery_code(code)),
            )
            for code in codes
        ],
    )
    return RecoveryCodes(recovery_codes=codes)


async def disable(
    session: AsyncSession,
    *,
    rt: Runtime,
    principal: Principal,
    password: str,
    code: str,
    client: ClientInfo,
) -> None:
    """Needs the password and a TOTP or recovery code; failures count towards the lockout."""
    user = await _user(session, principal)
    if not user.mfa_enabled:
        raise MfaNotEnabledError()
    now = utc_now()

    async def password_and_code() -> bool:
        return await rt.passwords.verify(user.password_hash, password) and (
            accept_totp(rt=rt, user=user, code=code, now=now)
            or await spend_recovery_code(session, rt=rt, user=user, code=code, now=now)
        )

    await reauthenticate(
        rt, user=user, client=client, proof=password_and_code, failure="password or code is wrong"
    )
    user.mfa_enabled = False
    user.mfa_secret = None
    user.mfa_last_step = None
    await repository.delete_recovery_codes(session, user.id)
