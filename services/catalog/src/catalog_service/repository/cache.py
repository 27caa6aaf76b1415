"""The Redis read-through cache of product pages and listings.

Every cached entry lives under the current *generation*; each catalog write bumps it, so a
write invalidates everything at once and nothing stale can be served after it returns. Reading
the generation and the entry is one round trip (a small Lua script). The bump and the purge
of the gateway's edge copies (`shopkit.edge`) are one Redis transaction.

Redis is an accelerator here, not a store: when it cannot be reached, reads go to MongoDB and
writes still succeed. A bump that fails is owed: until it goes through (`settle`, a background
job), this replica reads past the cache, whose entries may predate the write; the other
replicas stop serving them when it does. A replica starts owing one, for a replica that died
owing it.
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
        self.owed = True
        """An invalidation has not gone through yet (see the module's docstring)."""

    def _key(self, generation: str, kind: str, key: str) -> str:
        return f"{self.prefix}cache:{generation}:{kind}:{key}"

    async def get(self, kind: str, key: str) -> tuple[str, bytes | None]:
        """The current generation and the entry cached under it, if any."""
        if self.owed:
            return UNCACHED, None
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
        """Drop every cached entry (and the gateway's copies) after a write."""
        for attempt in range(3):
            if attempt:
                await asyncio.sleep(0.05 * attempt)
            if await self._bump():
                self.owed = False
                return
        if not self.owed:
            log.error("cache invalidation failed; the cache is read past until it goes through")
        self.owed = True

    async def settle(self) -> None:
        """Send an owed invalidation (every round of a background job; cheap when none is)."""
        if self.owed and await self._bump():
            self.owed = False
            log.info("owed cache invalidation went through")

    async def _bump(self) -> bool:
        try:
            async with self.redis.pipeline(transaction=True) as bump:
                bump.incr(self._generation_key)
                if self.purge_channel:
                    bump.publish(self.purge_channel, EDGE_KEY)
                await bump.execute()
        except RedisError as exc:
            log.warning("cache invalidation not sent", extra={"error": repr(exc)})
            return False
        return True
