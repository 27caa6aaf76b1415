"""Auth service throughput on real processes and the stack's PostgreSQL and Redis.

* logins per second and their p50/p99 at a fixed concurrency (Argon2id verification bound);
* refresh rotations per second (single-use token exchange, row locks, new pair);
* access tokens signed per second in-process (RS256), and one Argon2id hash with the
  configured parameters.

Runs against a dedicated auth replica on the `auth` database (users created per run).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx
from auth_service.config import AuthSettings
from auth_service.keys import KeyRing
from auth_service.runtime import passwords_for
from auth_service.tokens import issue_access_token
from shopkit.security import new_signing_key
from shopkit.testing import unique_suffix

from bench.bench_gateway import PASSWORD, auth_replica

USERS = 8
CONCURRENCY = 4
LOGINS = 80
REFRESHES = 400
SIGN_SECONDS = 2.0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _users(client: httpx.AsyncClient) -> list[str]:
    emails = [f"bench-auth-{unique_suffix()}-{i}@example.com" for i in range(USERS)]
    for email in emails:
        response = await client.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD, "name": "B"}
        )
        response.raise_for_status()
    return emails


async def logins(client: httpx.AsyncClient, emails: list[str]) -> dict[str, float]:
    latencies: list[float] = []
    queue = [emails[i % len(emails)] for i in range(LOGINS)]

    async def worker(offset: int) -> None:
        for email in queue[offset::CONCURRENCY]:
            started = time.perf_counter()
            response = await client.post(
                "/api/auth/login", json={"email": email, "password": PASSWORD}
            )
            response.raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    return {
        "logins_per_s": round(LOGINS / elapsed, 1),
        "login_p50_ms": round(statistics.median(latencies), 1),
        "login_p99_ms": round(_p(latencies, 0.99), 1),
    }


async def refreshes(client: httpx.AsyncClient, emails: list[str]) -> dict[str, float]:
    """Each worker follows its own session's rotation chain (a refresh token works once)."""
    chains = []
    for email in emails[:CONCURRENCY]:
        response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        chains.append(response.json()["refresh_token"])
    latencies: list[float] = []

    async def worker(index: int) -> None:
        token = chains[index]
        for _ in range(REFRESHES // CONCURRENCY):
            started = time.perf_counter()
            response = await client.post("/api/auth/refresh", json={"refresh_token": token})
            response.raise_for_status()
            token = response.json()["refresh_token"]
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    return {
        "refreshes_per_s": round(REFRESHES / elapsed, 1),
        "refresh_p50_ms": round(statistics.median(latencies), 1),
        "refresh_p99_ms": round(_p(latencies, 0.99), 1),
    }


def signing_rate() -> float:
    ring = KeyRing(kid="bench", private_key=new_signing_key())
    count, started = 0, time.perf_counter()
    now = datetime.now(UTC)
    while time.perf_counter() - started < SIGN_SECONDS:
        for _ in range(200):
            issue_access_token(
                ring,
                user_id="01900000-0000-7000-8000-000000000001",
                roles=["customer"],
                session_id="s",
                authenticated_at=now,
                issuer="i",
                audience="shop",
                ttl=timedelta(minutes=15),
                now=now,
            )
        count += 200
    return round(count / (time.perf_counter() - started))


async def hash_ms() -> float:
    passwords = passwords_for(AuthSettings())
    started = time.perf_counter()
    for _ in range(5):
        await passwords.hash(PASSWORD)
    return round((time.perf_counter() - started) / 5 * 1000, 1)


async def run() -> dict[str, object]:
    figures: dict[str, object] = {}
    async with auth_replica() as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        emails = await _users(client)
        figures.update(await logins(client, emails))
        figures.update(await refreshes(client, emails))
    figures["access_tokens_signed_per_s"] = signing_rate()
    figures["argon2id_hash_ms"] = await hash_ms()
    settings = AuthSettings()
    figures["argon2id_parameters"] = (
        f"t={settings.argon2_time_cost} "
        f"m={settings.argon2_memory_kib}KiB "
        f"p={settings.argon2_parallelism}"
    )
    return figures


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run()), indent=2))
