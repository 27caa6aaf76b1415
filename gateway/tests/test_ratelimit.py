"""Rate limits in real Redis: budgets per IP and per user, 429 with Retry-After and RateLimit-*."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from gateway.config import BudgetLimits
from gateway.ratelimit import Identity, RateLimiter
from gateway.testing import free_port
from redis.asyncio import Redis
from shopkit.settings import ServiceSettings
from shopkit.testing import eventually, unique_suffix

from contracts import new_id
from gateway import ratelimit

from .conftest import TEST_LIMITS, Stack, random_ip


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-remaining"] == "0"
    assert int(response.headers["ratelimit-limit"]) >= 1
    assert "x-upstream" not in response.headers  # refused before reaching the service


async def test_auth_budget_per_ip_runs_out_with_429_and_headers(stack: Stack) -> None:
    ip = random_ip()
    limit = TEST_LIMITS["auth"].per_ip
    remaining = []
    for _ in range(limit):
        response = await stack.client.post("/api/auth/login", json={}, headers=stack.headers(ip=ip))
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == str(limit)
        assert response.headers["ratelimit-policy"] == f"{limit};w=60"
        remaining.append(int(response.headers["ratelimit-remaining"]))
    assert remaining == sorted(remaining, reverse=True)
    assert remaining[-1] == 0

    refused = await stack.client.post("/api/auth/login", json={}, headers=stack.headers(ip=ip))
    assert_rate_limited(refused)

    # Other budgets of the same client are separate: reads still pass.
    read = await stack.client.get("/api/products", headers=stack.headers(ip=ip))
    assert read.status_code == 200
    # And another client is not affected.
    other = await stack.client.post("/api/auth/login", json={}, headers=stack.headers())
    assert other.status_code == 200


async def test_checkout_budget_is_per_user_across_addresses(stack: Stack) -> None:
    user = new_id()
    limit = TEST_LIMITS["checkout"].per_user
    for _ in range(limit):
        response = await stack.client.post(
            "/api/orders", json={}, headers=stack.headers(user=user)
        )  # new IP each time
        assert response.status_code == 200
    assert_rate_limited(
        await stack.client.post("/api/orders", json={}, headers=stack.headers(user=user))
    )
    # The same user may still read orders, and another user may check out.
    assert (await stack.client.get("/api/orders/o-1", headers=stack.headers(user=user))).is_success
    other = await stack.client.post("/api/orders", json={}, headers=stack.headers(user=new_id()))
    assert other.status_code == 200


async def test_a_client_cannot_escape_its_limit_by_writing_x_forwarded_for(
    make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    # This gateway trusts no proxy, like one at the edge: the peer address is the client.
    async with make_gateway(trusted_proxies=[]) as gateway:
        limit = TEST_LIMITS["auth"].per_ip
        for _ in range(limit):
            response = await gateway.post(
                "/api/auth/login", json={}, headers={"X-Forwarded-For": random_ip()}
            )
            assert response.status_code == 200
        refused = await gateway.post(
            "/api/auth/login", json={}, headers={"X-Forwarded-For": random_ip()}
        )
        assert_rate_limited(refused)


async def test_a_client_cannot_choose_its_address_in_a_header_line_of_its_own(
    make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    """Behind a load balancer that appends its own X-Forwarded-For line, the client's line
    comes first: every request naming a fresh address there still spends one budget."""
    async with make_gateway() as gateway:
        limit = TEST_LIMITS["auth"].per_ip
        statuses = [
            (
                await gateway.post(
                    "/api/auth/login",
                    json={},
                    headers=[("X-Forwarded-For", random_ip()), ("X-Forwarded-For", "203.0.113.9")],
                )
            ).status_code
            for _ in range(limit + 1)
        ]
    assert statuses == [200] * limit + [429]


PER_IP_FIVE = {**TEST_LIMITS, "read": BudgetLimits(per_ip=5, per_user=5)}


def _random_slash_64() -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network((0x2001_0DB8 << 96 | secrets.randbits(32) << 64, 64))


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/auth/login"), ("GET", "/api/products")],  # counted in Redis; in memory
)
async def test_an_ipv6_client_is_counted_by_its_slash_64(
    make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    method: str,
    path: str,
) -> None:
    """One host is given a whole /64: walking through its addresses is still one client."""
    network = _random_slash_64()
    async with make_gateway(rate_limits=PER_IP_FIVE) as gateway:

        async def status(address: ipaddress.IPv6Address) -> int:
            headers = {"X-Forwarded-For": str(address)}
            return (await gateway.request(method, path, headers=headers)).status_code

        statuses = [await status(network[i + 1]) for i in range(6)]
        assert statuses == [200] * 5 + [429]
        next_network = ipaddress.IPv6Network((int(network.network_address) + 2**64, 64))
        assert await status(next_network[1]) == 200  # the neighbouring /64 is someone else


async def test_an_ipv4_mapped_address_is_the_same_client_as_the_ipv4_one(
    make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    ip = random_ip()
    limit = TEST_LIMITS["auth"].per_ip
    async with make_gateway() as gateway:
        statuses = [
            (
                await gateway.post(
                    "/api/auth/login",
                    json={},
                    headers={"X-Forwarded-For": f"::ffff:{ip}" if i % 2 else ip},
                )
            ).status_code
            for i in range(limit + 1)
        ]
    assert statuses == [200] * limit + [429]


async def test_limits_scale_with_one_setting(
    make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with make_gateway(rate_limit_scale=3) as gateway:
        response = await gateway.post(
            "/api/auth/login", json={}, headers={"X-Forwarded-For": random_ip()}
        )
    assert response.headers["ratelimit-limit"] == str(3 * TEST_LIMITS["auth"].per_ip)


async def test_redis_outage_fails_open_for_limits_but_closed_for_revocation(
    make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]], stack: Stack
) -> None:
    async with make_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0") as gateway:
        # Budgets counted in Redis on every request cannot be counted: they fail open.
        login = await gateway.post(
            "/api/auth/login", json={}, headers={"X-Forwarded-For": "1.2.3.4"}
        )
        assert login.status_code == 200
        assert "ratelimit-limit" not in login.headers
        # Reads counted in memory keep their limit on this replica alone.
        read = await gateway.get("/api/products", headers={"X-Forwarded-For": random_ip()})
        assert read.status_code == 200
        assert read.headers["ratelimit-limit"] == str(TEST_LIMITS["read"].per_ip)
        # Whether a token was revoked cannot be known: protected routes refuse, without a 500.
        protected = await gateway.get("/api/orders", headers=stack.headers(user=new_id()))
        assert protected.status_code == 503
        assert protected.headers["content-type"] == "application/problem+json"


async def test_disabled_limits_send_no_headers(
    make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with make_gateway(rate_limit_enabled=False) as gateway:
        for _ in range(TEST_LIMITS["auth"].per_ip + 1):
            response = await gateway.post(
                "/api/auth/login", json={}, headers={"X-Forwarded-For": "10.0.0.1"}
            )
            assert response.status_code == 200
            assert "ratelimit-limit" not in response.headers


async def test_over_a_real_socket_a_client_cannot_choose_its_address(
    upstreams: dict[str, str],
) -> None:
    """The gateway as deployed: uvicorn with its own proxy-header rewriting off, trusting no
    proxy. Every spoofed X-Forwarded-For still lands on the same per-IP budget."""
    from gateway.app import build_app
    from gateway.testing import serve

    from .conftest import gateway_settings

    app = build_app(gateway_settings(upstreams, trusted_proxies=[]))
    async with serve(app, proxy_headers=False) as url, httpx.AsyncClient(base_url=url) as client:
        limit = TEST_LIMITS["auth"].per_ip
        statuses = [
            (
                await client.post(
                    "/api/auth/login", json={}, headers={"X-Forwarded-For": random_ip()}
                )
            ).status_code
            for _ in range(limit + 1)
        ]
        echoed = (await client.get("/api/products", headers={"X-Forwarded-For": "6.6.6.6"})).json()
    assert statuses == [200] * limit + [429]
    forwarded = [v for k, v in echoed["headers"] if k == "x-forwarded-for"]
    assert forwarded == ["127.0.0.1"]


READS = {**TEST_LIMITS, "read": BudgetLimits(per_ip=8, per_user=8)}


async def _shared_count(settings_namespace: str, ip: str) -> int:
    redis = Redis.from_url(ServiceSettings().redis_url)
    try:
        keys = [
            key async for key in redis.scan_iter(match=f"{settings_namespace}gw:rl:read:ip:{ip}:*")
        ]
        values = await redis.mget(keys) if keys else []
    finally:
        await redis.aclose()
    return sum(int(value) for value in values if value is not None)


async def test_anonymous_reads_counted_in_memory_hold_the_exact_limit_on_one_replica(
    make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    namespace = f"test-{unique_suffix()}:"
    ip = random_ip()
    async with make_gateway(rate_limits=READS, redis_namespace=namespace) as gateway:
        statuses, remaining = [], []
        for _ in range(READS["read"].per_ip + 2):
            response = await gateway.get("/api/products", headers={"X-Forwarded-For": ip})
            statuses.append(response.status_code)
            remaining.append(int(response.headers["ratelimit-remaining"]))
        assert statuses == [200] * READS["read"].per_ip + [429, 429]
        assert remaining[: READS["read"].per_ip] == list(range(READS["read"].per_ip - 1, -1, -1))
        # Refused requests are not counted; the admitted ones all reach Redis.
        await eventually(
            lambda: _count_is(namespace, ip, READS["read"].per_ip), timeout=5, interval=0.02
        )


async def _count_is(namespace: str, ip: str, expected: int) -> bool:
    return await _shared_count(namespace, ip) == expected


async def test_replicas_learn_each_others_reads_through_redis(
    make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    namespace = f"test-{unique_suffix()}:"
    ip = random_ip()
    limit = READS["read"].per_ip
    async with (
        make_gateway(rate_limits=READS, redis_namespace=namespace) as first,
        make_gateway(rate_limits=READS, redis_namespace=namespace) as second,
    ):
        headers = {"X-Forwarded-For": ip}
        # The second replica knows this client before the first one spends the budget.
        assert (await second.get("/api/products", headers=headers)).status_code == 200
        for _ in range(limit - 1):
            assert (await first.get("/api/products", headers=headers)).status_code == 200
        await eventually(lambda: _count_is(namespace, ip, limit), timeout=5, interval=0.02)
        # The second replica's next sync brings the first one's count back to it.
        await asyncio.sleep(0.5)
        refused = await second.get("/api/products", headers=headers)
        assert_rate_limited(refused)
        assert_rate_limited(await first.get("/api/products", headers=headers))


async def test_counts_made_in_memory_land_in_the_window_they_were_made_in() -> None:
    """Across a window boundary, what each window admitted here reaches its own Redis key."""
    namespace = f"test-{unique_suffix()}:"
    redis = Redis.from_url(ServiceSettings().redis_url)
    limiter = RateLimiter(
        redis, window_seconds=1, namespace=namespace, local_budgets=frozenset({"read"})
    )
    identity = Identity("ip", random_ip(), 1000)
    try:
        await asyncio.sleep(
            0.7 - time.time() % 1 if time.time() % 1 < 0.7 else 1.7 - time.time() % 1
        )
        windows: dict[int, int] = {}
        for i in range(20):
            window = int(time.time())  # the limiter reads the clock a few microseconds later
            admission = await limiter.admit("read", [identity], token_id=None)
            assert admission.decision is not None and admission.decision.allowed
            windows[window] = windows.get(window, 0) + 1
            if i % 5 == 4:
                await limiter.sync()
            await asyncio.sleep(0.03)
        await limiter.sync()
        assert len(windows) == 2, "the run did not cross a window boundary"
        base = f"{namespace}gw:rl:read:ip:{identity.value}"
        stored = {w: int(await redis.get(f"{base}:{w}") or 0) for w in windows}
        assert stored == windows
    finally:
        await redis.aclose()


async def test_requests_admitted_in_memory_while_a_first_answer_is_awaited_are_all_counted() -> (
    None
):
    """A client's first requests go to Redis; the ones arriving after the first answer are
    counted here. A slower first answer landing afterwards must not replace those counts: the
    limit holds exactly, and every admitted request reaches the shared count."""
    namespace = f"test-{unique_suffix()}:"
    redis = Redis.from_url(ServiceSettings().redis_url)
    limiter = RateLimiter(
        redis, window_seconds=60, namespace=namespace, local_budgets=frozenset({"read"})
    )
    limit, requests = 40, 80
    identity = Identity("ip", random_ip(), limit)
    counted = limiter._script

    async def slow_to_answer(**kwargs: object) -> object:
        await asyncio.sleep(0.03)  # a busy Redis: answers come back late and out of order
        return await counted(**kwargs)

    limiter._script = slow_to_answer  # type: ignore[assignment]

    async def one(delay: float) -> bool:
        await asyncio.sleep(delay)
        admission = await limiter.admit("read", [identity], token_id=None)
        assert admission.decision is not None
        return admission.decision.allowed

    try:
        await asyncio.sleep(60 - time.time() % 60 if time.time() % 60 > 55 else 0)
        # Arrivals 1 ms apart: the first few are in flight to Redis while later ones arrive.
        admitted = await asyncio.gather(*(one(i * 0.001) for i in range(requests)))
        await limiter.sync()
        assert sum(admitted) == limit
        assert await _shared_count(namespace, identity.value) == limit
    finally:
        await redis.aclose()


class _Clock:
    """Stands in for the `time` module of `gateway.ratelimit`: windows pass when the test says."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@asynccontextmanager
async def _redis_reachable_at(port: int) -> AsyncIterator[None]:
    """The real Redis answers on `port` (through a byte relay) until the block ends."""
    real = urlsplit(ServiceSettings().redis_url)
    writers: list[asyncio.StreamWriter] = []

    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            real.hostname, real.port or 6379
        )
        writers.extend((writer, upstream_writer))
        await asyncio.gather(
            pump(reader, upstream_writer), pump(upstream_reader, writer), return_exceptions=True
        )

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


async def _stored_by_window(namespace: str) -> dict[int, int]:
    """The shared read counts of every client in `namespace`, summed by window."""
    redis = Redis.from_url(ServiceSettings().redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{namespace}gw:rl:read:*", count=1000)]
        values = await redis.mget(keys) if keys else []
    finally:
        await redis.aclose()
    stored: dict[int, int] = {}
    for key, value in zip(keys, values, strict=True):
        index = int(key.rsplit(b":", 1)[1])
        stored[index] = stored.get(index, 0) + int(value or 0)
    return stored


async def test_counts_kept_through_a_redis_outage_stay_bounded_and_only_live_windows_are_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While Redis is down, the counts of windows that can no longer weigh in any decision are
    dropped instead of piling up (and being re-queued every sync); when it is back, what this
    replica admitted in the current and previous windows reaches Redis exactly, nothing older."""
    window, per_window, windows = 60, 2000, 30
    clock = _Clock(time.time() // window * window)
    monkeypatch.setattr(ratelimit, "time", clock)
    start = int(clock.now) // window
    namespace = f"test-{unique_suffix()}:"
    port = free_port()  # nothing listens there until Redis "comes back"
    real = urlsplit(ServiceSettings().redis_url)
    redis = Redis.from_url(f"{real.scheme}://127.0.0.1:{port}{real.path}")
    limiter = RateLimiter(
        redis, window_seconds=window, namespace=namespace, local_budgets=frozenset({"read"})
    )

    def clients_of(w: int) -> list[Identity]:
        return [Identity("ip", f"10.{w}.{i // 250}.{i % 250 + 1}", 100) for i in range(per_window)]

    try:
        for w in range(windows):
            clock.now = (start + w) * window + 1
            # The previous window's clients come back (their counts roll) and new ones arrive.
            for identity in [*(clients_of(w - 1) if w else []), *clients_of(w)]:
                admission = await limiter.admit("read", [identity], token_id=None)
                assert admission.decision is not None and admission.decision.allowed
            await limiter.sync()
            clock.now += window * 2 / 3
            await limiter.sync()
            assert limiter.clients <= 3 * per_window
            assert limiter.backlog <= limiter.clients
        async with _redis_reachable_at(port):
            await limiter.sync()
            await redis.aclose()
    finally:
        await redis.aclose()
    last = start + windows - 1
    assert await _stored_by_window(namespace) == {last - 1: 2 * per_window, last: 2 * per_window}
