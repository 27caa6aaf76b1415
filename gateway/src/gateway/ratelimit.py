"""Admission in Redis: token revocation and rate limits, in one round trip per request.

Rate limits are a sliding-window counter per budget, per client IP and per user.

Anonymous requests of the high-volume budgets (`local_budgets`, reads by default) need no
answer from Redis of their own, so they are counted here instead: a client's first request (in
a window, or after a pause longer than two sync intervals) takes the exact path, learning the
shared counts (its next requests wait for that answer); the following ones are decided on the
local count and added to Redis in batches every `sync_seconds`, which also brings back what the
other replicas counted. One replica is exactly as strict as with a round trip per request;
several may together admit what the others counted within one sync interval more. Credential,
checkout and write budgets, and every request with a token, keep the round trip.

The estimate for a window is `previous * (1 - elapsed / window) + current`, which smooths the
burst a fixed window allows at its edges while costing two small keys per identity. One Lua
call checks and counts every identity of a request atomically; a refused request is not
counted, so a client that backs off recovers as its window slides.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from shopkit.loops import every
from shopkit.security import DENIED_JTI_PREFIX

log = logging.getLogger(__name__)

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


# Adds what was counted locally to the shared counts. KEYS: (current, previous) per live
# counter, then the key of each window that ended before its count was sent. ARGV: window ms,
# the number of live counters, then the count to add for each live counter and each ended key.
# Returns the shared (current, previous) of each live counter.
_SYNC = """
local window = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local function add(key, count)
  if count > 0 then
    local total = redis.call('INCRBY', key, count)
    if total == count then
      redis.call('PEXPIRE', key, 2 * window)
    end
    return total
  end
  return tonumber(redis.call('GET', key) or '0')
end
local result = {}
for i = 1, n do
  result[2 * i - 1] = add(KEYS[2 * i - 1], tonumber(ARGV[2 + i]))
  result[2 * i] = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
end
for j = 2 * n + 1, #KEYS do
  add(KEYS[j], tonumber(ARGV[2 + n + j - 2 * n]))
end
return result
"""


@dataclass(frozen=True)
class _Moment:
    """Now, as the rate limits see it: the window's number and the ms elapsed in it."""

    index: int
    elapsed: int


@dataclass
class _LocalCount:
    """One identity's window as this replica knows it."""

    index: int
    current: int
    """Shared count of the window at the last sync, plus what was admitted here since."""
    previous: int
    synced: float
    """When the shared counts were last read (monotonic seconds)."""
    unsent: int = 0
    """Admitted here and not yet added in Redis."""


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

    def __init__(
        self,
        redis: Redis,
        *,
        window_seconds: int,
        namespace: str = "",
        local_budgets: frozenset[str] = frozenset(),
        sync_seconds: float = 0.05,
        max_local_counts: int = 100_000,
    ) -> None:
        self._redis = redis
        self._window_ms = window_seconds * 1000
        self._window = window_seconds
        self._prefix = f"{namespace}gw:rl"
        self._anonymous = f"{namespace}gw:anonymous"
        self._script = redis.register_script(_ADMIT)
        self._sync_script = redis.register_script(_SYNC)
        self._local_budgets = local_budgets
        self._sync_seconds = sync_seconds
        self._max_local_counts = max_local_counts
        self._local: dict[str, _LocalCount] = {}
        self._asking: dict[str, asyncio.Event] = {}
        """Clients whose first request is in Redis now: their next ones wait for its answer."""
        self._touched: set[str] = set()
        """Clients counted here since the last sync: only they are sent and refreshed."""
        self._last_forget = time.monotonic()
        self._ended: dict[int, dict[str, int]] = {}
        """Counts of windows that ended before they were sent, by window and then by client.
        Only the previous window's can still weigh in a decision (see `_set_aside`)."""
        self._sync_failing = False

    @property
    def clients(self) -> int:
        """Clients whose counts this replica keeps in memory."""
        return len(self._local)

    @property
    def backlog(self) -> int:
        """Counts of ended windows waiting for a sync to send them."""
        return sum(len(counts) for counts in self._ended.values())

    async def admit(
        self, budget: str, identities: list[Identity], *, token_id: str | None
    ) -> Admission:
        """Check revocation and count one request against every identity, atomically.

        Raises `RedisUnavailableError`; the caller decides to fail open (limits) or closed
        (revocation of a token it cannot check).
        """
        at = self._moment()
        if token_id is None and len(identities) == 1 and budget in self._local_budgets:
            base = self._base(budget, identities[0])
            while (asking := self._asking.get(base)) is not None:
                # Decided here once the shared counts are known: sent to Redis as well, they
                # would be counted there without the ones admitted here since, and all pass.
                await asking.wait()
                at = self._moment()
            count = self._local.get(base)
            if count is not None and (
                count.unsent or time.monotonic() - count.synced < 2 * self._sync_seconds
            ):
                return self._admit_locally(base, identities[0], at)
            return await self._admit_first(base, budget, identities[0], at)
        return await self._admit_exactly(budget, identities, token_id, at)

    def _moment(self) -> _Moment:
        return _Moment(*divmod(int(time.time() * 1000), self._window_ms))

    def _base(self, budget: str, identity: Identity) -> str:
        return f"{self._prefix}:{budget}:{identity.kind}:{identity.value}"

    async def _count_in_redis(
        self, budget: str, identities: list[Identity], token_id: str | None, at: _Moment
    ) -> list[int]:
        keys = [DENIED_JTI_PREFIX + token_id if token_id else self._anonymous]
        for identity in identities:
            base = self._base(budget, identity)
            keys += [f"{base}:{at.index}", f"{base}:{at.index - 1}"]
        try:
            result = await self._script(
                keys=keys, args=[self._window_ms, at.elapsed, *(i.limit for i in identities)]
            )
        except RedisError as exc:
            raise RedisUnavailableError from exc
        return [int(value) for value in result]

    async def _admit_exactly(
        self, budget: str, identities: list[Identity], token_id: str | None, at: _Moment
    ) -> Admission:
        result = await self._count_in_redis(budget, identities, token_id, at)
        if result[0] == 1:
            return Admission(revoked=True, decision=None)
        if not identities:
            return Admission(revoked=False, decision=None)
        allowed = result[-1] == 1
        decisions = [
            self._decide(identity, result[1 + 2 * i], result[2 + 2 * i], at.elapsed, allowed)
            for i, identity in enumerate(identities)
        ]
        decision = min(decisions, key=lambda d: (d.allowed, d.remaining, -d.retry_after))
        return Admission(revoked=False, decision=decision)

    async def _admit_first(
        self, base: str, budget: str, identity: Identity, at: _Moment
    ) -> Admission:
        """A client's first request here (or after a pause): counted in Redis, which tells its
        shared counts."""
        asking = self._asking[base] = asyncio.Event()
        try:
            _, current, previous, allowed = await self._count_in_redis(budget, [identity], None, at)
        except RedisUnavailableError:
            # Counted here alone until Redis is back, rather than not at all.
            current, previous, allowed = 0, 0, -1
        finally:
            del self._asking[base]  # nobody else asks for it meanwhile: they wait for this
            asking.set()
        fresh = _LocalCount(
            index=at.index, current=current, previous=previous, synced=time.monotonic()
        )
        # Looked up after the wait: the client's other requests may have been admitted here
        # meanwhile (its `unsent`), or answered with newer shared counts. Replacing that entry
        # with this answer would drop those requests from every count.
        known = self._local.get(base)
        if known is None:
            if len(self._local) < self._max_local_counts:
                self._local[base] = fresh
        elif allowed == -1:
            pass  # nothing learnt
        elif known.index == at.index:
            # Shared counts only grow within a window: the larger of two readings is the newer.
            known.current = max(known.current - known.unsent, current) + known.unsent
            known.previous = max(known.previous, previous)
            known.synced = fresh.synced
        elif known.index < at.index and not known.unsent:
            self._local[base] = fresh
        if allowed == -1:
            if base not in self._local:
                raise RedisUnavailableError
            return self._admit_locally(base, identity, at)
        decision = self._decide(identity, current, previous, at.elapsed, allowed == 1)
        return Admission(revoked=False, decision=decision)

    def _admit_locally(self, base: str, identity: Identity, at: _Moment) -> Admission:
        count = self._local[base]
        self._touched.add(base)
        if count.index != at.index:
            self._roll(base, count, at.index)
        window, elapsed = self._window_ms, at.elapsed
        allowed = count.previous * (window - elapsed) / window + count.current + 1 <= identity.limit
        if allowed:
            count.current += 1
            count.unsent += 1
        decision = self._decide(identity, count.current, count.previous, elapsed, allowed)
        return Admission(revoked=False, decision=decision)

    def _roll(self, base: str, count: _LocalCount, index: int) -> None:
        """The window ended: what it counted here still goes to its key at the next sync."""
        self._set_aside(base, count.index, count.unsent, now=index)
        count.previous = count.current if count.index == index - 1 else 0
        count.index, count.current, count.unsent = index, 0, 0

    def _set_aside(self, base: str, index: int, count: int, *, now: int) -> None:
        """Keep what window `index` counted here for the next sync, if it can still matter.

        A decision weighs only the current and the previous window, so an older count would
        change nothing; kept, it would pile up while Redis is down, be re-queued every failed
        sync and reach Redis in one huge call. Past `max_local_counts` set-aside counts the rest
        are dropped too: the shared counts miss them, and only while they would still weigh.
        """
        if count <= 0 or index < now - 1:
            return
        counts = self._ended.setdefault(index, {})
        if base not in counts and self.backlog >= self._max_local_counts:
            return
        counts[base] = counts.get(base, 0) + count

    def _forget_idle(self, now: int) -> None:
        """Drop clients not seen for two windows: their counts can no longer weigh in any
        decision, nor the set-aside counts of windows before the previous one."""
        for base in [b for b, c in self._local.items() if c.index < now - 1]:
            del self._local[base]
        for index in [i for i in self._ended if i < now - 1]:
            del self._ended[index]
        self._last_forget = time.monotonic()

    async def sync(self) -> None:
        """Send what was counted here for the clients seen since the last round, and learn what
        the other replicas counted for them. Redis being down only delays this to a later round.
        """
        now = self._moment().index
        if time.monotonic() - self._last_forget > self._window / 2:
            self._forget_idle(now)
        touched, self._touched = self._touched, set()
        live = [
            (base, count, count.index, count.unsent)
            for base in touched
            if (count := self._local.get(base)) is not None
        ]
        ended = [
            (base, index, unsent)
            for index, counts in self._ended.items()
            if index >= now - 1
            for base, unsent in counts.items()
        ]
        self._ended = {}
        if not live and not ended:
            return
        keys: list[str] = []
        for base, _, window_index, _ in live:
            keys += [f"{base}:{window_index}", f"{base}:{window_index - 1}"]
        keys += [f"{base}:{index}" for base, index, _ in ended]
        args = [
            self._window_ms,
            len(live),
            *(sent for *_, sent in live),
            *(unsent for *_, unsent in ended),
        ]
        try:
            result = await self._sync_script(keys=keys, args=args)
        except RedisError as exc:
            now = self._moment().index  # the wait may have crossed into the next window
            for base, index, unsent in ended:
                self._set_aside(base, index, unsent, now=now)
            # Only clients still kept: a forgotten one would otherwise be re-queued forever.
            self._touched |= {base for base, *_ in live}
            if not self._sync_failing:
                log.warning("rate limit counts not synchronised", extra={"error": repr(exc)})
            self._sync_failing = True
            return
        self._sync_failing = False
        for i, (base, count, window_index, sent) in enumerate(live):
            if count.index != window_index:
                # It rolled while in flight: what was sent is not part of the ended window's
                # remainder set aside by `_roll` (unless that was dropped: nothing to correct).
                counts = self._ended.get(window_index, {})
                if base in counts:
                    counts[base] -= sent
                continue
            count.unsent -= sent
            count.current = int(result[2 * i]) + count.unsent
            count.previous = int(result[2 * i + 1])
            count.synced = time.monotonic()

    async def run_sync(self, stop: asyncio.Event) -> None:
        """Synchronise every `sync_seconds` until `stop`, then once more for the last counts."""
        await every(stop, self._sync_seconds, self.sync, name="rate-limit-sync")
        await self.sync()

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
