"""ASGI entry point of the gateway: `uvicorn gateway.app:app`."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from shopkit.app import ServiceParts, create_service
from starlette.responses import Response
from starlette.routing import Route

from gateway import forwarding
from gateway.config import GatewaySettings
from gateway.health import router as health_router
from gateway.openapi import OpenApiCache
from gateway.proxy import Gateway
from gateway.ratelimit import RateLimiter
from gateway.routes import RouteTable

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
TITLE = "Shop API"
VERSION = "0.1.0"


async def _start(app: FastAPI) -> None:
    settings: GatewaySettings = app.state.settings
    client = httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_keepalive_connections,
            keepalive_expiry=30,
        ),
        follow_redirects=False,
    )
    routes = RouteTable()
    app.state.gateway = Gateway(
        settings=settings,
        client=client,
        verifier=app.state.token_verifier,
        limiter=RateLimiter(
            app.state.redis,
            window_seconds=settings.rate_limit_window_seconds,
            namespace=settings.redis_namespace,
        ),
        routes=routes,
        trusted=forwarding.parse_networks(settings.trusted_proxies),
    )
    app.state.openapi = OpenApiCache(
        client=app.state.http,
        upstreams=settings.upstreams,
        routes=routes,
        ttl=settings.openapi_cache_seconds,
        title=TITLE,
        version=VERSION,
    )


async def _stop(app: FastAPI) -> None:
    gateway: Gateway = app.state.gateway
    await gateway.client.aclose()


async def _proxy(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return await gateway.handle(request)


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
        parts=ServiceParts(startup=[_start], shutdown=[_stop]),
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
    app.router.routes.append(
        Route("/.well-known/jwks.json", _proxy, methods=["GET", "HEAD"], include_in_schema=False)
    )
    app.router.routes.append(
        Route("/api/{path:path}", _proxy, methods=PROXY_METHODS, include_in_schema=False)
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=PROXY_METHODS,
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
                "traceparent",
                "tracestate",
            ],
            expose_headers=[
                "Location",
                "Retry-After",
                "X-Request-ID",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy",
            ],
            max_age=600,
        )
    return app


app = build_app()
