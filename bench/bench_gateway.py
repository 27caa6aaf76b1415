"""Gateway overhead and token verification speed, measured on real processes.

* overhead ratio: requests/s through the gateway divided by requests/s straight to the service,
  for the same small GET in the same run (`wrk`, alternating direct and gateway runs, medians);
  done for a public read (JWKS) and for an authenticated read (`/api/auth/me`: token checked by
  the gateway, then again by the service);
* added p99 at a fixed rate: an open-loop client sends the GET at a constant rate, direct and
  through the gateway; latency is measured from each request's scheduled start;
* token verifications per second in-process (`shopkit.security.TokenVerifier`), without and
  with the Redis revocation check: one session's token presented again and again (as every
  request of a session does; a verified token is remembered until it expires), and a new token
  each time (signature and claims checked every time: the cold path).

A dedicated auth replica (on the `auth` database of the running stack) and a dedicated gateway
(rate limits raised so they are counted but never hit) run as uvicorn processes on free ports.

Targets on a 2-core machine: ratio >= 0.5, added p99 < 5 ms, verifications >= 10,000/s.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
from redis.asyncio import Redis
from shopkit.security import TokenVerifier
from shopkit.testing import TestTokens, unique_suffix

from bench.processes import uvicorn_process, wrk

ROUNDS = 2
FIXED_RATE = 100
FIXED_SECONDS = 8
VERIFY_SECONDS = 2.0
COLD_TOKENS = 4000
PASSWORD = "bench-password-0123456789"


@asynccontextmanager
async def auth_replica() -> AsyncIterator[str]:
    """Another replica of auth on the stack's database (its relay left to the running one)."""
    env = {
        "AUTH_RELAY_ENABLED": "false",
        "AUTH_CONSUMERS_ENABLED": "false",
        "AUTH_REDIS_NAMESPACE": f"bench-{unique_suffix()}:",
        "AUTH_LOG_LEVEL": "WARNING",
    }
    async with uvicorn_process("auth_service.app:app", env) as url:
        yield url


@asynccontextmanager
async def gateway_in_front_of(auth_url: str) -> AsyncIterator[str]:
    env = {
        "GATEWAY_UPSTREAMS": json.dumps({"auth": auth_url}),
        "GATEWAY_JWKS_URL": f"{auth_url}/.well-known/jwks.json",
        "GATEWAY_RATE_LIMIT_SCALE": "1000000",  # limits are checked in Redis, never reached
        "GATEWAY_REDIS_NAMESPACE": f"bench-{unique_suffix()}:",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    async with uvicorn_process("gateway.app:app", env) as url:
        yield url


async def user_token(auth_url: str) -> str:
    email = f"bench-{unique_suffix()}@example.com"
    async with httpx.AsyncClient(base_url=auth_url, timeout=10) as client:
        registered = await client.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD, "name": "B"}
        )
        registered.raise_for_status()
        login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        return str(login.json()["access_token"])


async def overhead(
    direct: str, through: str, path: str, headers: dict[str, str]
) -> dict[str, float]:
    direct_rps, gateway_rps = [], []
    for _ in range(ROUNDS):  # alternate, so drift on a shared machine hits both sides
        direct_rps.append(await wrk(direct + path, headers))
        gateway_rps.append(await wrk(through + path, headers))
    d, g = statistics.median(direct_rps), statistics.median(gateway_rps)
    return {"direct_rps": round(d), "gateway_rps": round(g), "ratio": round(g / d, 3)}


async def fixed_rate_latencies(url: str, headers: dict[str, str]) -> list[float]:
    """Open loop: request i starts at t0 + i/rate whatever happened before (no coordinated
    omission); each latency counts from the scheduled start. The load generator is aiohttp:
    it needs a fraction of httpx's CPU per request, so the client is not what is measured."""
    latencies: list[float] = []
    total = FIXED_RATE * FIXED_SECONDS
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async with session.get(url) as warm:  # open a connection before the clock starts
            await warm.read()
        start = time.perf_counter() + 0.1

        async def one(i: int) -> None:
            scheduled = start + i / FIXED_RATE
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")
            latencies.append((time.perf_counter() - scheduled) * 1000)

        await asyncio.gather(*(one(i) for i in range(total)))
    return latencies


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def added_latency(
    direct: str, through: str, path: str, headers: dict[str, str]
) -> dict[str, float]:
    d = await fixed_rate_latencies(direct + path, headers)
    g = await fixed_rate_latencies(through + path, headers)
    return {
        "direct_p50_ms": round(_p(d, 0.5), 2),
        "direct_p99_ms": round(_p(d, 0.99), 2),
        "gateway_p50_ms": round(_p(g, 0.5), 2),
        "gateway_p99_ms": round(_p(g, 0.99), 2),
        "added_p99_ms": round(_p(g, 0.99) - _p(d, 0.99), 2),
    }


async def verifications_per_second(auth_url: str, token: str) -> dict[str, float]:
    async with httpx.AsyncClient() as client:
        jwks = (await client.get(f"{auth_url}/.well-known/jwks.json")).json()
    results: dict[str, float] = {}
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        for label, verifier in (
            (
                "verifications_per_s",
                TokenVerifier(jwks_url="", issuer="http://127.0.0.1:8001", audience="shop"),
            ),
            (
                "verifications_with_revocation_check_per_s",
                TokenVerifier(
                    jwks_url="", issuer="http://127.0.0.1:8001", audience="shop", redis=redis
                ),
            ),
        ):
            verifier.set_keys(jwks)
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < VERIFY_SECONDS:
                for _ in range(200):
                    await verifier.verify(token)
                count += 200
            results[label] = round(count / (time.perf_counter() - started))
        # Cold path: every token new to the verifier (minted beforehand, outside the timing).
        tokens = TestTokens()
        fresh = [tokens.mint() for _ in range(COLD_TOKENS)]
        verifier = TokenVerifier(jwks_url="", issuer=tokens.issuer, audience=tokens.audience)
        verifier.set_keys(tokens.jwks())
        started = time.perf_counter()
        for token in fresh:
            await verifier.verify(token)
        results["verifications_distinct_tokens_per_s"] = round(
            COLD_TOKENS / (time.perf_counter() - started)
        )
    finally:
        await redis.aclose()
    return results


async def run() -> dict[str, object]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package `wrk`)")
    figures: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0]}
    async with auth_replica() as auth_url, gateway_in_front_of(auth_url) as gateway_url:
        token = await user_token(auth_url)
        bearer = {"Authorization": f"Bearer {token}"}
        for name, value in (
            await overhead(auth_url, gateway_url, "/.well-known/jwks.json", {})
        ).items():
            figures[f"public_get_{name}"] = value
        for name, value in (await overhead(auth_url, gateway_url, "/api/auth/me", bearer)).items():
            figures[f"authenticated_get_{name}"] = value
        for name, value in (
            await added_latency(auth_url, gateway_url, "/.well-known/jwks.json", {})
        ).items():
            figures[f"at_{FIXED_RATE}rps_{name}"] = value
        figures.update(await verifications_per_second(auth_url, token))
    figures["target_ratio_min"] = 0.5
    figures["target_added_p99_ms_max"] = 5
    figures["target_verifications_per_s_min"] = 10_000
    return figures


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run()), indent=2))
