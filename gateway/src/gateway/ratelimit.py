"""Admission in Redis: token revocation and rate limits, in one round trip per request.

Rate limits are a sliding-window counter per budget, per client IP and per user.

The estimate for a window is `previous * (1 - elapsed / window) + current`, which smooths the
burst a fixed window allows at its edges while costing two small keys per identity. One Lua
call checks and counts every identity of a request atomically; a refused request is not
counted, so a client that backs off recovers as its window slides.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from shopkit.security import DENIED_JTI_PREFIX

# One round trip per request for everything the gateway asks Redis.
# KEYS[1]: the denied-jti key of the caller's token (a key that never exists when anonymous);
# then (current, previous) per identity. ARGV: window ms, elapsed ms, one limit per identity.
# Returns {revoked (1/0), current, previous per identity..., allowed (1/0)}; a refused or
# revoked request is not counted.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {1}
end
local window = tonumber(ARGV[1])
local elapsed = tonumber(ARGV[2])
local n = (#KEYS - 1) / 2
local result = {0}
local allowed = 1
for i = 1, n do
  local current = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i + 1]) or '0')
  result[2 * i] = current
  result[2 * i + 1] = previous
  if previous * (window - elapsed) / window + current + 1 > tonumber(ARGV[2 + i]) then
    allowed = 0
  end
end
if allowed == 1 then
  for i = 1, n do
    result[2 * i] = redis.call('INCR', KEYS[2 * i])
    if result[2 * i] == 1 then
      redis.call('PEXPIRE', KEYS[2 * i], 2 * window)
    end
  end
end
result[2 * n + 2] = allowed
return result
"""


class RedisUnavailableError(Exception):
    """Redis did not answer: limits cannot be counted nor revocations read."""


@dataclass(frozen=True)
class Admission:
    revoked: bool
    decision: Decision | None
    """None when no limit applies (limits disabled, or the token was revoked)."""


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
    """Admission in Redis: is the caller's token revoked, and may it spend from its budget."""

    def __init__(self, redis: Redis, *, window_seconds: int, namespace: str = "") -> None:
        self._redis = redis
        self._window_ms = window_seconds * 1000
        self._window = window_seconds
        self._prefix = f"{namespace}gw:rl"
        self._anonymous = f"{namespace}gw:anonymous"
        self._script = redis.register_script(_ADMIT)

    async def admit(
        self, budget: str, identities: list[Identity], *, token_id: str | None
    ) -> Admission:
        """Check revocation and count one request against every identity, atomically.

        Raises `RedisUnavailableError`; the caller decides to fail open (limits) or closed
        (revocation of a token it cannot check).
        """
        now_ms = int(time.time() * 1000)
        index, elapsed = divmod(now_ms, self._window_ms)
        keys = [DENIED_JTI_PREFIX + token_id if token_id else self._anonymous]
        for identity in identities:
            base = f"{self._prefix}:{budget}:{identity.kind}:{identity.value}"
            keys += [f"{base}:{index}", f"{base}:{index - 1}"]
        try:
            result = await self._script(
                keys=keys, args=[self._window_ms, elapsed, *(i.limit for i in identities)]
            )
        except RedisError as exc:
            raise RedisUnavailableError from exc
        if int(result[0]) == 1:
            return Admission(revoked=True, decision=None)
        if not identities:
            return Admission(revoked=False, decision=None)
        allowed = int(result[-1]) == 1
        decisions = [
            self._decide(identity, int(result[1 + 2 * i]), int(result[2 + 2 * i]), elapsed, allowed)
            for i, identity in enumerate(identities)
        ]
        decision = min(decisions, key=lambda d: (d.allowed, d.remaining, -d.retry_after))
        return Admission(revoked=False, decision=decision)

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
