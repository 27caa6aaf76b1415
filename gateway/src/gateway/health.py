"""`/health` of the gateway: every upstream service's readiness.

(Its own `/health/ready` is the kit's, with Redis reported as degraded rather than failing it:
see `redis_degrades_only` in `gateway.app`.)

`/health` probes every upstream; its answer is shared for `FANOUT_CACHE_SECONDS`, so a flood of
calls costs one round of probes per interval instead of one per call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])

FANOUT_CACHE_SECONDS = 3.0


@dataclass
class FanoutCache:
    """The last `/health` answer, and the lock that lets one caller at a time refresh it."""

    body: dict[str, object] | None = None
    status_code: int = 200
    fetched: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def _probe_all(upstreams: dict[str, str], client: httpx.AsyncClient) -> dict[str, str]:
    async def probe(name: str, base: str) -> tuple[str, str]:
        try:
            response = await client.get(f"{base}/health/ready", timeout=2.0)
        except httpx.HTTPError as exc:
            return name, f"unreachable: {type(exc).__name__}"
        return name, "ok" if response.status_code == 200 else f"not ready ({response.status_code})"

    return dict(await asyncio.gather(*(probe(n, b) for n, b in upstreams.items())))


@router.get("/health", summary="Readiness of every service behind the gateway")
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    cache: FanoutCache | None = getattr(state, "health_fanout", None)
    if cache is None:
        cache = state.health_fanout = FanoutCache()
    async with cache.lock:  # callers arriving during a round wait for it instead of probing
        if cache.body is None or time.monotonic() - cache.fetched >= FANOUT_CACHE_SECONDS:
            results = await _probe_all(state.settings.upstreams, state.http)
            ok = all(status == "ok" for status in results.values())
            cache.body = {"status": "ok" if ok else "degraded", "services": results}
            cache.status_code = 200 if ok else 503
            cache.fetched = time.monotonic()
        return JSONResponse(cache.body, status_code=cache.status_code)
