"""The edge cache in front of real upstream servers, purged through real Redis."""

from __future__ import annotations

import asyncio
import gc
import secrets
import tracemalloc
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from gateway.edge_cache import EdgeCache
from gateway.testing import free_port
from redis.asyncio import Redis
from shopkit.settings import ServiceSettings
from shopkit.testing import eventually
from starlette.responses import Response

from contracts import new_id
from gateway import edge_cache

from .conftest import Stack, random_ip


async def _missed(stack: Stack, path: str) -> httpx.Response | None:
    """The answer to `path` when the gateway fetched it anew (not from its cache)."""
    response = await stack.client.get(path, headers=stack.headers())
    return response if response.headers.get("x-cache") == "miss" else None


SHAREABLE = "/api/products/shared?shareable=60"


def served(response: httpx.Response) -> int:
    """How many requests the upstream had answered when it made this body."""
    value: int = response.json()["served"]
    return value


async def test_a_shareable_answer_is_served_from_the_edge_without_its_directives(
    stack: Stack,
) -> None:
    path = f"{SHAREABLE}&case={new_id()}"
    first = await stack.client.get(path, headers=stack.headers())
    second = await stack.client.get(path, headers=stack.headers())
    assert first.status_code == second.status_code == 200
    assert first.headers["x-cache"] == "miss"
    assert second.headers["x-cache"] == "hit"
    assert second.content == first.content  # the upstream was not asked again
    assert int(second.headers["age"]) >= 0
    for response in (first, second):
        assert "surrogate-control" not in response.headers
        assert "surrogate-key" not in response.headers
        assert "ratelimit-limit" in response.headers  # still counted against the caller
    assert second.headers["x-request-id"] != first.headers["x-request-id"]


async def test_unmarked_answers_and_other_queries_are_not_shared(stack: Stack) -> None:
    path = f"/api/products/plain?case={new_id()}"
    first = await stack.client.get(path, headers=stack.headers())
    second = await stack.client.get(path, headers=stack.headers())
    assert served(second) > served(first)
    assert "x-cache" not in second.headers

    shared = f"{SHAREABLE}&case={new_id()}"
    await stack.client.get(shared, headers=stack.headers())
    other_query = await stack.client.get(shared + "&page=2", headers=stack.headers())
    assert other_query.headers["x-cache"] == "miss"


async def test_errors_are_not_kept(stack: Stack) -> None:
    path = f"{SHAREABLE}&status=404&case={new_id()}"
    first = await stack.client.get(path, headers=stack.headers())
    second = await stack.client.get(path, headers=stack.headers())
    assert first.status_code == second.status_code == 404
    assert served(second) > served(first)


async def test_customers_share_the_anonymous_copy_but_admins_and_bad_tokens_do_not(
    stack: Stack,
) -> None:
    path = f"{SHAREABLE}&case={new_id()}"
    anonymous = await stack.client.get(path, headers=stack.headers())
    customer = await stack.client.get(path, headers=stack.headers(user=new_id()))
    assert customer.headers["x-cache"] == "hit"
    assert customer.content == anonymous.content

    admin_token = stack.tokens.mint(new_id(), roles=("customer", "admin"))
    admin = await stack.client.get(
        path, headers=stack.headers(Authorization=f"Bearer {admin_token}")
    )
    assert "x-cache" not in admin.headers
    assert served(admin) > served(anonymous)  # what an admin sees may differ: asked upstream

    forged = await stack.client.get(path, headers=stack.headers(Authorization="Bearer not-a-token"))
    assert "x-cache" not in forged.headers  # the service judges a bad token, not the cache
    # And neither of them replaced the shared copy.
    again = await stack.client.get(path, headers=stack.headers())
    assert again.content == anonymous.content


async def test_a_write_through_the_gateway_purges_that_service_before_it_is_answered(
    stack: Stack,
) -> None:
    path = f"{SHAREABLE}&case={new_id()}"
    before = await stack.client.get(path, headers=stack.headers())
    orders = f"/api/orders/shared?shareable=60&case={new_id()}"
    other_service = await stack.client.get(orders, headers=stack.headers(user=new_id()))

    write = await stack.client.patch(
        "/api/products/p-1", json={"price": 1}, headers=stack.headers(user=new_id())
    )
    assert write.status_code == 200

    after = await stack.client.get(path, headers=stack.headers())
    assert after.headers["x-cache"] == "miss"
    assert served(after) > served(before)
    untouched = await stack.client.get(orders, headers=stack.headers(user=new_id()))
    assert untouched.headers["x-cache"] == "hit"
    assert untouched.content == other_service.content


async def test_a_purge_published_by_a_service_reaches_the_gateway(stack: Stack) -> None:
    path = f"{SHAREABLE}&case={new_id()}"
    await stack.client.get(path, headers=stack.headers())
    assert (await stack.client.get(path, headers=stack.headers())).headers["x-cache"] == "hit"

    redis = Redis.from_url(ServiceSettings().redis_url)
    try:
        # The upstream's surrogate key is its service name.
        assert await redis.publish(stack.settings.edge_purge_channel, "catalog") >= 1
    finally:
        await redis.aclose()
    await eventually(lambda: _missed(stack, path), timeout=5, interval=0.01)


async def test_a_lost_subscription_starts_the_cache_over(stack: Stack) -> None:
    """Purges sent while the gateway was not subscribed are missed: what it kept before must
    not be served once it is subscribed again."""
    path = f"{SHAREABLE}&case={new_id()}"
    kept = await stack.client.get(path, headers=stack.headers())
    assert (await stack.client.get(path, headers=stack.headers())).headers["x-cache"] == "hit"

    channel = stack.settings.edge_purge_channel
    redis = Redis.from_url(ServiceSettings().redis_url, decode_responses=True)
    try:
        listeners = [c for c in await redis.client_list() if c["name"] == f"edge-purge:{channel}"]
        assert len(listeners) == 1
        await redis.client_kill_filter(_id=listeners[0]["id"])
        await redis.publish(channel, "catalog")  # nobody hears this one
    finally:
        await redis.aclose()

    # Subscribed again, from an empty cache.
    response = await eventually(lambda: _missed(stack, path), timeout=10, interval=0.05)
    assert served(response) > served(kept)
    assert (await stack.client.get(path, headers=stack.headers())).headers["x-cache"] == "hit"


async def test_without_the_purge_channel_nothing_is_shared(
    make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with make_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0") as gateway:
        path = f"{SHAREABLE}&case={new_id()}"
        headers = {"X-Forwarded-For": random_ip()}
        first = await gateway.get(path, headers=headers)
        second = await gateway.get(path, headers=headers)
    assert first.status_code == second.status_code == 200
    assert served(second) > served(first)
    assert "x-cache" not in second.headers


def _answer(body: dict[str, Any]) -> Response:
    return Response(content=str(body).encode(), status_code=200)


def _keep(
    cache: EdgeCache,
    target: str,
    body: dict[str, Any],
    *,
    epoch: int | None = None,
    control: str = "max-age=60",
) -> None:
    """Offer a catalog answer fetched since `epoch` (now, by default)."""
    cache.offer(
        "catalog",
        target,
        epoch=cache.begin("catalog") if epoch is None else epoch,
        surrogate_control=control,
        surrogate_key="catalog",
        response=_answer(body),
    )


def test_an_answer_fetched_across_a_purge_is_not_kept() -> None:
    cache = EdgeCache(max_bytes=4096, max_body_bytes=1024)
    cache.live = True
    epoch = cache.begin("catalog")
    cache.purge(tag="catalog")  # a write landed while the answer was on its way
    _keep(cache, "/p", {"price": "old"}, epoch=epoch)
    assert cache.lookup("catalog", "/p") is None

    _keep(cache, "/p", {"price": "new"})
    hit = cache.lookup("catalog", "/p")
    assert hit is not None
    assert hit.body == str({"price": "new"}).encode()
    assert cache.size_bytes > len(hit.body)  # its target, headers and keeping count too

    cache.purge(tag="other")
    assert len(cache) == 1
    cache.purge(tag="catalog")
    assert (len(cache), cache.size_bytes) == (0, 0)


def _size_of(target: str, body: dict[str, Any]) -> int:
    """What keeping this answer costs, as the cache counts it."""
    probe = EdgeCache(max_bytes=1024 * 1024, max_body_bytes=1024)
    probe.live = True
    _keep(probe, target, body)
    return probe.size_bytes


async def test_entries_expire_and_the_least_recently_used_leave_first() -> None:
    entry_size = _size_of("/a", {"target": "/a"})
    cache = EdgeCache(max_bytes=2 * entry_size, max_body_bytes=1024)
    cache.live = True

    def keep(target: str, control: str = "max-age=60") -> None:
        _keep(cache, target, {"target": target}, control=control)

    keep("/a")
    keep("/b")
    assert cache.lookup("catalog", "/a") is not None  # /b is now the least recently used
    keep("/c")
    assert cache.lookup("catalog", "/b") is None
    assert cache.lookup("catalog", "/a") is not None
    assert len(cache) == 2
    assert cache.size_bytes == 2 * entry_size

    keep("/never", control="no-store")
    keep("/zero", control="max-age=0")
    assert cache.lookup("catalog", "/never") is None
    assert cache.lookup("catalog", "/zero") is None

    keep("/brief", control="max-age=1")
    assert cache.lookup("catalog", "/brief") is not None
    await asyncio.sleep(1.05)
    assert cache.lookup("catalog", "/brief") is None

    cache.live = False  # purge channel lost: nothing is served
    assert cache.lookup("catalog", "/a") is None


def test_the_budget_holds_what_entries_really_cost() -> None:
    """A tiny answer costs far more to keep than its body (target, headers, bookkeeping):
    however many targets are offered, the cache holds about the memory it was given."""
    budget = 1024 * 1024
    cache = EdgeCache(max_bytes=budget, max_body_bytes=1024)
    cache.live = True
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            target = f"/api/products?q={secrets.token_hex(8)}"
            _keep(cache, target, {"id": 1})
            assert cache.size_bytes <= budget
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0 < len(cache) < 20_000
    assert held <= budget * 1.25
    assert cache.lookup("catalog", target) is not None  # the newest answer is kept


class _Clock:
    """Stands in for the `time` module of `gateway.edge_cache`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def test_expired_entries_leave_without_being_asked_for_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock(1000.0)
    monkeypatch.setattr(edge_cache, "time", clock)
    cache = EdgeCache(max_bytes=64 * 1024 * 1024, max_body_bytes=1024)
    cache.live = True
    for i in range(1000):
        _keep(cache, f"/old/{i}", {"i": i}, control="max-age=60")
    clock.now += 61
    for i in range(1000):
        _keep(cache, f"/new/{i}", {"i": i}, control="max-age=60")
    assert len(cache) == 1000  # every expired answer is gone, none of the fresh ones
    assert all(cache.lookup("catalog", f"/new/{i}") is not None for i in range(1000))


async def test_writes_refused_by_the_service_and_options_do_not_purge(stack: Stack) -> None:
    path = f"{SHAREABLE}&case={new_id()}"
    kept = await stack.client.get(path, headers=stack.headers())
    assert kept.headers["x-cache"] == "miss"
    user = new_id()
    for method, target in [
        ("DELETE", "/api/products/p-1?status=403"),  # a customer may not delete products
        ("PATCH", "/api/products/p-1?status=404"),
        ("POST", "/api/products?status=422"),
        ("OPTIONS", "/api/products/p-1"),
    ]:
        response = await stack.client.request(method, target, headers=stack.headers(user=user))
        assert response.headers["x-upstream"] == "catalog", (method, target)
    after = await stack.client.get(path, headers=stack.headers())
    assert after.headers["x-cache"] == "hit"
    assert after.content == kept.content


@pytest.mark.parametrize("status", [201, 204, 303, 500, 503])
async def test_writes_that_may_have_changed_something_purge(stack: Stack, status: int) -> None:
    path = f"{SHAREABLE}&case={new_id()}"
    before = await stack.client.get(path, headers=stack.headers())
    write = await stack.client.post(
        f"/api/products?status={status}", json={}, headers=stack.headers(user=new_id())
    )
    assert write.status_code == status
    after = await stack.client.get(path, headers=stack.headers())
    assert after.headers["x-cache"] == "miss"
    assert served(after) > served(before)


def test_a_write_of_another_service_leaves_fills_in_flight_alone() -> None:
    cache = EdgeCache(max_bytes=4096, max_body_bytes=1024)
    cache.live = True
    catalog = cache.begin("catalog")
    cache.begin("orders")
    cache.purge(service="orders")  # an anonymous cart write, while a catalog answer is on its way
    _keep(cache, "/p", {"price": "1"}, epoch=catalog)
    assert cache.lookup("catalog", "/p") is not None

    catalog = cache.begin("catalog")
    cache.purge(service="catalog")
    _keep(cache, "/q", {"price": "2"}, epoch=catalog)
    assert cache.lookup("catalog", "/q") is None
