"""Routing, header hygiene, raw bodies and upstream failures, through the real gateway."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import jwt
import pytest
from prometheus_client import REGISTRY

from contracts import new_id

from .conftest import DOWN_SERVICE, MAX_BODY, Stack, random_ip
from .upstreams import header_values

PROBLEM = "application/problem+json"


def echoed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/api/auth/anything", "auth"),
        ("/.well-known/jwks.json", "auth"),
        ("/api/products/p-1", "catalog"),
        ("/api/inventory/SKU-1", "inventory"),
        ("/api/cart/items", "orders"),
        ("/api/orders/o-1/timeline", "orders"),
        ("/api/coupons/SAVE10", "orders"),
        ("/api/payments/orders/o-1", "payments"),
        ("/api/shipping/orders/o-1", "shipping"),
    ],
)
async def test_each_prefix_reaches_its_service_with_path_and_query_intact(
    stack: Stack, path: str, service: str
) -> None:
    user = "01900000-0000-7000-8000-000000000001"
    response = await stack.client.get(
        path + "?q=caf%C3%A9&limit=2", headers=stack.headers(user=user)
    )
    if path == "/.well-known/jwks.json":
        assert response.status_code == 200
        assert response.json()["keys"][0]["kid"] == stack.tokens.kid
        return
    body = echoed(response)
    assert body["service"] == service
    assert body["raw_path"] == path
    assert body["query"] == "q=caf%C3%A9&limit=2"
    assert response.headers["x-upstream"] == service


async def test_unknown_paths_are_404_problems(stack: Stack) -> None:
    for path in ("/api/unknown/x", "/api/authx/login", "/nothing"):
        response = await stack.client.get(path, headers=stack.headers())
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


async def test_encoded_separators_and_dot_segments_are_refused(stack: Stack) -> None:
    for raw in ("/api/products/%2e%2e/%2e%2e/api/orders", "/api/products/a%2Fb"):
        response = await stack.client.get(raw, headers=stack.headers())
        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM


async def test_protected_routes_need_a_token_and_public_ones_do_not(stack: Stack) -> None:
    for method, path in [
        ("GET", "/api/orders"),
        ("POST", "/api/orders"),
        ("GET", "/api/auth/me"),
        ("PUT", "/api/inventory/SKU-1"),
        ("POST", "/api/products"),
        ("GET", "/api/shipping/orders/o-1"),
    ]:
        response = await stack.client.request(method, path, headers=stack.headers())
        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")
    for method, path in [
        ("GET", "/api/products"),
        ("GET", "/api/products/some-slug"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/refresh"),
        ("POST", "/api/auth/password/forgot"),
        ("POST", "/api/auth/password/reset"),
        ("POST", "/api/shipping/quotes"),
        ("GET", "/api/cart"),  # anonymous carts: orders decides
        ("POST", "/api/cart/items"),
        ("GET", "/api/shipping/track/BR123"),
        ("GET", "/api/shipping/cep/01310100"),
        ("POST", "/api/payments/webhooks/stripe"),
        ("POST", "/api/shipping/webhooks/sandbox"),
    ]:
        response = await stack.client.request(method, path, headers=stack.headers())
        assert echoed(response)["service"], (method, path)


async def test_invalid_token_on_protected_route_is_refused_before_the_service(stack: Stack) -> None:
    forged = stack.tokens.mint(ttl=-120)  # expired
    response = await stack.client.get(
        "/api/orders", headers={**stack.headers(), "Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"
    assert "x-upstream" not in response.headers


async def test_spoofed_identity_and_hop_by_hop_headers_never_reach_the_service(
    stack: Stack,
) -> None:
    user = "01900000-0000-7000-8000-000000000002"
    spoofed = {
        "X-User-Id": "someone-else",
        "X-User-Roles": "admin",
        "X-Forwarded-User": "admin",
        "X-Remote-User": "admin",
        "X-Internal-Token": "x",
        "X-Auth-Request-Email": "a@b.c",
        "X-Real-IP": "1.2.3.4",
        "Forwarded": "for=1.2.3.4",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-HTTP-Method-Override": "DELETE",
        "Connection": "keep-alive, X-Secret-Hop",
        "X-Secret-Hop": "1",
        "TE": "trailers",
        "Keep-Alive": "timeout=100",
        "Proxy-Authorization": "Basic eA==",
    }
    response = await stack.client.get(
        "/api/orders/o-1", headers=stack.headers(user=user, **spoofed)
    )
    body = echoed(response)
    received = {key.lower() for key, _ in body["headers"]}
    for name in spoofed:
        if name.lower() not in {"x-forwarded-host", "x-forwarded-proto", "connection"}:
            assert name.lower() not in received, name
    # the gateway's own client opens its own connection: the client's options are not copied
    assert all("secret" not in value.lower() for value in header_values(body, "connection"))
    assert header_values(body, "x-forwarded-host") != ["evil.example"]
    assert header_values(body, "x-forwarded-proto") == ["http"]
    # the token itself goes on: the service verifies it again
    assert header_values(body, "authorization")[0].startswith("Bearer ")
    # hop-by-hop headers of the upstream's response do not come back either
    assert "x-upstream-hop" not in response.headers
    assert "keep-alive" not in response.headers
    # nor the upstream server's Date and Server: the gateway's own server states them, and a
    # second copy made two of each (a cached answer's Date was also stale)
    assert "date" not in response.headers and "server" not in response.headers


async def test_header_values_beyond_ascii_are_passed_on_as_sent(stack: Stack) -> None:
    """HTTP allows any byte from 0x80 in a header value; such a user agent or cookie made every
    proxied request of that browser a 500."""
    agent = "Mözilla/5.0 (Ünïcode)".encode()
    cookie = "theme=café".encode()
    response = await stack.client.get(
        "/api/products", headers={"User-Agent": agent, "Cookie": cookie}
    )
    assert response.status_code == 200, response.text
    body = echoed(response)  # the upstream echoes each header's bytes as latin-1 text
    assert [v.encode("latin-1") for v in header_values(body, "user-agent")] == [agent]
    assert [v.encode("latin-1") for v in header_values(body, "cookie")] == [cookie]


async def test_client_address_comes_from_trusted_proxies_only(
    stack: Stack, make_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
) -> None:
    client_ip = random_ip()
    body = echoed(
        await stack.client.get(
            "/api/products", headers={"X-Forwarded-For": f"6.6.6.6, {client_ip}"}
        )
    )
    # trusted peer: the chain is kept from the first untrusted address on
    assert header_values(body, "x-forwarded-for") == [f"{client_ip}, 127.0.0.1"]

    async with make_gateway(trusted_proxies=[]) as untrusting:
        body = echoed(await untrusting.get("/api/products", headers={"X-Forwarded-For": client_ip}))
    assert header_values(body, "x-forwarded-for") == ["127.0.0.1"]


async def test_every_x_forwarded_for_line_is_read_as_one_list(stack: Stack) -> None:
    """A load balancer may append a line of its own instead of extending the client's: the
    lines are one list (RFC 9110 section 5.3), so the first one alone is whatever the client
    wrote."""
    client_ip = random_ip()
    lines = [("X-Forwarded-For", random_ip()), ("X-Forwarded-For", client_ip)]
    body = echoed(await stack.client.get("/api/products", headers=lines))
    assert header_values(body, "x-forwarded-for") == [f"{client_ip}, 127.0.0.1"]


async def test_request_id_and_trace_context_are_forwarded(stack: Stack) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    response = await stack.client.get(
        "/api/products",
        headers=stack.headers(**{"X-Request-ID": "req-12345678", "traceparent": traceparent}),
    )
    body = echoed(response)
    assert header_values(body, "x-request-id") == ["req-12345678"]
    assert response.headers["x-request-id"] == "req-12345678"
    forwarded = header_values(body, "traceparent")
    assert len(forwarded) == 1
    assert forwarded[0].split("-")[1] == trace_id  # same trace...
    assert forwarded[0].split("-")[2] != "00f067aa0ba902b7"  # ...with the gateway's span as parent

    response = await stack.client.get(
        "/api/products",
        headers=stack.headers(**{"X-Request-ID": "bad id with spaces\t", "traceparent": "garbage"}),
    )
    body = echoed(response)
    minted = header_values(body, "x-request-id")
    assert minted == [response.headers["x-request-id"]]
    assert minted[0] != "bad id with spaces\t"
    assert all(value != "garbage" for value in header_values(body, "traceparent"))

    # A client without trace context still gets one trace across gateway and service.
    body = echoed(await stack.client.get("/api/products", headers=stack.headers()))
    started = header_values(body, "traceparent")
    assert len(started) == 1
    assert started[0].startswith("00-") and len(started[0].split("-")[1]) == 32


@pytest.mark.parametrize(
    ("path", "signature_header"),
    [
        ("/api/payments/webhooks/stripe", "Stripe-Signature"),
        ("/api/shipping/webhooks/sandbox", "X-Carrier-Signature"),
    ],
)
async def test_webhook_bodies_and_signatures_pass_byte_for_byte(
    stack: Stack, path: str, signature_header: str
) -> None:
    # Bytes a JSON round trip would change: spacing, key order, escapes, a non-UTF-8 byte.
    raw = b'{ "id":"evt_1",  "amount" :1000,"z":1,"a":"\\u00e9"}\r\n\xff'
    signature = "t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"
    response = await stack.client.post(
        path,
        content=raw,
        headers=stack.headers(
            **{signature_header: signature, "Content-Type": "application/json; charset=utf-8"}
        ),
    )
    body = echoed(response)
    assert base64.b64decode(body["body_b64"]) == raw
    assert header_values(body, signature_header) == [signature]
    assert header_values(body, "content-type") == ["application/json; charset=utf-8"]
    assert header_values(body, "content-length") == [str(len(raw))]


async def test_request_bodies_over_the_limit_are_refused(stack: Stack) -> None:
    user = "01900000-0000-7000-8000-000000000003"
    too_big = b"x" * (MAX_BODY + 1)
    response = await stack.client.post(
        "/api/cart/items", content=too_big, headers=stack.headers(user=user)
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 1024 + 2):
            yield b"y" * 1024

    response = await stack.client.post(
        "/api/cart/items", content=chunked(), headers=stack.headers(user=user)
    )
    assert response.status_code == 413

    response = await stack.client.put(
        "/api/inventory/SKU-1", content=too_big, headers=stack.headers(user=user)
    )
    assert response.status_code == 413

    just_fits = b"z" * MAX_BODY
    body = echoed(
        await stack.client.post(
            "/api/cart/items", content=just_fits, headers=stack.headers(user=user)
        )
    )
    assert base64.b64decode(body["body_b64"]) == just_fits


async def test_large_responses_stream_through_intact(stack: Stack) -> None:
    size = 3 * 1024 * 1024 + 17
    response = await stack.client.get(f"/api/products/blob?stream={size}", headers=stack.headers())
    assert response.status_code == 200
    expected = b"".join(
        bytes([i // 65536 % 256]) * min(65536, size - i) for i in range(0, size, 65536)
    )
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(expected).digest()


async def test_upstream_errors_pass_through_unchanged(stack: Stack) -> None:
    response = await stack.client.get("/api/products/x?status=409", headers=stack.headers())
    assert response.status_code == 409
    assert response.json()["service"] == "catalog"


def _no_internal_detail(response: httpx.Response, stack: Stack) -> None:
    text = response.text
    for url in stack.upstreams.values():
        assert url.rsplit(":", 1)[-1] not in text  # no port
    assert "127.0.0.1" not in text
    assert "Error" not in response.json()["detail"]  # no exception names


async def test_slow_upstream_becomes_504_problem(stack: Stack) -> None:
    user = "01900000-0000-7000-8000-000000000004"
    response = await stack.client.get(
        "/api/notifications?sleep=3", headers=stack.headers(user=user)
    )
    assert response.status_code == 504
    assert response.headers["content-type"] == PROBLEM
    assert set(response.json()) >= {"type", "title", "status", "detail"}
    _no_internal_detail(response, stack)


def _retries(method: str) -> float:
    value = REGISTRY.get_sample_value(
        "shop_gateway_upstream_retries_total", {"service": DOWN_SERVICE, "method": method}
    )
    return value or 0.0


async def test_down_upstream_becomes_503_problem_and_only_idempotent_calls_are_retried(
    stack: Stack,
) -> None:
    user = "01900000-0000-7000-8000-000000000005"
    before_get, before_post = _retries("GET"), _retries("POST")
    response = await stack.client.get("/api/users/me", headers=stack.headers(user=user))
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"]
    _no_internal_detail(response, stack)
    assert _retries("GET") - before_get == stack.settings.retries

    response = await stack.client.post(
        "/api/users/me/addresses", json={"a": 1}, headers=stack.headers(user=user)
    )
    assert response.status_code == 503
    assert _retries("POST") == before_post


async def test_only_the_clients_own_accept_and_agent_headers_go_upstream(stack: Stack) -> None:
    bare = httpx.Headers({"X-Forwarded-For": random_ip()})
    request = stack.client.build_request("GET", "/api/products", headers=bare)
    for name in ("accept", "accept-encoding", "user-agent"):
        del request.headers[name]
    body = echoed(await stack.client.send(request))
    assert header_values(body, "accept-encoding") == []  # no compression nobody asked for
    assert header_values(body, "user-agent") == []

    body = echoed(
        await stack.client.get(
            "/api/products",
            headers=stack.headers(**{"User-Agent": "storefront/2.1", "Accept-Encoding": "br"}),
        )
    )
    assert header_values(body, "user-agent") == ["storefront/2.1"]
    assert header_values(body, "accept-encoding") == ["br"]


async def test_a_body_without_content_type_gets_none_added(stack: Stack) -> None:
    request = stack.client.build_request(
        "POST",
        "/api/payments/webhooks/stripe",
        content=b"raw",
        headers={"X-Forwarded-For": random_ip()},
    )
    assert "content-type" not in request.headers
    body = echoed(await stack.client.send(request))
    assert header_values(body, "content-type") == []
    assert base64.b64decode(body["body_b64"]) == b"raw"


async def test_revoked_token_is_refused_on_protected_routes(stack: Stack) -> None:
    from redis.asyncio import Redis

    token = stack.tokens.mint(new_id())
    headers = {**stack.headers(), "Authorization": f"Bearer {token}"}
    assert (await stack.client.get("/api/orders", headers=headers)).status_code == 200
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    redis = Redis.from_url(stack.settings.redis_url)
    try:
        await redis.set(f"auth:denied-jti:{jti}", b"1", ex=60)
    finally:
        await redis.aclose()
    refused = await stack.client.get("/api/orders", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "token revoked"
    # a public route treats it like no token at all: the service decides
    assert (await stack.client.get("/api/products", headers=headers)).status_code == 200


async def test_repeated_header_lines_reach_the_service_as_separate_lines(stack: Stack) -> None:
    response = await stack.client.get(
        "/api/cart",
        headers=[
            ("X-Forwarded-For", random_ip()),
            ("X-Cart-Id", "cart-a"),
            ("X-Cart-Id", "cart-b"),
            ("Accept-Language", "pt"),
            ("Accept-Language", "en"),
        ],
    )
    body = echoed(response)
    assert header_values(body, "x-cart-id") == ["cart-a", "cart-b"]
    assert header_values(body, "accept-language") == ["pt", "en"]


@pytest.mark.parametrize("path", ["/api/orders", "/api/cart", "/api/products/p-1"])
async def test_a_repeated_authorization_header_is_refused(stack: Stack, path: str) -> None:
    user = "01900000-0000-7000-8000-000000000001"
    token = f"Bearer {stack.tokens.mint(user)}"
    response = await stack.client.get(
        path,
        headers=[
            ("X-Forwarded-For", random_ip()),
            ("Authorization", token),
            ("Authorization", "Bearer someone-else"),
        ],
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "x-upstream" not in response.headers
