"""The gateway's rate limits at their default budgets.

The local stack runs its gateway with every budget multiplied by GATEWAY_RATE_LIMIT_SCALE=1000
(load tests and demos share one address), so the defaults are proven here on a gateway this
module starts itself: default settings, an ephemeral port, in front of the real services, with
counters of its own in Redis. Clients reach it from loopback addresses of their own, so
budgets per address and per user can be told apart.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from gateway.app import build_app
from gateway.config import BudgetLimits, GatewaySettings, _default_rate_limits
from shop_cli.client import DEMO_ADDRESS, Session, new_customer

from .conftest import relay_client
from .loopback import LoopbackRelay, fresh_loopback_ip

DEFAULT_BUDGETS = {
    "auth": BudgetLimits(per_ip=30, per_user=30),
    "checkout": BudgetLimits(per_ip=20, per_user=10),
    "read": BudgetLimits(per_ip=600, per_user=600),
    "write": BudgetLimits(per_ip=120, per_user=120),
    "webhook": BudgetLimits(per_ip=1200, per_user=1200),
}
BATCH = 25


@dataclass
class LimitedGateway:
    settings: GatewaySettings
    port: int
    relays: list[LoopbackRelay]

    async def client(self) -> httpx.AsyncClient:
        """A client reaching this gateway from a fresh loopback address of its own."""
        relay = LoopbackRelay("127.0.0.1", self.port, fresh_loopback_ip())
        await relay.start()
        self.relays.append(relay)
        return relay_client(relay)


@pytest.fixture(scope="module")
async def gateway() -> AsyncIterator[LimitedGateway]:
    # The defaults spelled out, so that a GATEWAY_RATE_LIMIT_SCALE or GATEWAY_RATE_LIMITS in the
    # environment of the test run cannot change what is proven; only the Redis key prefix is
    # this run's own (fresh counters, nothing shared with the stack's gateway).
    settings = GatewaySettings(
        rate_limit_enabled=True,
        rate_limit_scale=1.0,
        rate_limit_window_seconds=60,
        rate_limits={name: limits.model_copy() for name, limits in DEFAULT_BUDGETS.items()},
        trusted_proxies=[],
        redis_namespace=f"security-{secrets.token_hex(6)}:",
    )
    assert settings.rate_limits == _default_rate_limits()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(settings),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the gateway did not start"
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    limited = LimitedGateway(settings, port, [])
    try:
        yield limited
    finally:
        for relay in limited.relays:
            await relay.stop()
        server.should_exit = True
        await serving


async def _spend(count: int, call: Callable[[], Awaitable[httpx.Response]]) -> list[httpx.Response]:
    responses: list[httpx.Response] = []
    for start in range(0, count, BATCH):
        responses += await asyncio.gather(*(call() for _ in range(min(BATCH, count - start))))
    return responses


async def _room_in_window(gateway: LimitedGateway, seconds: float) -> None:
    """Start in a window with `seconds` left: windows are aligned to the clock, and a spend that
    straddles two of them is weighed by the sliding estimate (the previous window's share
    fades as the new one runs), so its last request could be admitted at the limit."""
    window = gateway.settings.rate_limit_window_seconds
    left = window - time.time() % window
    if left < seconds:
        await asyncio.sleep(left + 0.05)


ROOM = 30
"""Seconds left in the window before spending the auth, write or checkout budget: under half
a second when idle, so even a loaded machine's spend cannot reach the next window."""
READ_ROOM = 45
"""The same for the read budgets' 1200 requests and a registration (about 6 s when idle)."""


def _refused(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/rate-limited")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert response.headers["ratelimit-policy"] == f"{limit};w=60"
    assert 1 <= int(response.headers["ratelimit-reset"]) <= 60


def _admitted(responses: list[httpx.Response]) -> None:
    statuses = {r.status_code for r in responses}
    assert 429 not in statuses, statuses
    assert all(r.status_code < 500 for r in responses), statuses


def test_the_defaults_are_the_documented_budgets() -> None:
    settings = GatewaySettings(rate_limit_scale=1.0)
    for name, limits in DEFAULT_BUDGETS.items():
        assert settings.limits_for(name) == limits
    assert settings.rate_limit_window_seconds == 60


async def test_auth_budget_per_address(gateway: LimitedGateway) -> None:
    await _room_in_window(gateway, ROOM)
    limit = gateway.settings.limits_for("auth").per_ip
    async with await gateway.client() as guesser, await gateway.client() as neighbour:

        def verify(client: httpx.AsyncClient) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: client.post("/api/auth/verify", json={"token": "guess"})

        spent = await _spend(limit, verify(guesser))
        _admitted(spent)
        assert {r.json()["active"] for r in spent} == {False}
        remaining = sorted(int(r.headers["ratelimit-remaining"]) for r in spent)
        assert remaining == list(range(limit))  # each answer says what is left
        _refused(await verify(guesser)(), limit)
        # The client cannot pick another address at the edge...
        spoofed = await guesser.post(
            "/api/auth/verify",
            json={"token": "guess"},
            headers={"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7"},
        )
        _refused(spoofed, limit)
        # ... while another address, and another budget of the same one, are untouched.
        assert (await verify(neighbour)()).status_code == 200
        assert (await guesser.get("/api/products", params={"limit": 1})).status_code == 200


async def test_checkout_budget_per_user_and_per_address(gateway: LimitedGateway) -> None:
    per_user = gateway.settings.limits_for("checkout").per_user
    per_ip = gateway.settings.limits_for("checkout").per_ip
    async with (
        await gateway.client() as home,
        await gateway.client() as phone,
    ):
        shoppers = [await new_customer(home) for _ in range(3)]
        # After the registrations (slow password hashing, counted in the auth budget only).
        await _room_in_window(gateway, ROOM)

        def checkout(
            session: Session, client: httpx.AsyncClient
        ) -> Callable[[], Awaitable[httpx.Response]]:
            body = {
                "shipping_address": DEMO_ADDRESS,
                "shipping_quote_id": "no.quote",
                "payment_method_id": "pm_card_visa",
            }
            return lambda: client.post(
                "/api/orders",
                json=body,
                headers={**session.headers, "Idempotency-Key": secrets.token_hex(16)},
            )

        first, second, third = shoppers
        spent = await _spend(per_user, checkout(first, home))
        _admitted(spent)
        assert {r.status_code for r in spent} == {409}  # an empty cart: the service answered
        _refused(await checkout(first, home)(), per_user)
        # The budget follows the user to another address.
        _refused(await checkout(first, phone)(), per_user)
        # A second user at the same address has a budget of their own, until the address's is
        # spent: per_user + per_user requests now counted for `home`.
        _admitted(await _spend(per_ip - per_user, checkout(second, home)))
        _refused(await checkout(third, home)(), per_ip)
        assert (await checkout(third, phone)()).status_code == 409


async def test_write_budget_per_address(gateway: LimitedGateway) -> None:
    await _room_in_window(gateway, ROOM)
    limit = gateway.settings.limits_for("write").per_ip
    async with await gateway.client() as client:

        def add() -> Awaitable[httpx.Response]:
            # Refused by the service (quantity 0), so no cart is made, but counted at the edge.
            return client.post("/api/cart/items", json={"sku": "SEC-NONE", "quantity": 0})

        spent = await _spend(limit, add)
        _admitted(spent)
        assert {r.status_code for r in spent} == {422}
        _refused(await add(), limit)


async def test_read_budgets_per_address_and_per_user(gateway: LimitedGateway) -> None:
    await _room_in_window(gateway, READ_ROOM)
    limit = gateway.settings.limits_for("read").per_ip
    assert gateway.settings.limits_for("read").per_user == limit
    async with (
        await gateway.client() as browser,
        await gateway.client() as first,
        await gateway.client() as second,
        await gateway.client() as third,
    ):

        def stock(client: httpx.AsyncClient) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: client.get("/api/inventory/SEC-NO-SUCH-SKU")

        spent = await _spend(limit, stock(browser))
        _admitted(spent)
        _refused(await stock(browser)(), limit)

        # One user from two addresses: the user's budget runs out, neither address's does.
        reader = await new_customer(first)  # its login read /api/auth/me once already

        def me(client: httpx.AsyncClient) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: client.get("/api/auth/me", headers=reader.headers)

        _admitted(await _spend(limit // 2 - 1, me(first)))
        _admitted(await _spend(limit - limit // 2, me(second)))
        _refused(await me(third)(), limit)
        assert (await stock(third)()).status_code == 404  # the address itself has budget left
