"""Brute-force protection: failure counters per account and per IP in Redis, exponential lockout.

After `max_failures` failures an account (or IP) is locked for `base` seconds, and every further
failure doubles the lockout up to `max`. Counters are forgotten `memory` seconds after the last
failure and an account's counter is cleared by a successful login or a password reset. Locked
attempts are refused before the password is even checked, so a lockout reveals nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis
from shopkit.forwarding import client_block

from auth_service.errors import TooManyAttemptsError

# KEYS: counter, lock. ARGV: max_failures, base, max, memory. Returns the lockout set (0: none).
_RECORD_FAILURE = """
local failures = redis.call('INCR', KEYS[1])
local threshold = tonumber(ARGV[1])
local lock = 0
if failures >= threshold then
  lock = tonumber(ARGV[2]) * (2 ^ math.min(failures - threshold, 30))
  lock = math.floor(math.min(lock, tonumber(ARGV[3])))
  redis.call('SET', KEYS[2], '1', 'EX', lock)
end
redis.call('EXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), lock))
return lock
"""


@dataclass(frozen=True)
class ThrottlePolicy:
    account_max_failures: int
    ip_max_failures: int
    base_seconds: int
    max_seconds: int
    memory_seconds: int


class LoginThrottle:
    def __init__(self, redis: Redis, policy: ThrottlePolicy, *, namespace: str = "") -> None:
        self._redis = redis
        self._policy = policy
        self._prefix = f"{namespace}auth:login"
        self._record = redis.register_script(_RECORD_FAILURE)

    @staticmethod
    def _source(ip: str) -> str:
        """The address failures are counted against (`shopkit.forwarding.client_block`): an
        IPv6 client's /64, so walking through its addresses is one source."""
        return client_block(ip)

    def _account(self, email: str) -> str:
        # Hashed: the keyspace should not be a list of email addresses.
        return hashlib.sha256(email.encode()).hexdigest()[:32]

    async def check(self, *, email: str, ip: str) -> None:
        """Raise `TooManyAttemptsError` while the account or the IP is locked out."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.ttl(f"{self._prefix}:lock:acct:{self._account(email)}")
            pipe.ttl(f"{self._prefix}:lock:ip:{self._source(ip)}")
            ttls = await pipe.execute()
        retry_after = max(int(ttl) for ttl in ttls)
        if retry_after > 0:
            raise TooManyAttemptsError(retry_after)

    async def record_failure(self, *, email: str, ip: str) -> int:
        """Count a failure; returns the lockout it started (0 if none)."""
        account = self._account(email)
        p = self._policy
        account_lock = await self._record(
            keys=[f"{self._prefix}:fail:acct:{account}", f"{self._prefix}:lock:acct:{account}"],
            args=[p.account_max_failures, p.base_seconds, p.max_seconds, p.memory_seconds],
        )
        source = self._source(ip)
        ip_lock = await self._record(
            keys=[f"{self._prefix}:fail:ip:{source}", f"{self._prefix}:lock:ip:{source}"],
            args=[p.ip_max_failures, p.base_seconds, p.max_seconds, p.memory_seconds],
        )
        return max(int(account_lock), int(ip_lock))

    async def clear_account(self, *, email: str) -> None:
        account = self._account(email)
        await self._redis.delete(
            f"{self._prefix}:fail:acct:{account}", f"{self._prefix}:lock:acct:{account}"
        )
