"""Signing keys: RSA-2048 pairs in the database, the in-memory key ring, rotation.

The newest unretired, activated key signs. A routine rotation (the active key aged) publishes
the new key first and lets it sign only `activation_delay` later, once every replica has
reloaded its ring and so serves a JWKS that holds it: a token it signs always finds its key,
whichever replica a verifier asks. (Signing at once, the replica that rotated handed out
tokens other replicas' JWKS did not know yet: 401s for up to a refresh interval.) An
emergency rotation (a leaked key, a key nobody can use) signs at once. The keys a newer one
replaced are retired, and a retired key stays in the JWKS until every token it can have signed
has expired, which includes tokens signed by replicas that had not yet reloaded the ring.
Private keys are encrypted at rest and wiped on retirement. An active key of another algorithm
(from an older release) is replaced at once, and only keys of the accepted algorithm are
published.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from contracts.types import utc_now
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
)
from shopkit.security import ALGORITHM, new_signing_key, public_jwk
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import repository
from auth_service.crypto import SecretBox
from auth_service.models import SigningKey

log = logging.getLogger(__name__)

PUBLISH_LEEWAY = timedelta(seconds=60)
"""Beyond the token lifetime: clock skew between replicas and verifiers."""


@dataclass(frozen=True)
class KeyRing:
    """What a replica signs with and publishes, as last loaded from the database."""

    kid: str
    private_key: rsa.RSAPrivateKey
    jwks: dict[str, Any] = field(default_factory=dict)

    @property
    def kids(self) -> list[str]:
        return [str(jwk["kid"]) for jwk in self.jwks.get("keys", [])]


def _new_kid(now: datetime) -> str:
    return f"{now:%Y%m%d%H%M%S}-{secrets.token_hex(4)}"


async def _create_key(
    session: AsyncSession, box: SecretBox, now: datetime, *, activates_at: datetime | None = None
) -> SigningKey:
    private_key = new_signing_key()
    kid = _new_kid(now)
    raw = private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    key = SigningKey(
        kid=kid,
        public_jwk=public_jwk(private_key, kid),
        private_key=box.seal(raw, context=kid),
        created_at=now,
        activates_at=activates_at,
    )
    await repository.add_signing_key(session, key)
    return key


def publish_window(*, access_token_ttl: timedelta, refresh_interval: timedelta) -> timedelta:
    """How long a retired key must stay published."""
    return access_token_ttl + refresh_interval + PUBLISH_LEEWAY


def activation_delay(*, refresh_interval: timedelta) -> timedelta:
    """How long a routinely rotated key is published before it signs: every replica reloads
    its ring (and so its JWKS) within `refresh_interval`; the leeway covers a slow reload."""
    return refresh_interval + PUBLISH_LEEWAY


async def schedule_rotation(
    session: AsyncSession,
    *,
    box: SecretBox,
    refresh_interval: timedelta,
    now: datetime | None = None,
) -> SigningKey:
    """A new key, published now and signing from `activation_delay` on (the one already
    pending, if a rotation is under way). The key it replaces retires when it activates."""
    now = now or utc_now()
    await repository.lock_key_rotation(session)
    pending = await repository.pending_signing_key(session, now)
    if pending is not None:
        return pending
    return await _create_key(
        session, box, now, activates_at=now + activation_delay(refresh_interval=refresh_interval)
    )


async def rotate(
    session: AsyncSession,
    *,
    box: SecretBox,
    access_token_ttl: timedelta,
    refresh_interval: timedelta,
    now: datetime | None = None,
) -> SigningKey:
    """Make a new signing key sign at once and retire every other one (still published):
    for a key that must stop signing now. Replicas that have not reloaded their ring yet serve
    a JWKS without it for up to `refresh_interval`; a routine rotation is `schedule_rotation`."""
    now = now or utc_now()
    await repository.lock_key_rotation(session)
    key = await _create_key(session, box, now)
    await repository.retire_signing_keys(
        session,
        except_kid=key.kid,
        now=now,
        publish_until=now
        + publish_window(access_token_ttl=access_token_ttl, refresh_interval=refresh_interval),
    )
    return key


async def maintain(
    session: AsyncSession,
    *,
    box: SecretBox,
    max_age: timedelta,
    access_token_ttl: timedelta,
    refresh_interval: timedelta,
    now: datetime | None = None,
) -> bool:
    """Create the first key, replace an unusable one at once, schedule the rotation of an aged
    one, retire the keys an activated successor replaced, drop keys nothing can still verify.

    Returns True when a new key was made. Safe on several replicas at once (advisory lock).
    """
    now = now or utc_now()
    await repository.lock_key_rotation(session)
    active = await repository.active_signing_key(session, now)
    if (
        active is None
        or active.private_key is None
        or not _accepted(active)
        or not _readable(box, active)
    ):
        # Nothing can sign: no time to publish first.
        await rotate(
            session,
            box=box,
            access_token_ttl=access_token_ttl,
            refresh_interval=refresh_interval,
            now=now,
        )
        await repository.purge_signing_keys(session, now)
        return True
    made = False
    if now - (active.activates_at or active.created_at) >= max_age:
        pending = await repository.pending_signing_key(session, now)
        if pending is None:
            await schedule_rotation(session, box=box, refresh_interval=refresh_interval, now=now)
            made = True
    # The keys the active one replaced stop signing (replicas reload within the window).
    await repository.retire_signing_keys(
        session,
        except_kid=active.kid,
        now=now,
        publish_until=now
        + publish_window(access_token_ttl=access_token_ttl, refresh_interval=refresh_interval),
        keep_pending=True,
    )
    await repository.purge_signing_keys(session, now)
    return made


def _accepted(key: SigningKey) -> bool:
    """Whether verifiers accept what this key signs (keys of an older algorithm do not)."""
    return key.public_jwk.get("alg") == ALGORITHM


def _readable(box: SecretBox, key: SigningKey) -> bool:
    """False when the private key was sealed under another `AUTH_SECRET_KEY`: it is replaced
    (its public half stays published) instead of stopping the service."""
    assert key.private_key is not None
    try:
        box.open(key.private_key, context=key.kid)
    except InvalidTag:
        log.warning(
            "active signing key sealed under another secret; rotating", extra={"kid": key.kid}
        )
        return False
    return True


async def load(session: AsyncSession, *, box: SecretBox, now: datetime | None = None) -> KeyRing:
    """The active private key and the JWKS of every key still published."""
    now = now or utc_now()
    active = await repository.active_signing_key(session, now)
    if active is None or active.private_key is None:
        raise RuntimeError("no active signing key; key maintenance has not run")
    private_key = load_der_private_key(box.open(active.private_key, context=active.kid), None)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise RuntimeError(f"active signing key {active.kid} is not an RSA key")
    published = await repository.published_signing_keys(session, now)
    return KeyRing(
        kid=active.kid,
        private_key=private_key,
        jwks={"keys": [key.public_jwk for key in published if _accepted(key)]},
    )
