"""Helpers for tests against the real local stack (no mocks of our own infrastructure).

Isolation on shared servers: each test run gets fresh PostgreSQL databases, its own Kafka
namespace (topic and group prefix), and tokens signed by a throwaway key the app trusts.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import jwt
from aiokafka.admin import AIOKafkaAdminClient
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from jwt.algorithms import OKPAlgorithm

from contracts import new_id
from shopkit.relay import asyncpg_dsn
from shopkit.security import ALGORITHM, TokenVerifier
from shopkit.settings import local_database_url

ADMIN_DSN = "postgresql://shop:shop@127.0.0.1:5432/postgres"
KAFKA_BOOTSTRAP = "127.0.0.1:9092"


def unique_suffix() -> str:
    return f"{int(time.time())}_{secrets.token_hex(3)}"


def kafka_namespace() -> str:
    """A topic/group prefix no other test run uses, e.g. `t1764383012_a1b2c3.`."""
    return f"t{unique_suffix()}."


async def create_database(prefix: str) -> str:
    """Create an empty database named `<prefix>_<unique>`; returns its SQLAlchemy URL."""
    name = f"{prefix}_{unique_suffix()}".lower()
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return local_database_url(name)


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[-1]
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def migrate(service: str, url: str) -> None:
    """Apply a service's Alembic history to `url` (in a thread: Alembic runs its own loop)."""
    from shopkit.migrations import upgrade

    await asyncio.to_thread(upgrade, service, url)


@asynccontextmanager
async def migrated_database(service: str) -> AsyncIterator[str]:
    url = await create_database(f"test_{service}")
    try:
        await migrate(service, url)
        yield url
    finally:
        await drop_database(url)


async def fetchval(url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


class TestTokens:
    """Signs access tokens the way the auth service does, with a key only this test knows."""

    __test__ = False  # not a pytest test class

    def __init__(self, issuer: str = "http://127.0.0.1:8001", audience: str = "shop") -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = f"test-{secrets.token_hex(4)}"
        self._key = Ed25519PrivateKey.generate()

    def jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": [jwk]}

    def mint(
        self,
        user_id: str | None = None,
        roles: tuple[str, ...] = ("customer",),
        ttl: int = 900,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id or new_id(),
            "roles": list(roles),
            "iat": now,
            "exp": now + ttl,
            "jti": new_id(),
            **claims,
        }
        return jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def headers(
        self, user_id: str | None = None, roles: tuple[str, ...] = ("customer",)
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(user_id, roles)}"}

    def trust(self, app: FastAPI) -> None:
        """Make a started app's verifier accept these tokens."""
        verifier: TokenVerifier = app.state.token_verifier
        verifier.set_keys(self.jwks())


@asynccontextmanager
async def app_client(
    app: FastAPI, tokens: TestTokens | None = None, startup_timeout: float = 30
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (database, relay, consumers) and talk to it in-process."""
    async with LifespanManager(
        app, startup_timeout=startup_timeout, shutdown_timeout=30
    ) as manager:
        if tokens is not None:
            tokens.trust(app)
        # Unhandled errors are answered as problem documents; do not re-raise them in the test.
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def eventually(check: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll an async predicate until it returns a truthy value; returns it or fails."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


_NAMESPACE_STAMP = re.compile(r"^t(\d{10})_[0-9a-f]{6}\.")


async def delete_stale_test_topics(
    bootstrap: str = KAFKA_BOOTSTRAP, older_than: float = 1800
) -> int:
    """Delete topics of test namespaces created more than `older_than` seconds ago.

    Every test run makes its own namespaced topics; left alone they pile up into thousands of
    partitions that slow the broker's start. Recent namespaces are kept: they may be in use.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="shop-test-cleanup")
    await admin.start()
    try:
        cutoff = time.time() - older_than
        stale = [
            topic
            for topic in await admin.list_topics()
            if (match := _NAMESPACE_STAMP.match(topic)) and int(match.group(1)) < cutoff
        ]
        for start in range(0, len(stale), 200):
            await admin.delete_topics(stale[start : start + 200])
        return len(stale)
    finally:
        await admin.close()
