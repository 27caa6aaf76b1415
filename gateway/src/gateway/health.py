"""`/health/ready` of the gateway aggregates every upstream service's readiness."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health", summary="Readiness of every service behind the gateway")
async def ready(request: Request) -> JSONResponse:
    upstreams: dict[str, str] = request.app.state.settings.upstreams
    client: httpx.AsyncClient = request.app.state.http

    async def probe(name: str, base: str) -> tuple[str, str]:
        try:
            response = await client.get(f"{base}/health/ready", timeout=2.0)
        except httpx.HTTPError as exc:
            return name, f"unreachable: {type(exc).__name__}"
        return name, "ok" if response.status_code == 200 else f"not ready ({response.status_code})"

    results = dict(await asyncio.gather(*(probe(n, b) for n, b in upstreams.items())))
    ok = all(status == "ok" for status in results.values())
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "services": results}, status_code=200 if ok else 503
    )
