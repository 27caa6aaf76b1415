"""The gateway's own readiness and the fan-out `/health` of every service behind it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from gateway.app import build_app
from gateway.testing import free_port, serve
from shopkit.testing import app_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .conftest import gateway_settings

MakeGateway = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


async def test_readiness_stays_200_with_redis_down_and_says_it_is_degraded(
    make_gateway: MakeGateway,
) -> None:
    # Without Redis the gateway still serves public routes (and 503 for protected ones):
    # failing readiness would take every replica out of the Service at once.
    async with make_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0") as gateway:
        response = await gateway.get("/health/ready")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "degraded"
        assert body["checks"]["redis"].startswith("degraded")


async def test_readiness_is_ok_with_redis_up(make_gateway: MakeGateway) -> None:
    async with make_gateway() as gateway:
        response = await gateway.get("/health/ready")
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok", "checks": {"redis": "ok"}}


async def test_the_fanout_health_is_shared_for_a_few_seconds(
    upstreams: dict[str, str],
) -> None:
    probes = 0

    async def ready(_: Request) -> JSONResponse:
        nonlocal probes
        probes += 1
        return JSONResponse({"status": "ok"})

    counting = Starlette(routes=[Route("/health/ready", ready)])
    async with serve(counting) as url:
        targets = dict.fromkeys(upstreams, url)
        async with app_client(build_app(gateway_settings(targets))) as gateway:
            for _ in range(20):
                response = await gateway.get("/health")
                assert response.status_code == 200, response.text
                assert set(response.json()["services"].values()) == {"ok"}
    # A flood costs one round of probes (one per service), not one round per call.
    assert probes == len(targets)
