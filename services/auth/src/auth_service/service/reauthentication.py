"""A signed-in user proving again who they are before a change a stolen token must not make
(a new password, enrolling or removing an authenticator)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from auth_service.deps import ClientInfo
from auth_service.errors import ReauthenticationFailedError
from auth_service.models import User
from auth_service.runtime import Runtime


async def reauthenticate(
    rt: Runtime,
    *,
    user: User,
    client: ClientInfo,
    proof: Callable[[], Awaitable[bool]],
    failure: str,
) -> None:
    """Throttled like a login, and a failed `proof` counts towards the account's lockout: the
    password must not be guessable here at a rate the login refuses. As at login the attempt
    is counted before the proof is checked (atomically with the lockout check) and given back
    only when the proof holds, so proofs checked in parallel cannot outrun the limit."""
    attempt = await rt.throttle.reserve(email=user.email, ip=client.ip)
    if not await proof():
        raise ReauthenticationFailedError(failure)
    await rt.throttle.release(attempt)
