"""ASGI entry point of the gateway: `uvicorn gateway.app:app`."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from shopkit.app import ServiceParts, create_service
from shopkit.security import TokenVerifier
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway import forwarding
from gateway.config import GatewaySettings
from gateway.edge import Edge, ProxyEndpoint
from gateway.edge_cache import EdgeCache, listen_for_purges
from gateway.health import router as health_router
from gateway.openapi import OpenApiCache
from gateway.proxy import Gateway
from gateway.ratelimit import RateLimiter
from gateway.routes import RouteTable
from gateway.transport import UPSTREAM_KEEPALIVE_SECONDS, UpstreamTransport

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
TITLE = "Shop API"
VERSION = "0.1.0"


def _upstream_client(settings: GatewaySettings) -> httpx.AsyncClient:
    """The pooled client every proxied request goes through.

    By default its transport is aiohttp's connection pool (`gateway.transport`): the same httpx
    requests, responses, timeouts and errors, for about a quarter of httpcore's CPU per request
    (measured by bench/bench_gateway.py), which is most of the gateway's own cost.
    """
    transport: httpx.AsyncBaseTransport
    if settings.upstream_transport == "aiohttp":
        transport = UpstreamTransport(max_connections=settings.max_connections)
    else:
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_keepalive_connections,
            # Below the upstreams' keep-alive, as with aiohttp (see the constant).
            keepalive_expiry=UPSTREAM_KEEPALIVE_SECONDS,
        )
        transport = httpx.AsyncHTTPTransport(limits=limits)
    client = httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)
    # Only what the client sent goes upstream: no default Accept-Encoding (a compressed answer
    # the client never asked for), Accept or User-Agent of the gateway's own.
    for name in ("accept", "accept-encoding", "user-agent"):
        del client.headers[name]
    return client


async def _start(app: FastAPI) -> None:
    settings: GatewaySettings = app.state.settings
    client = _upstream_client(settings)
    routes = RouteTable()
    app.state.gateway = Gateway(
        settings=settings,
        client=client,
        verifier=TokenVerifier(
            jwks_url=settings.jwks_url,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            http=app.state.http,
        ),
        limiter=RateLimiter(
            app.state.redis,
            window_seconds=settings.rate_limit_window_seconds,
            namespace=settings.redis_namespace,
            local_budgets=frozenset(settings.rate_limit_local_budgets),
            sync_seconds=settings.rate_limit_sync_seconds,
        ),
        routes=routes,
        trusted=forwarding.parse_networks(settings.trusted_proxies),
        edge=EdgeCache(
            max_bytes=settings.edge_cache_max_bytes,
            max_body_bytes=settings.edge_cache_max_body_bytes,
        )
        if settings.edge_cache_enabled
        else None,
    )
    app.state.openapi = OpenApiCache(
        client=app.state.http,
        upstreams=settings.upstreams,
        routes=routes,
        ttl=settings.openapi_cache_seconds,
        title=TITLE,
        version=VERSION,
    )


async def _hear_purges(app: FastAPI, stop: asyncio.Event) -> None:
    gateway: Gateway = app.state.gateway
    if gateway.edge is None:
        return
    settings: GatewaySettings = app.state.settings
    await listen_for_purges(gateway.edge, settings.redis_url, settings.edge_purge_channel, stop)


async def _sync_rate_limits(app: FastAPI, stop: asyncio.Event) -> None:
    gateway: Gateway = app.state.gateway
    await gateway.limiter.run_sync(stop)


async def _stop(app: FastAPI) -> None:
    gateway: Gateway = app.state.gateway
    await gateway.client.aclose()


async def _proxy(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return await gateway.handle(request)


def _cors(settings: GatewaySettings) -> dict[str, Any]:
    return {
        "allow_origins": settings.cors_origins,
        "allow_methods": PROXY_METHODS,
        "allow_headers": [
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "X-Cart-Id",  # an anonymous cart, named by the id orders gave it
            "X-Request-ID",
            "traceparent",
            "tracestate",
        ],
        "expose_headers": [
            "Location",
            "Retry-After",
            "X-Cart-Id",  # the browser must read it to send it back
            "X-Request-ID",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
        ],
        "max_age": 600,
    }


def _install_edge(app: FastAPI, settings: GatewaySettings) -> None:
    """Put the proxy in front of the framework stack (see `gateway.edge`)."""
    proxy: ASGIApp = ProxyEndpoint(_proxy)
    if settings.cors_origins:
        proxy = CORSMiddleware(proxy, **_cors(settings))
    build_stack = app.build_middleware_stack

    def build_with_edge() -> ASGIApp:
        return Edge(build_stack(), proxy)

    app.build_middleware_stack = build_with_edge  # type: ignore[method-assign]


async def _openapi(request: Request) -> JSONResponse:
    cache: OpenApiCache = request.app.state.openapi
    return JSONResponse(await cache.document())


def build_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway's ASGI app; tests pass settings pointing at their own upstreams."""
    settings = settings or GatewaySettings()
    app = create_service(
        settings,
        title=TITLE,
        description="Single entry point of the shop platform's REST API.",
        routers=[health_router],
        parts=ServiceParts(
            startup=[_start],
            shutdown=[_stop],
            background=[_hear_purges, _sync_rate_limits],
            verify_tokens=False,
            # Without Redis the gateway still serves (public routes without rate limits,
            # protected ones 503 since revocations cannot be read): failing readiness would
            # take every replica out of the Service at once, a total outage.
            redis_degrades_only=True,
        ),
        version=VERSION,
    )
    # The gateway's own schema is not the API's: /openapi.json serves the merged document
    # (and /docs, Swagger UI, reads it from there).
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", "") != "/openapi.json"
    ]
    app.router.routes.append(
        Route("/openapi.json", _openapi, methods=["GET"], include_in_schema=False)
    )
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, **_cors(settings))
    _install_edge(app, settings)
    return app


app = build_app()
