"""Forged access tokens, through the gateway: each is a 401 problem, on every kind of route.

The forgeries that need a real signature (expired, wrong audience or issuer, revoked) are
signed with auth's own current key, read from its database with the local settings: the
gateway must refuse them for their claims, not merely for an unknown signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from auth_service import keys
from auth_service.config import AuthSettings
from auth_service.crypto import SecretBox
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import RSAAlgorithm
from shop_cli.client import Session, login, new_customer, register, unique_email
from shopkit.security import new_signing_key
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from contracts import new_id

# Protected routes of four services: the gateway decides before any of them is asked.
PROTECTED = ("/api/auth/me", "/api/orders", "/api/users/me", "/api/notifications")


@dataclass
class Signer:
    kid: str
    key: rsa.RSAPrivateKey
    issuer: str
    audience: str

    def claims(self, subject: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "roles": ["customer"],
            "iat": now,
            "exp": now + 300,
            "jti": new_id(),
            **overrides,
        }

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": kid or self.kid})


@pytest.fixture(scope="module")
async def signer() -> Signer:
    settings = AuthSettings()
    engine = create_async_engine(settings.database_url)
    try:
        async with async_sessionmaker(engine)() as session:
            ring = await keys.load(session, box=SecretBox(settings.secret_key.get_secret_value()))
    finally:
        await engine.dispose()
    return Signer(ring.kid, ring.private_key, settings.jwt_issuer, settings.jwt_audience)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)]
    )


async def _refused(http: httpx.AsyncClient, token: str) -> None:
    for path in PROTECTED:
        response = await http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_the_genuine_token_works(http: httpx.AsyncClient, customer: Session) -> None:
    """The control: what the forgeries below change is what makes them fail."""
    for path in PROTECTED:
        assert (await http.get(path, headers=customer.headers)).status_code == 200, path


async def test_alg_none_is_refused(http: httpx.AsyncClient, customer: Session) -> None:
    claims = jwt.decode(customer.access_token, options={"verify_signature": False})
    claims["roles"] = ["customer", "admin"]
    for alg in ("none", "None", "NONE"):
        await _refused(http, _unsigned({"alg": alg, "typ": "JWT"}, claims))
        kid = jwt.get_unverified_header(customer.access_token)["kid"]
        await _refused(http, _unsigned({"alg": alg, "kid": kid}, claims))


async def test_hs256_signed_with_the_public_key_is_refused(
    http: httpx.AsyncClient, customer: Session
) -> None:
    """Algorithm confusion: the published key used as an HMAC secret."""
    jwks = (await http.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(customer.access_token)["kid"]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(customer.access_token, options={"verify_signature": False})
    claims["roles"] = ["customer", "admin"]
    header = {"alg": "HS256", "kid": kid, "typ": "JWT"}
    public_key = RSAAlgorithm.from_jwk(jwk)
    for secret in (
        json.dumps(jwk).encode(),
        public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        public_key.public_bytes(Encoding.PEM, PublicFormat.PKCS1),
        base64.urlsafe_b64decode(jwk["n"] + "=="),
    ):
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        await _refused(http, f"{signing_input}.{_b64(mac)}")


async def test_expired_token_is_refused(
    http: httpx.AsyncClient, customer: Session, signer: Signer
) -> None:
    long_ago = int(time.time()) - 3600
    expired = signer.claims(customer.user_id, iat=long_ago - 900, exp=long_ago)
    await _refused(http, signer.sign(expired))
    assert (await http.get("/api/auth/me", headers=customer.headers)).status_code == 200


async def test_wrong_audience_or_issuer_is_refused(
    http: httpx.AsyncClient, customer: Session, signer: Signer
) -> None:
    for overrides in (
        {"aud": "another-shop"},
        {"aud": ["another-shop"]},
        {"iss": "https://evil.example"},
        {"iss": signer.issuer + "/"},
    ):
        await _refused(http, signer.sign(signer.claims(customer.user_id, **overrides)))
    # The same key with the right claims is accepted: the claims are what failed above.
    good = signer.sign(signer.claims(customer.user_id))
    assert (await http.get("/api/auth/me", headers={"Authorization": f"Bearer {good}"})).json()[
        "id"
    ] == customer.user_id


async def test_missing_claims_are_refused(
    http: httpx.AsyncClient, customer: Session, signer: Signer
) -> None:
    for claim in ("exp", "jti", "sub", "aud", "iss"):
        claims = signer.claims(customer.user_id)
        del claims[claim]
        await _refused(http, signer.sign(claims))


async def test_unknown_kid_is_refused(
    http: httpx.AsyncClient, customer: Session, signer: Signer
) -> None:
    stranger = Signer(f"attacker-{new_id()}", new_signing_key(), "", "")
    claims = signer.claims(customer.user_id, roles=["customer", "admin"])
    await _refused(http, stranger.sign(claims))
    # A foreign key presenting the real kid fails the signature.
    await _refused(http, stranger.sign(claims, kid=signer.kid))
    # So does another algorithm, even one the platform once used.
    other = jwt.encode(
        claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": signer.kid}
    )
    await _refused(http, other)


async def test_revoked_jti_is_refused(http: httpx.AsyncClient) -> None:
    email, password = unique_email("revoked"), "Revoked-passphrase-9"
    await register(http, email, password, "Rita Revoked")
    session = await login(http, email, password)
    assert (await http.get("/api/orders", headers=session.headers)).status_code == 200
    logout = await http.post(
        "/api/auth/logout", json={"refresh_token": session.refresh_token}, headers=session.headers
    )
    assert logout.status_code == 204
    await _refused(http, session.access_token)


async def test_tampered_payload_is_refused(http: httpx.AsyncClient, customer: Session) -> None:
    header, payload, signature = customer.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    for change in (
        {"roles": ["customer", "admin"]},
        {"sub": new_id()},
        {"exp": claims["exp"] + 86400},
    ):
        forged = _b64(json.dumps({**claims, **change}).encode())
        await _refused(http, f"{header}.{forged}.{signature}")
    await _refused(http, f"{header}.{payload}.{signature[:-4]}AAAA")
    await _refused(http, "not-a-token")
    await _refused(http, f"{header}.{payload}")


async def test_forged_admin_token_opens_no_admin_route(
    http: httpx.AsyncClient, signer: Signer
) -> None:
    """A customer with a self-made admin token: every admin route is 401, none is 200."""
    customer = await new_customer(http)
    stranger = Signer(signer.kid, new_signing_key(), signer.issuer, signer.audience)
    token = stranger.sign(stranger.claims(customer.user_id, roles=["customer", "admin"]))
    for path in ("/api/orders/admin", "/api/coupons", "/api/inventory", "/api/payments/reviews"):
        response = await http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (path, response.text)
