"""The Redis read-through cache of product pages and listings.

Every cached entry lives under the current *generation*; each catalog write bumps it, so a
write invalidates everything at once and nothing stale can be served after it returns. Reading
the generation and the entry is one round trip (a small Lua script). The bump and the purge
of the gateway's edge copies (`shopkit.edge`) are one Redis transaction.

Redis is an accelerator here, not a store: when it cannot be reached, reads go to MongoDB and
writes still succeed (the bump is retried, then logged; entries expire after their TTL anyway).
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

EDGE_KEY = "catalog"
"""Surrogate key of every catalog response the gateway may keep."""

log = logging.getLogger(__name__)

_GET = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ARGV[2])}
"""

UNCACHED = ""
"""The generation given out when Redis is unreachable: nothing is cached under it."""


class Cache:
    def __init__(
        self, redis: Redis, *, prefix: str, ttl_seconds: int, purge_channel: str | None = None
    ) -> None:
        self.redis = redis
        self.purge_channel = purge_channel
        self.prefix = prefix
        self.ttl = ttl_seconds
        self._generation_key = f"{prefix}cache:generation"
        self._get = redis.register_script(_GET)

    def _key(self, generation: str, kind: str, key: str) -> str:
        return f"{self.prefix}cache:{generation}:{kind}:{key}"

    async def get(self, kind: str, key: str) -> tuple[str, bytes | None]:
        """The current generation and the entry cached under it, if any."""
        try:
            generation, value = await self._get(
                keys=[self._generation_key], args=[f"{self.prefix}cache:", f":{kind}:{key}"]
            )
        except RedisError as exc:
            log.warning("cache unavailable, reading from the database", extra={"error": repr(exc)})
            return UNCACHED, None
        return generation.decode() if isinstance(generation, bytes) else str(generation), value

    async def put(
        self, generation: str, kind: str, key: str, value: bytes, *, ttl: int | None = None
    ) -> None:
        if generation == UNCACHED:
            return
        try:
            await self.redis.set(self._key(generation, kind, key), value, ex=ttl or self.ttl)
        except RedisError as exc:
            log.warning("cache write skipped", extra={"error": repr(exc)})

    async def invalidate(self) -> None:
        for attempt in range(3):
            try:
                async with self.redis.pipeline(transaction=True) as bump:
                    bump.incr(self._generation_key)
                    if self.purge_channel:
                        bump.publish(self.purge_channel, EDGE_KEY)
                    await bump.execute()
                return
            except RedisError as exc:
                if attempt == 2:
                    log.error(
                        "cache invalidation failed; entries expire within their ttl",
                        extra={"error": repr(exc), "ttl": self.ttl},
                    )
                    return
                await asyncio.sleep(0.05 * (attempt + 1))
