"""A signed-in user proving again who they are before a change a stolen token must not make
(a new password, enrolling or removing an authenticator)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from auth_service.deps import ClientInfo
from auth_service.errors import ReauthenticationFailedError, SecondFactorRequiredError
from auth_service.models import User
from auth_service.runtime import Runtime


@dataclass(frozen=True)
class SecondFactor:
    """The MFA step of a re-authentication, for an account with MFA on: whether the request
    gave a code at all, and how to check the one it gave."""

    given: bool
    check: Callable[[], Awaitable[bool]]


async def reauthenticate(
    rt: Runtime,
    *,
    user: User,
    client: ClientInfo,
    proof: Callable[[], Awaitable[bool]],
    failure: str,
    second_factor: SecondFactor | None = None,
) -> None:
    """Throttled like a login, and a failed `proof` counts towards the account's lockout: the
    password must not be guessable here at a rate the login refuses. As at login the attempt
    is counted before the proof is checked (atomically with the lockout check) and given back
    only when the proof holds, so proofs checked in parallel cannot outrun the limit.

    With a `second_factor` the code is asked for as the login asks for it, answered as a
    signed-in user's confirmation is (403: the token is fine): none given is
    `mfa-code-required` (the attempt given back: the password was right), a wrong one
    `reauthentication-failed`, counted like a wrong password, so codes are not guessable here
    at a rate the login refuses either."""
    attempt = await rt.throttle.reserve(email=user.email, ip=client.ip)
    if not await proof():
        raise ReauthenticationFailedError(failure)
    if second_factor is not None:
        if not second_factor.given:
            await rt.throttle.release(attempt)
            raise SecondFactorRequiredError(
                "this account has MFA on: send a TOTP code (totp_code) or a recovery code"
            )
        if not await second_factor.check():
            raise ReauthenticationFailedError("the TOTP or recovery code is wrong")
    await rt.throttle.release(attempt)
