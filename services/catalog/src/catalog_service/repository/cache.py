"""The Redis read-through cache of product pages and listings.

Every cached entry lives under the current *generation*; each catalog write bumps it, so a
write invalidates everything at once and nothing stale can be served after it returns. Reading
the generation and the entry is one round trip (a small Lua script).
"""

from __future__ import annotations

from redis.asyncio import Redis

_GET = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ARGV[2])}
"""


class Cache:
    def __init__(self, redis: Redis, *, prefix: str, ttl_seconds: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl_seconds
        self._generation_key = f"{prefix}cache:generation"
        self._get = redis.register_script(_GET)

    def _key(self, generation: str, kind: str, key: str) -> str:
        return f"{self.prefix}cache:{generation}:{kind}:{key}"

    async def get(self, kind: str, key: str) -> tuple[str, bytes | None]:
        """The current generation and the entry cached under it, if any."""
        generation, value = await self._get(
            keys=[self._generation_key], args=[f"{self.prefix}cache:", f":{kind}:{key}"]
        )
        return generation.decode() if isinstance(generation, bytes) else str(generation), value

    async def put(
        self, generation: str, kind: str, key: str, value: bytes, *, ttl: int | None = None
    ) -> None:
        await self.redis.set(self._key(generation, kind, key), value, ex=ttl or self.ttl)

    async def invalidate(self) -> None:
        await self.redis.incr(self._generation_key)
