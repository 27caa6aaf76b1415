"""A real gateway in front of real upstream servers on ephemeral ports, real Redis."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
from gateway.app import build_app
from gateway.config import BudgetLimits, GatewaySettings
from gateway.testing import free_port, serve
from shopkit.testing import TestTokens, app_client, eventually, unique_suffix

from .upstreams import upstream_app

SLOW_SERVICE = "notifications"
DOWN_SERVICE = "users"
UPSTREAM_TIMEOUT = 0.5
MAX_BODY = 64 * 1024
CORS_ORIGIN = "https://shop.example"

TEST_LIMITS = {
    "auth": BudgetLimits(per_ip=5, per_user=50),
    "checkout": BudgetLimits(per_ip=50, per_user=3),
    "read": BudgetLimits(per_ip=1000, per_user=1000),
    "write": BudgetLimits(per_ip=1000, per_user=1000),
    "webhook": BudgetLimits(per_ip=1000, per_user=1000),
}


@dataclass
class Stack:
    client: httpx.AsyncClient
    """Talks to the gateway as a client behind a trusted load balancer (X-Forwarded-For
    is believed, so each test can be its own client IP)."""
    tokens: TestTokens
    upstreams: dict[str, str]
    settings: GatewaySettings

    def headers(
        self, *, ip: str | None = None, user: str | None = None, **extra: str
    ) -> dict[str, str]:
        headers = {"X-Forwarded-For": ip or random_ip()}
        if user is not None:
            headers["Authorization"] = f"Bearer {self.tokens.mint(user)}"
        headers.update(extra)
        return headers


def random_ip() -> str:
    """A client address from TEST-NET-3 that no other test uses."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"


def gateway_settings(upstreams: dict[str, str], **overrides: object) -> GatewaySettings:
    values: dict[str, object] = {
        "upstreams": upstreams,
        "jwks_url": upstreams["auth"] + "/.well-known/jwks.json",
        "timeouts": {SLOW_SERVICE: UPSTREAM_TIMEOUT},
        "max_body_bytes": MAX_BODY,
        "trusted_proxies": ["127.0.0.1/32"],
        "rate_limits": TEST_LIMITS,
        "redis_namespace": f"test-{unique_suffix()}:",
        "edge_purge_channel": f"test-{unique_suffix()}:edge:purge",
        "cors_origins": [CORS_ORIGIN],
        "openapi_cache_seconds": 0,
        "relay_enabled": False,
        "consumers_enabled": False,
    }
    values.update(overrides)
    return GatewaySettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tokens() -> TestTokens:
    return TestTokens()


@pytest.fixture(scope="session")
async def upstreams(tokens: TestTokens) -> AsyncIterator[dict[str, str]]:
    services = ["auth", "catalog", "inventory", "orders", "payments", "shipping", SLOW_SERVICE]
    async with AsyncExitStack() as stack:
        urls = {
            service: await stack.enter_async_context(
                serve(upstream_app(service, jwks=tokens.jwks() if service == "auth" else None))
            )
            for service in services
        }
        urls[DOWN_SERVICE] = f"http://127.0.0.1:{free_port()}"
        yield urls


@pytest.fixture(scope="session", params=["aiohttp", "httpcore"])
async def stack(
    upstreams: dict[str, str], tokens: TestTokens, request: pytest.FixtureRequest
) -> AsyncIterator[Stack]:
    """The gateway, once per connection pool it can run on."""
    settings = gateway_settings(upstreams, upstream_transport=request.param)
    app = build_app(settings)
    async with app_client(app) as client:
        # The edge cache serves once its purge subscription is confirmed, just after start-up.
        async def subscribed() -> bool:
            return bool(app.state.gateway.edge.live)

        await eventually(subscribed, timeout=10, interval=0.01)
        yield Stack(client=client, tokens=tokens, upstreams=upstreams, settings=settings)


@pytest.fixture
def make_gateway(
    upstreams: dict[str, str],
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """A separate gateway with other settings, for tests that need their own."""

    def make(**overrides: object) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return app_client(build_app(gateway_settings(upstreams, **overrides)))

    return make
