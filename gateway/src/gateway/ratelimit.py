"""Rate limits in Redis: a sliding-window counter per budget, per client IP and per user.

The estimate for a window is `previous * (1 - elapsed / window) + current`, which smooths the
burst a fixed window allows at its edges while costing two small keys per identity. One Lua
call checks and counts every identity of a request atomically; a refused request is not
counted, so a client that backs off recovers as its window slides.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS: (current, previous) per identity. ARGV: window ms, elapsed ms, then one limit per identity.
# Returns, per identity: current count, previous count (after this request if allowed), then
# a final 1 (allowed) or 0 (refused).
_SLIDING_WINDOW = """
local window = tonumber(ARGV[1])
local elapsed = tonumber(ARGV[2])
local n = #KEYS / 2
local counts = {}
local allowed = 1
for i = 1, n do
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  counts[2 * i - 1] = current
  counts[2 * i] = previous
  if previous * (window - elapsed) / window + current + 1 > tonumber(ARGV[2 + i]) then
    allowed = 0
  end
end
if allowed == 1 then
  for i = 1, n do
    counts[2 * i - 1] = redis.call('INCR', KEYS[2 * i - 1])
    if counts[2 * i - 1] == 1 then
      redis.call('PEXPIRE', KEYS[2 * i - 1], 2 * window)
    end
  end
end
counts[2 * n + 1] = allowed
return counts
"""


@dataclass(frozen=True)
class Identity:
    kind: str
    """`ip` or `user`."""
    value: str
    limit: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    """Until the current window ends."""
    retry_after: int
    """Seconds until a refused request would be allowed (0 when allowed)."""
    window: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={self.window}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter:
    def __init__(self, redis: Redis, *, window_seconds: int, namespace: str = "") -> None:
        self._redis = redis
        self._window_ms = window_seconds * 1000
        self._window = window_seconds
        self._prefix = f"{namespace}gw:rl"
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def hit(self, budget: str, identities: list[Identity]) -> Decision | None:
        """Count one request against every identity; None when Redis cannot answer.

        Failing open is deliberate: an outage of the limiter must not become an outage of
        the whole API (each service still protects itself, e.g. auth's login lockout).
        """
        now_ms = int(time.time() * 1000)
        index, elapsed = divmod(now_ms, self._window_ms)
        keys: list[str] = []
        for identity in identities:
            base = f"{self._prefix}:{budget}:{identity.kind}:{identity.value}"
            keys += [f"{base}:{index}", f"{base}:{index - 1}"]
        try:
            result = await self._script(
                keys=keys, args=[self._window_ms, elapsed, *(i.limit for i in identities)]
            )
        except RedisError as exc:
            log.warning(
                "rate limiter unavailable; allowing the request", extra={"error": repr(exc)}
            )
            return None
        allowed = int(result[-1]) == 1
        decisions = [
            self._decide(identity, int(result[2 * i]), int(result[2 * i + 1]), elapsed, allowed)
            for i, identity in enumerate(identities)
        ]
        return min(decisions, key=lambda d: (d.allowed, d.remaining, -d.retry_after))

    def _decide(
        self, identity: Identity, current: int, previous: int, elapsed: int, allowed: bool
    ) -> Decision:
        """Figures for one identity. When refused, the counts exclude this request."""
        window, limit = self._window_ms, identity.limit
        used = previous * (window - elapsed) / window + current
        reset = math.ceil((window - elapsed) / 1000)
        over = not allowed and used + 1 > limit
        retry_ms = 0.0
        if over and current + 1 <= limit:
            # Later in this window: the previous window's weight decays until one more fits.
            retry_ms = window * (1 - (limit - current - 1) / previous) - elapsed
        elif over:
            # Only the next window helps; there this window's count is the one decaying.
            retry_ms = (window - elapsed) + max(0.0, window * (1 - (limit - 1) / current))
        return Decision(
            allowed=not over,
            limit=limit,
            remaining=max(0, math.floor(limit - used)),
            reset_seconds=reset,
            retry_after=max(1, math.ceil(retry_ms / 1000)) if over else 0,
            window=self._window,
        )
