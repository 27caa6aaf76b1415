"""Access-token verification shared by every service and the gateway.

Tokens are RS256-signed JWTs from the auth service: every request verifies a token (at the
gateway and again at the service) while only a login or refresh signs one, and an RSA-2048
verification costs a fifth of an Ed25519 one here (bench_gateway, bench_auth). RS256 is also the
algorithm every ingress, API gateway and identity provider accepts.

Verification is local: the JWKS is fetched once and cached, refreshed when an unknown `kid`
appears (at most once per cooldown, so forged kids cannot flood auth). Exactly one algorithm is
accepted, which rules out `alg: none` and HS/RS confusion. A logged-out token's `jti` is denied
in Redis until it expires.

A session presents the same token on every request (and the gateway and the service both check
it), so a token whose signature and claims verified is remembered, by its exact text, until it
expires: a later presentation only re-checks the expiry and the deny-list. A different key set
(rotation, removal) forgets everything remembered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import RSAAlgorithm
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shopkit.problems import ForbiddenError, ServiceUnavailableError, UnauthorizedError

ALGORITHM = "RS256"
MIN_RSA_BITS = 2048
DENIED_JTI_PREFIX = "auth:denied-jti:"
JWKS_REFRESH_COOLDOWN = 10.0
JWKS_MAX_AGE = 300.0
"""Seconds a fetched JWKS is trusted: a key auth stopped publishing (retired and purged, or
withdrawn after a leak) stops verifying here within this time, not at the next restart."""
LEEWAY_SECONDS = 5
VERIFIED_CACHE_SIZE = 50_000

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as proven by a verified access token."""

    user_id: str
    roles: frozenset[str]
    token_id: str
    expires_at: int
    session_id: str | None = None
    """The login session (refresh family) the token was issued in, when it names one."""
    authenticated_at: int | None = None
    """When the user last proved who they are (`auth_time`, Unix seconds): the sign-in that
    opened the session. Refreshing a token does not renew it."""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class InvalidTokenError(UnauthorizedError):
    slug = "invalid-token"
    title = "Invalid access token"


class ReauthenticationRequiredError(UnauthorizedError):
    """The token is valid, but its sign-in is too old for what is asked (RFC 9470)."""

    slug = "reauthentication-required"
    title = "A recent sign-in is required"


def require_recent_sign_in(principal: Principal, *, max_age_seconds: int) -> None:
    """Refuse unless the caller signed in (password, and code when enabled) within
    `max_age_seconds`: a token taken from a device left signed in, or refreshed for weeks,
    must not be enough for what cannot be undone. The answer tells the client to sign in
    again, in the form RFC 9470 gives for step-up authentication."""
    signed_in = principal.authenticated_at
    if signed_in is not None and time.time() - signed_in <= max_age_seconds:
        return
    raise ReauthenticationRequiredError(
        f"sign in again (at most {max_age_seconds} s before this request) to do this",
        max_age=max_age_seconds,
        headers={
            "WWW-Authenticate": (
                f'Bearer error="insufficient_user_authentication", max_age="{max_age_seconds}"'
            )
        },
    )


JwksLoader = Callable[[], Awaitable[dict[str, Any]]]
"""Returns a JWKS document; the default fetches `jwks_url` over HTTP."""


class TokenVerifier:
    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        http: httpx.AsyncClient | None = None,
        redis: Redis | None = None,
        jwks_loader: JwksLoader | None = None,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self._http = http
        self._redis = redis
        self._load_jwks = jwks_loader or self._fetch_jwks
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._verified: dict[str, Principal] = {}
        """Tokens whose signature and claims verified, by their exact text (oldest first)."""

    def set_keys(self, jwks: dict[str, Any]) -> None:
        keys: dict[str, Any] = {}
        for jwk in jwks.get("keys", []):
            if (
                jwk.get("kty") != "RSA"
                or "kid" not in jwk
                or jwk.get("alg", ALGORITHM) != ALGORITHM
            ):
                continue  # keys of another kind can never verify an accepted token
            key = RSAAlgorithm.from_jwk(jwk)
            if key.key_size >= MIN_RSA_BITS:  # a weak published key signs nothing trusted
                keys[jwk["kid"]] = key
        if keys.keys() != self._keys.keys() or any(
            _public_bytes(keys[kid]) != _public_bytes(self._keys[kid]) for kid in keys
        ):
            self._verified = {}  # a removed or replaced key: nothing it signed is trusted
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def _fetch_jwks(self) -> dict[str, Any]:
        client = self._http or httpx.AsyncClient(timeout=3.0)
        try:
            response = await client.get(self.jwks_url)
            response.raise_for_status()
            jwks: dict[str, Any] = response.json()
            return jwks
        finally:
            if self._http is None:
                await client.aclose()

    async def _refresh(self) -> None:
        # Unknown kids are attacker-controlled: reload at most once per cooldown.
        async with self._lock:
            if self._fetched_at and time.monotonic() - self._fetched_at < JWKS_REFRESH_COOLDOWN:
                return
            try:
                self.set_keys(await self._load_jwks())
            except (httpx.HTTPError, ValueError):
                self._fetched_at = time.monotonic()  # back off; keep the keys we had

    async def _key_for(self, kid: str) -> Any:
        if kid not in self._keys:
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise InvalidTokenError("token signed with an unknown key")
        return key

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("token rejected") from exc
        return claims

    async def verify(self, token: str) -> Principal:
        if self._fetched_at and time.monotonic() - self._fetched_at > JWKS_MAX_AGE:
            await self._refresh()  # a key gone from the set forgets what it verified
        principal = self._verified.get(token)
        if principal is not None:
            if time.time() >= principal.expires_at + LEEWAY_SECONDS:
                self._verified.pop(token, None)
                raise InvalidTokenError("token expired")
        else:
            principal = await self._verify_signed(token)
        if self._redis is not None and await self._is_denied(self._redis, principal.token_id):
            raise InvalidTokenError("token revoked")
        return principal

    async def _verify_signed(self, token: str) -> Principal:
        """Signature and claims; remembers the token once both verified."""
        header = _unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError("token algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("token has no key id")
        keys = self._keys
        claims = self._decode(token, await self._key_for(kid))
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidTokenError("token roles malformed")
        principal = Principal(
            user_id=str(claims["sub"]),
            roles=frozenset(roles),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            session_id=sid if isinstance(sid := claims.get("sid"), str) else None,
            authenticated_at=at if type(at := claims.get("auth_time")) is int else None,
        )
        if keys is self._keys:  # not across a key refresh that happened meanwhile
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = principal
        return principal

    @staticmethod
    async def _is_denied(redis: Redis, token_id: str) -> bool:
        try:
            return bool(await redis.exists(DENIED_JTI_PREFIX + token_id))
        except (RedisError, OSError) as exc:
            # Fail closed: without the deny-list a logged-out token could still be used.
            raise ServiceUnavailableError("token revocation cannot be checked right now") from exc


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, parsed once (PyJWT parses it again when verifying)."""
    head, dot, _ = token.partition(".")
    if not dot or not _SEGMENT.fullmatch(head):
        raise InvalidTokenError("malformed token")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise InvalidTokenError("malformed token") from exc
    if not isinstance(header, dict):
        raise InvalidTokenError("malformed token")
    return header


def new_signing_key() -> rsa.RSAPrivateKey:
    """A fresh key pair of the kind access tokens are signed with."""
    return rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)


def public_jwk(private_key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The JWKS entry that lets verifiers check what `private_key` signs."""
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    # `use` says what the key is for; RFC 7517 advises against also giving `key_ops`.
    jwk.pop("key_ops", None)
    jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
    return jwk


def _public_bytes(key: Any) -> bytes:
    raw: bytes = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return raw


bearer_scheme = HTTPBearer(auto_error=False, description="Access token from POST /api/auth/login")


# Dependencies are coroutines: FastAPI runs a plain function on a worker thread, a hand-off
# that costs more than what these do.
async def verifier_of(request: Request) -> TokenVerifier:
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise RuntimeError("token verification is not configured for this service")
    return verifier


VerifierDep = Annotated[TokenVerifier, Depends(verifier_of)]


async def current_principal(
    verifier: VerifierDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise UnauthorizedError(
            "a bearer access token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return await verifier.verify(credentials.credentials)


async def optional_principal(
    verifier: VerifierDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal | None:
    if credentials is None:
        return None
    return await verifier.verify(credentials.credentials)


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise ForbiddenError("this operation needs the admin role")
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]
OptionalUser = Annotated[Principal | None, Depends(optional_principal)]
AdminUser = Annotated[Principal, Depends(admin_principal)]
