"""The auth service under uvicorn (fresh migrated database, real Redis and Kafka), reached
through the real gateway, the way clients reach it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from auth_service.app import build_app as build_auth
from auth_service.config import AuthSettings
from auth_service.keys import KeyRing
from auth_service.runtime import Runtime
from fastapi import FastAPI
from gateway.app import build_app as build_gateway
from gateway.config import GatewaySettings
from gateway.testing import free_port, serve
from shopkit.relay import asyncpg_dsn
from shopkit.testing import app_client, eventually, kafka_namespace, migrated_database

from contracts import new_id

PASSWORD = "correct horse battery staple"


def random_ip() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"


def new_email() -> str:
    return f"user-{new_id()}@example.com"


@dataclass
class Account:
    id: str
    email: str
    password: str
    ip: str


@dataclass
class AuthStack:
    gateway: httpx.AsyncClient
    """Through the gateway, as a client behind a trusted load balancer (X-Forwarded-For is
    believed, so every test can be its own client address)."""
    direct: httpx.AsyncClient
    """Straight to the auth service: it must verify tokens itself, too."""
    app: FastAPI
    settings: AuthSettings
    database_url: str
    url: str
    namespace: str
    db: asyncpg.Pool

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.auth
        return runtime

    @property
    def ring(self) -> KeyRing:
        return self.runtime.keyring.ring

    @staticmethod
    def headers(*, ip: str | None = None, token: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"X-Forwarded-For": ip or random_ip(), "User-Agent": "auth-tests/1.0"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        headers.update(extra)
        return headers

    async def register(self, *, email: str | None = None, password: str = PASSWORD) -> Account:
        email = email or new_email()
        ip = random_ip()
        response = await self.gateway.post(
            "/api/auth/register",
            json={"email": email, "password": password, "name": "Test"},
            headers=self.headers(ip=ip),
        )
        assert response.status_code == 201, response.text
        return Account(id=response.json()["id"], email=email, password=password, ip=ip)

    async def login(self, account: Account, **extra: Any) -> httpx.Response:
        return await self.gateway.post(
            "/api/auth/login",
            json={"email": account.email, "password": account.password, **extra},
            headers=self.headers(ip=account.ip),
        )

    async def tokens(self, account: Account) -> dict[str, Any]:
        response = await self.login(account)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def me(self, token: str, *, direct: bool = False) -> httpx.Response:
        client = self.direct if direct else self.gateway
        return await client.get("/api/auth/me", headers=self.headers(token=token))

    @asynccontextmanager
    async def row_locked(self, table: str, row_id: str) -> AsyncIterator[None]:
        """Hold a row's lock (`FOR UPDATE`) while the block runs: transactions that need it
        queue behind it and get it in the order they asked, so a race runs the same way every
        time instead of when the timing happens to be right."""
        async with self.db.acquire() as connection, connection.transaction():
            await connection.execute(f"SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE", row_id)
            yield

    async def lock_waiters(self, count: int) -> None:
        """Return once `count` transactions of this database wait for a row lock."""

        async def waiting() -> bool:
            found: int = await self.db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple')"
            )
            return found >= count

        await eventually(waiting, timeout=20, interval=0.05)


def auth_settings(database_url: str, namespace: str, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_namespace": namespace,
        "redis_namespace": namespace,
        "consumers_enabled": False,
        "key_refresh_seconds": 1,
    }
    values.update(overrides)
    return AuthSettings(**values)


@pytest.fixture(scope="session")
async def auth_stack() -> AsyncIterator[AuthStack]:
    namespace = kafka_namespace()
    async with migrated_database("auth") as database_url:
        # Consumers on: the account deletion tests publish to this run's `users.events`.
        settings = auth_settings(database_url, namespace, consumers_enabled=True)
        app = build_auth(settings)
        async with serve(app) as url:
            gateway_settings = GatewaySettings(
                upstreams={"auth": url, "orders": f"http://127.0.0.1:{free_port()}"},
                jwks_url=f"{url}/.well-known/jwks.json",
                trusted_proxies=["127.0.0.1/32"],
                rate_limit_scale=100,  # these tests exercise auth's own lockout, not the gateway's
                redis_namespace=namespace,
                relay_enabled=False,
                consumers_enabled=False,
            )
            pool = await asyncpg.create_pool(asyncpg_dsn(database_url), min_size=1, max_size=3)
            try:
                async with (
                    app_client(build_gateway(gateway_settings)) as gateway,
                    httpx.AsyncClient(base_url=url) as direct,
                ):
                    yield AuthStack(
                        gateway=gateway,
                        direct=direct,
                        app=app,
                        settings=settings,
                        database_url=database_url,
                        url=url,
                        namespace=namespace,
                        db=pool,
                    )
            finally:
                await pool.close()


@pytest.fixture
async def account(auth_stack: AuthStack) -> Account:
    return await auth_stack.register()
