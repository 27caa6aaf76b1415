"""Forged and stale access tokens are refused at the gateway and at the service; key rotation
keeps every valid token valid."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from auth_service import keys
from auth_service.cli import app as cli
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import RSAAlgorithm
from shopkit.security import new_signing_key
from shopkit.testing import eventually
from typer.testing import CliRunner

from .conftest import Account, AuthStack


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _claims(auth_stack: AuthStack, account: Account, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": auth_stack.settings.jwt_issuer,
        "aud": "shop",
        "sub": account.id,
        "roles": ["customer", "admin"],
        "iat": now,
        "exp": now + 600,
        "jti": os.urandom(8).hex(),
    }
    claims.update(overrides)
    return claims


def _signed(auth_stack: AuthStack, claims: dict[str, Any]) -> str:
    """Signed with the service's real key: only the claims are wrong."""
    ring = auth_stack.ring
    return jwt.encode(claims, ring.private_key, algorithm="RS256", headers={"kid": ring.kid})


def _forgeries(auth_stack: AuthStack, account: Account, valid: str) -> dict[str, str]:
    kid = auth_stack.ring.kid
    claims = _claims(auth_stack, account)
    public_pem = RSAAlgorithm.from_jwk(auth_stack.ring.jwks["keys"][0]).public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    hs_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    hs_signature = hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()
    header, payload, signature = valid.split(".")
    elevated = json.loads(base64.urlsafe_b64decode(payload + "=="))
    elevated["roles"] = ["customer", "admin"]
    return {
        "alg none": _unsigned({"alg": "none", "typ": "JWT", "kid": kid}, claims) + ".",
        "HS256 keyed with the public key": f"{hs_input}.{_b64(hs_signature)}",
        "expired": _signed(
            auth_stack,
            _claims(auth_stack, account, iat=int(time.time()) - 3600, exp=int(time.time()) - 60),
        ),
        "wrong audience": _signed(auth_stack, _claims(auth_stack, account, aud="another-api")),
        "wrong issuer": _signed(
            auth_stack, _claims(auth_stack, account, iss="https://evil.example")
        ),
        "no jti": _signed(auth_stack, {k: v for k, v in claims.items() if k != "jti"}),
        "unknown kid": jwt.encode(
            claims, new_signing_key(), algorithm="RS256", headers={"kid": "attacker-key"}
        ),
        "own key, real kid": jwt.encode(
            claims, new_signing_key(), algorithm="RS256", headers={"kid": kid}
        ),
        "another algorithm, real kid": jwt.encode(
            claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
        ),
        "tampered claims": f"{header}.{_b64(json.dumps(elevated).encode())}.{signature}",
        "garbage": "not-a-token",
    }


@pytest.mark.parametrize("where", ["gateway", "service"])
async def test_forged_tokens_are_all_401(
    auth_stack: AuthStack, account: Account, where: str
) -> None:
    valid = (await auth_stack.tokens(account))["access_token"]
    direct = where == "service"
    assert (await auth_stack.me(valid, direct=direct)).status_code == 200
    for name, token in _forgeries(auth_stack, account, valid).items():
        response = await auth_stack.me(token, direct=direct)
        assert response.status_code == 401, name
        assert response.headers["content-type"] == "application/problem+json", name
        introspected = await auth_stack.gateway.post(
            "/api/auth/verify", json={"token": token}, headers=auth_stack.headers()
        )
        assert introspected.json()["active"] is False, name


async def test_revoked_jti_is_401_everywhere(auth_stack: AuthStack, account: Account) -> None:
    pair = await auth_stack.tokens(account)
    await auth_stack.gateway.post(
        "/api/auth/logout", json={}, headers=auth_stack.headers(token=pair["access_token"])
    )
    for direct in (False, True):
        assert (await auth_stack.me(pair["access_token"], direct=direct)).status_code == 401


async def test_jwks_publishes_rsa_2048_public_keys_only(auth_stack: AuthStack) -> None:
    response = await auth_stack.gateway.get("/.well-known/jwks.json", headers=auth_stack.headers())
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert set(key) == {"kty", "n", "e", "kid", "use", "alg"}  # no private "d", "p", "q"...
        assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
        assert RSAAlgorithm.from_jwk(key).key_size >= 2048


async def test_access_token_claims_follow_the_contract(
    auth_stack: AuthStack, account: Account
) -> None:
    token = (await auth_stack.tokens(account))["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == auth_stack.ring.kid
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "http://127.0.0.1:8001"
    assert claims["aud"] == "shop"
    assert claims["sub"] == account.id
    assert claims["roles"] == ["customer"]
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]


def _rotate(database_url: str, *options: str) -> str:
    result = CliRunner().invoke(
        cli, ["rotate-keys", *options], env={**os.environ, "AUTH_DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.output
    return result.output


async def _jwks_kids(client: httpx.AsyncClient, auth_stack: AuthStack) -> list[str]:
    response = await client.get("/.well-known/jwks.json", headers=auth_stack.headers())
    return [key["kid"] for key in response.json()["keys"]]


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    auth_stack: AuthStack, account: Account
) -> None:
    old_kid = auth_stack.ring.kid
    old = await auth_stack.tokens(account)
    await asyncio.to_thread(_rotate, auth_stack.database_url, "--now")  # a leaked key

    # Replicas pick the new key up on their next key-ring refresh.
    await eventually(lambda: _true(auth_stack.ring.kid != old_kid), timeout=15)
    new_kid = auth_stack.ring.kid
    kids = await _jwks_kids(auth_stack.direct, auth_stack)
    assert {old_kid, new_kid} <= set(kids)

    new = await auth_stack.tokens(account)
    assert jwt.get_unverified_header(new["access_token"])["kid"] == new_kid
    assert (await auth_stack.me(old["access_token"], direct=True)).status_code == 200
    assert (await auth_stack.me(new["access_token"], direct=True)).status_code == 200
    assert (await auth_stack.me(old["access_token"])).status_code == 200

    # The gateway learns the new key from the JWKS when it first sees its kid (refreshes are
    # rate-limited, so allow for its cool-down).
    async def gateway_accepts() -> bool:
        return (await auth_stack.me(new["access_token"])).status_code == 200

    await eventually(gateway_accepts, timeout=20, interval=1)

    retired = await auth_stack.db.fetchrow(
        "SELECT private_key, publish_until - retired_at AS published FROM signing_keys "
        "WHERE kid = $1",
        old_kid,
    )
    assert retired["private_key"] is None  # nothing can sign with it any more
    assert retired["published"].total_seconds() >= auth_stack.settings.access_token_ttl_seconds


async def test_a_routine_rotation_publishes_the_new_key_before_it_signs(
    auth_stack: AuthStack, account: Account
) -> None:
    """The replica that rotated signed with the new key at once, while other replicas served a
    JWKS without it: verifiers asking them refused fresh tokens for up to a refresh interval.
    Now the key is in every JWKS first, and signs only after every replica has reloaded."""
    signing_kid = auth_stack.ring.kid
    output = await asyncio.to_thread(_rotate, auth_stack.database_url)
    assert "published now, signs from" in output
    new_kid = output.split("new signing key ", 1)[1].split(":", 1)[0]

    async def published() -> bool:
        return new_kid in await _jwks_kids(auth_stack.direct, auth_stack)

    await eventually(published, timeout=15)
    fresh = await auth_stack.tokens(account)
    assert jwt.get_unverified_header(fresh["access_token"])["kid"] == signing_kid
    assert auth_stack.ring.kid == signing_kid
    row = await auth_stack.db.fetchrow(
        "SELECT activates_at - created_at AS delay, retired_at FROM signing_keys WHERE kid = $1",
        new_kid,
    )
    assert row["retired_at"] is None
    # Longer than any replica takes to reload its ring (the command's own settings may differ
    # from this test stack's one-second refresh; either way past it).
    assert row["delay"] >= keys.activation_delay(
        refresh_interval=timedelta(seconds=auth_stack.settings.key_refresh_seconds)
    )


async def _true(value: bool) -> bool:
    return value
