"""Liveness and readiness: `/health/live` says the process runs, `/health/ready` that every
dependency the service needs answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[None]]
"""Raises (or times out) when the dependency is not usable."""


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    check: Check
    degrades_only: bool = False
    """A failure reports the service `degraded` and keeps it ready (200): for a dependency it
    can serve without, where failing readiness would take every replica out at once."""


async def _run(check: ReadinessCheck, timeout: float) -> tuple[str, str]:
    try:
        await asyncio.wait_for(check.check(), timeout)
        return check.name, "ok"
    except TimeoutError:
        return check.name, "timeout"
    except Exception as exc:
        return check.name, f"error: {type(exc).__name__}"


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live", summary="The process is running")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/health/ready",
        summary="Every dependency of this service answers",
        responses={503: {"description": "A dependency is not ready"}},
    )
    async def ready(request: Request) -> JSONResponse:
        checks: list[ReadinessCheck] = getattr(request.app.state, "readiness_checks", [])
        results = dict(await asyncio.gather(*(_run(c, 2.0) for c in checks)))
        failed = [c for c in checks if results[c.name] != "ok"]
        for check in failed:
            if check.degrades_only:
                results[check.name] = f"degraded ({results[check.name]})"
        unready = any(not check.degrades_only for check in failed)
        status = "unavailable" if unready else "degraded" if failed else "ok"
        return JSONResponse(
            {"status": status, "checks": results}, status_code=503 if unready else 200
        )

    return router
