"""Access tokens (RS256 JWTs) and the verifier auth itself uses for its bearer routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from redis.asyncio import Redis
from shopkit.security import ALGORITHM, DENIED_JTI_PREFIX, TokenVerifier

from auth_service.keys import KeyRing
from contracts import new_id


@dataclass(frozen=True)
class AccessToken:
    token: str
    jti: str
    expires_at: datetime


def issue_access_token(
    ring: KeyRing,
    *,
    user_id: str,
    roles: list[str],
    session_id: str,
    authenticated_at: datetime,
    issuer: str,
    audience: str,
    ttl: timedelta,
    now: datetime,
) -> AccessToken:
    """A signed access token; `sid` names the refresh family (the login session), `auth_time`
    the sign-in that opened it."""
    jti = new_id()
    expires_at = now + ttl
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": user_id,
        "roles": roles,
        "sid": session_id,
        "auth_time": int(authenticated_at.timestamp()),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": jti,
    }
    token = jwt.encode(
        claims, ring.private_key, algorithm=ALGORITHM, headers={"kid": ring.kid, "typ": "JWT"}
    )
    return AccessToken(token=token, jti=jti, expires_at=expires_at)


async def deny_access_token(redis: Redis, *, jti: str, expires_at: int, now: datetime) -> None:
    """Every verifier rejects this token from now until it would have expired anyway."""
    ttl = max(1, expires_at - int(now.timestamp()) + 10)
    await redis.set(DENIED_JTI_PREFIX + jti, b"1", ex=ttl)


class KeyRingTokenVerifier(TokenVerifier):
    """The shared verifier, fed from this service's own key ring instead of over HTTP.

    Auth must not fetch its JWKS from itself (a test instance has no well-known URL, and a
    replica that just rotated knows the new key before any load balancer does).
    """

    def __init__(
        self,
        *,
        reload: Callable[[], Awaitable[KeyRing]],
        issuer: str,
        audience: str,
        redis: Redis | None,
    ) -> None:
        async def load_jwks() -> dict[str, Any]:
            return (await reload()).jwks

        super().__init__(
            jwks_url="", issuer=issuer, audience=audience, redis=redis, jwks_loader=load_jwks
        )
