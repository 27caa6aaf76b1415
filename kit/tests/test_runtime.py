"""Settings, problem documents, health, token verification and signed quotes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel, ConfigDict, SecretStr
from redis.asyncio import Redis
from shopkit.app import ServiceParts, create_service
from shopkit.problems import ConflictError, responses
from shopkit.quotes import InvalidQuoteError, QuoteItem, SignedQuote, sign_quote, verify_quote
from shopkit.security import (
    DENIED_JTI_PREFIX,
    JWKS_MAX_AGE,
    CurrentUser,
    InvalidTokenError,
    OptionalUser,
    TokenVerifier,
)
from shopkit.settings import ServiceSettings, settings_config
from shopkit.testing import TestTokens, app_client

from contracts import new_id


class DemoSettings(ServiceSettings):
    model_config = settings_config("KITDEMO_")
    service_name = "orders"
    signing_secret: SecretStr = SecretStr("local_development_only-demo")


def test_service_prefix_wins_over_shared_prefix_over_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert DemoSettings().kafka_bootstrap == "127.0.0.1:9092"
    assert DemoSettings().port == 8005
    assert DemoSettings().database_url.endswith("/orders")
    monkeypatch.setenv("SHOP_KAFKA_BOOTSTRAP", "shared:9092")
    assert DemoSettings().kafka_bootstrap == "shared:9092"
    monkeypatch.setenv("KITDEMO_KAFKA_BOOTSTRAP", "mine:9092")
    assert DemoSettings().kafka_bootstrap == "mine:9092"


def test_placeholder_secrets_are_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="signing_secret"):
        DemoSettings()
    monkeypatch.setenv("KITDEMO_SIGNING_SECRET", "a-real-secret-from-the-vault-9f2c")
    assert DemoSettings().environment == "production"


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    price: int


class DuplicateThingError(ConflictError):
    slug = "duplicate-thing"
    title = "Thing already exists"


router = APIRouter()


@router.post("/things", responses=responses(DuplicateThingError))
async def create_thing(thing: Thing) -> Thing:
    if thing.name == "taken":
        raise DuplicateThingError(f"a thing named {thing.name!r} exists", name=thing.name)
    if thing.name == "boom":
        raise RuntimeError("internal detail that must not leak")
    return thing


@router.get("/things")
async def list_things() -> list[Thing]:
    return []


async def page_of(page: int = 1) -> int:
    return page


@router.get("/search")
async def search(
    page: Annotated[int, Depends(page_of)],
    limit: int = 10,
    note: str | None = None,
    sku: Annotated[list[str] | None, Query()] = None,
) -> dict[str, object]:
    return {"page": page, "limit": limit, "note": note, "sku": sku or []}


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, object]:
    return {"id": user.user_id, "admin": user.is_admin}


@router.get("/maybe-me")
async def maybe_me(user: OptionalUser) -> dict[str, object]:
    return {"id": user.user_id if user else None}


def _app() -> object:
    return create_service(
        DemoSettings(),
        title="demo",
        description="demo",
        routers=[router],
        parts=ServiceParts(redis=True),
    )


def test_the_document_tells_an_optional_token_from_a_required_one() -> None:
    # Routers are included, as in every service: the first version walked `app.routes`, which
    # holds the included routers, not their routes, and marked nothing.
    app = _app()
    assert isinstance(app, FastAPI)
    paths = app.openapi()["paths"]
    assert paths["/maybe-me"]["get"]["security"] == [{}, {"HTTPBearer": []}]
    assert paths["/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/things"]["get"]


async def test_a_one_value_query_parameter_given_twice_is_refused() -> None:
    """The last value was taken and the others never validated: `?limit=abc&limit=5` was a
    200, though the schema allows one integer. Lists keep their repeats."""
    async with app_client(_app()) as client:  # type: ignore[arg-type]
        for query in ("limit=abc&limit=5", "limit=5&limit=5", "note=a&note=b", "page=1&page=2"):
            refused = await client.get(f"/search?{query}")
            assert refused.status_code == 422, (query, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            name = query.split("=")[0]
            assert refused.json()["errors"] == [
                {
                    "loc": ["query", name],
                    "msg": "Given more than once; this parameter takes one value",
                    "type": "repeated_value",
                }
            ]
        listed = await client.get("/search?sku=a&sku=b&limit=5&page=2&note=x")
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"page": 2, "limit": 5, "note": "x", "sku": ["a", "b"]}
        assert (await client.get("/search")).json()["limit"] == 10


async def test_errors_are_problem_documents_without_internals() -> None:
    app = _app()
    async with app_client(app) as client:  # type: ignore[arg-type]
        invalid = await client.post("/things", json={"name": "x", "price": 1.5, "extra": 1})
        assert invalid.status_code == 422
        assert invalid.headers["content-type"] == "application/problem+json"
        body = invalid.json()
        assert {"type", "title", "status", "detail"} <= set(body)
        assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "price"), ("body", "extra")}

        conflict = await client.post("/things", json={"name": "taken", "price": 1})
        assert conflict.status_code == 409
        assert conflict.json()["type"].endswith("/duplicate-thing")
        assert conflict.json()["name"] == "taken"

        crash = await client.post("/things", json={"name": "boom", "price": 1})
        assert crash.status_code == 500
        assert "internal detail" not in crash.text
        assert crash.headers["content-type"] == "application/problem+json"

        missing = await client.get("/nowhere")
        assert missing.status_code == 404
        assert missing.json()["status"] == 404
        # No redirect to the path without the slash: behind the gateway its absolute URL was
        # built from the service's own address, where clients cannot go.
        slashed = await client.get("/things/")
        assert slashed.status_code == 404, slashed.headers
        assert "location" not in slashed.headers
        assert slashed.headers["content-type"] == "application/problem+json"

        not_allowed = await client.delete("/things")
        assert not_allowed.status_code == 405
        assert set(not_allowed.headers["allow"].split(", ")) >= {"GET", "POST"}

        document = (await client.get("/openapi.json")).json()
        create = document["paths"]["/things"]["post"]["responses"]
        assert set(create) >= {"200", "409", "422", "500", "default"}
        for code in ("409", "422", "500", "default"):
            assert list(create[code]["content"]) == ["application/problem+json"], code
        assert "401" in document["paths"]["/me"]["get"]["responses"]
        assert "401" not in create  # no token involved
        assert "HTTPValidationError" not in document["components"]["schemas"]

        assert (await client.get("/health/live")).json() == {"status": "ok"}
        ready = await client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok"}
        metrics = await client.get("/metrics")
        assert 'route="/things"' in metrics.text


async def test_token_verification_rejects_every_forgery() -> None:
    app = _app()
    tokens = TestTokens()
    async with app_client(app, tokens) as client:  # type: ignore[arg-type]
        user_id = new_id()
        ok = await client.get("/me", headers=tokens.headers(user_id, roles=("customer", "admin")))
        assert ok.status_code == 200 and ok.json() == {"id": user_id, "admin": True}

        public_pem = tokens._key.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
        now = int(time.time())
        claims = {
            "iss": tokens.issuer,
            "aud": tokens.audience,
            "sub": user_id,
            "roles": ["admin"],
            "iat": now,
            "exp": now + 600,
            "jti": new_id(),
        }
        unsigned = _b64({"alg": "none", "typ": "JWT", "kid": tokens.kid}) + "." + _b64(claims) + "."
        # Signed by hand: PyJWT itself refuses an asymmetric key as an HMAC secret.
        hs_input = _b64({"alg": "HS256", "typ": "JWT", "kid": tokens.kid}) + "." + _b64(claims)
        hs_mac = hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()
        hs_confused = hs_input + "." + base64.urlsafe_b64encode(hs_mac).rstrip(b"=").decode()
        forged = {
            "missing": None,
            "alg none": unsigned,
            "HS256 with the public key": hs_confused,
            "expired": tokens.mint(user_id, ttl=-60),
            "wrong audience": TestTokens.mint(tokens, user_id, aud="someone-else"),
            "wrong issuer": TestTokens.mint(tokens, user_id, iss="https://evil.example"),
            "unknown kid": TestTokens().mint(user_id),
            "garbage": "not.a.token",
        }
        for name, token in forged.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.get("/me", headers=headers)
            assert response.status_code == 401, name
            assert response.headers["content-type"] == "application/problem+json", name

        revoked = tokens.mint(user_id)
        claims_of_revoked = jwt.decode(revoked, options={"verify_signature": False})
        redis: Redis = app.state.redis  # type: ignore[attr-defined]
        await redis.set(DENIED_JTI_PREFIX + claims_of_revoked["jti"], b"1", ex=60)
        assert (
            await client.get("/me", headers={"Authorization": f"Bearer {revoked}"})
        ).status_code == 401


async def test_a_remembered_token_is_still_refused_once_revoked_expired_or_its_key_withdrawn() -> (
    None
):
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    tokens = TestTokens(issuer="i", audience="a")
    verifier = TokenVerifier(jwks_url="", issuer="i", audience="a", redis=redis)
    verifier.set_keys(tokens.jwks())
    try:
        user_id = new_id()
        token = tokens.mint(user_id)
        for _ in range(3):  # verified once, then answered from memory
            assert (await verifier.verify(token)).user_id == user_id

        jti = jwt.decode(token, options={"verify_signature": False})["jti"]
        await redis.set(DENIED_JTI_PREFIX + jti, b"1", ex=60)
        with pytest.raises(InvalidTokenError, match="revoked"):
            await verifier.verify(token)

        # Accepted within the 5 s leeway, then past it while remembered.
        nearly_expired = tokens.mint(user_id, ttl=-3)
        assert (await verifier.verify(nearly_expired)).user_id == user_id
        await asyncio.sleep(2.5)
        with pytest.raises(InvalidTokenError, match="expired"):
            await verifier.verify(nearly_expired)

        still_good = tokens.mint(user_id)
        assert (await verifier.verify(still_good)).user_id == user_id
        verifier.set_keys(TestTokens(issuer="i", audience="a").jwks())  # key rotated away
        with pytest.raises(InvalidTokenError, match="unknown key"):
            await verifier.verify(still_good)
    finally:
        await redis.aclose()


async def test_unknown_kid_refetches_jwks_at_most_once_per_cooldown() -> None:
    fetches = 0

    def jwks(request: httpx.Request) -> httpx.Response:
        nonlocal fetches
        fetches += 1
        return httpx.Response(200, json={"keys": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(jwks)) as http:
        verifier = TokenVerifier(
            jwks_url="http://auth.test/jwks", issuer="i", audience="a", http=http
        )
        for _ in range(5):  # five tokens with kids nobody published
            with pytest.raises(InvalidTokenError, match="unknown key"):
                await verifier.verify(TestTokens(issuer="i", audience="a").mint())
    assert fetches == 1


async def test_a_key_no_longer_published_stops_verifying_without_an_unknown_kid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key set was fetched again only for a kid it did not know: a key auth withdrew (a
    leaked one) kept verifying its tokens in every other service until they restarted."""
    old, new = TestTokens(issuer="i", audience="a"), TestTokens(issuer="i", audience="a")
    published = {"keys": [*old.jwks()["keys"], *new.jwks()["keys"]]}

    def jwks(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=published)

    clock = [1_000.0]
    monkeypatch.setattr("shopkit.security.time.monotonic", lambda: clock[0])
    async with httpx.AsyncClient(transport=httpx.MockTransport(jwks)) as http:
        verifier = TokenVerifier(
            jwks_url="http://auth.test/jwks", issuer="i", audience="a", http=http
        )
        leaked = old.mint(new_id())
        assert (await verifier.verify(leaked)).token_id
        published = new.jwks()  # auth withdrew the old key
        clock[0] += JWKS_MAX_AGE / 2
        assert (await verifier.verify(leaked)).token_id  # within the set's trusted age
        clock[0] += JWKS_MAX_AGE
        with pytest.raises(InvalidTokenError, match="unknown key"):
            await verifier.verify(leaked)
        assert (await verifier.verify(new.mint(new_id()))).token_id


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _quote(**overrides: object) -> SignedQuote:
    fields: dict[str, object] = {
        "carrier": "correios",
        "service": "PAC",
        "price": 2590,
        "currency": "BRL",
        "estimated_days": 6,
        "destination_cep": "01310100",
        "items": (QuoteItem(sku="A", quantity=2),),
        "expires_at": datetime.now(UTC) + timedelta(minutes=30),
    }
    fields.update(overrides)
    return SignedQuote.model_validate(fields)


def test_signed_quotes_verify_and_reject_tampering() -> None:
    quote_id = sign_quote(_quote(), "secret")
    verified = verify_quote(quote_id, "secret")
    assert verified.price == 2590 and verified.quote_id == quote_id
    assert verified.covers([("A", 2)]) and not verified.covers([("A", 3)])
    assert not verified.is_expired()
    assert _quote(expires_at=datetime.now(UTC) - timedelta(seconds=1)).is_expired()

    payload, signature = quote_id.split(".")
    cheaper = json.loads(base64.urlsafe_b64decode(payload + "=="))
    cheaper["price"] = 1
    tampered = base64.urlsafe_b64encode(json.dumps(cheaper).encode()).rstrip(b"=").decode()
    for bad in (f"{tampered}.{signature}", "nonsense", quote_id + "x"):
        with pytest.raises(InvalidQuoteError):
            verify_quote(bad, "secret")
    with pytest.raises(InvalidQuoteError):
        verify_quote(quote_id, "another-secret")
    forged_sig = hmac.new(
        b"guess", base64.urlsafe_b64decode(payload + "=="), hashlib.sha256
    ).digest()
    with pytest.raises(InvalidQuoteError):
        verify_quote(
            payload + "." + base64.urlsafe_b64encode(forged_sig).decode().rstrip("="), "secret"
        )


async def test_kafka_credentials_reach_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from shopkit import kafka

    assert DemoSettings().kafka_security().client_options() == {"security_protocol": "PLAINTEXT"}
    monkeypatch.setenv("SHOP_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SHOP_KAFKA_SASL_USERNAME", "orders")
    monkeypatch.setenv("SHOP_KAFKA_SASL_PASSWORD", "s3cret")
    options = DemoSettings().kafka_security().client_options()
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "orders"
    assert options["sasl_plain_password"] == "s3cret"
    assert options["ssl_context"] is not None
    kafka.configure_security(DemoSettings().kafka_security())
    try:
        producer = kafka.create_producer("broker:9096", client_id="t")
        assert producer.client._security_protocol == "SASL_SSL"
        assert producer.client._sasl_plain_username == "orders"
    finally:
        kafka.configure_security(kafka.KafkaSecurity())


async def test_revocation_check_fails_closed_when_redis_is_unreachable() -> None:
    from shopkit.problems import ServiceUnavailableError

    tokens = TestTokens(issuer="i", audience="a")
    dead = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    verifier = TokenVerifier(jwks_url="", issuer="i", audience="a", redis=dead)
    verifier.set_keys(tokens.jwks())
    with pytest.raises(ServiceUnavailableError):
        await verifier.verify(tokens.mint())
    await dead.aclose()
