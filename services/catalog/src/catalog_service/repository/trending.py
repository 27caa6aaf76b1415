"""Trending products: units sold per product per day, in Redis sorted sets."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

# Counting an order twice would inflate it, so recording and counting happen in one atomic step.
_RECORD = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  for i = 2, #ARGV, 2 do
    redis.call('ZINCRBY', KEYS[2], ARGV[i + 1], ARGV[i])
  end
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


class Trending:
    def __init__(self, redis: Redis, *, prefix: str, retention_days: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention_seconds = (retention_days + 1) * 86400
        self._record = redis.register_script(_RECORD)

    def _day_key(self, day: str) -> str:
        return f"{self.prefix}trending:{day}"

    async def record(self, *, order_id: str, day: str, units: Sequence[tuple[str, int]]) -> bool:
        """Count an order's units once, however often it is delivered; True when counted now."""
        args: list[str | int] = [self.retention_seconds]
        for product_id, quantity in units:
            args += [product_id, quantity]
        counted = await self._record(
            keys=[f"{self.prefix}trending:order:{order_id}", self._day_key(day)], args=args
        )
        return bool(counted)

    async def top(self, *, days: Sequence[str], size: int) -> list[tuple[str, int]]:
        keys = [self._day_key(day) for day in days]
        ranked: list[tuple[bytes, float]] = await self.redis.zunion(keys, withscores=True)  # type: ignore[assignment]
        ordered = sorted(
            ((member.decode(), int(score)) for member, score in ranked),
            key=lambda item: (-item[1], item[0]),
        )
        return ordered[:size]
