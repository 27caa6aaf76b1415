"""Brute-force protection: failure counters per account and per IP in Redis, exponential lockout.

After `max_failures` failures an account (or IP) is locked for `base` seconds, and every further
failure doubles the lockout up to `max`. Counters are forgotten `memory` seconds after the last
failure and an account's counter is cleared by a successful login or a password reset. Locked
attempts are refused before the password is even checked, so a lockout reveals nothing.

An attempt is counted as a failure *before* its password is checked (`reserve`), in the same
atomic step that looks at the locks: when "may I try?" and "count my failure" were two calls
with a slow password check between them, every guess in flight passed the check before any
had counted, and parallel guesses got any number of checks. An attempt that turns out not to
be a failure gives its slot back (`release`, `succeeded`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis
from shopkit.forwarding import client_block

from auth_service.errors import TooManyAttemptsError

# KEYS: account counter, account lock, IP counter, IP lock.
# ARGV: account max_failures, IP max_failures, base, max, memory, attempt token.
# Returns {0, retry_after} when locked (nothing counted), else {1, account lock, IP lock} (the
# lockouts this attempt started, 0: none).
_RESERVE = """
local retry = math.max(redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[4]))
if retry > 0 then
  return {0, math.ceil(retry / 1000)}
end
local function count(counter, lock, threshold)
  local failures = redis.call('INCR', counter)
  local seconds = 0
  if failures >= threshold then
    seconds = tonumber(ARGV[3]) * (2 ^ math.min(failures - threshold, 30))
    seconds = math.floor(math.min(seconds, tonumber(ARGV[4])))
    redis.call('SET', lock, ARGV[6], 'EX', seconds)
  end
  redis.call('EXPIRE', counter, math.max(tonumber(ARGV[5]), seconds))
  return seconds
end
local account = count(KEYS[1], KEYS[2], tonumber(ARGV[1]))
local ip = count(KEYS[3], KEYS[4], tonumber(ARGV[2]))
return {1, account, ip}
"""

# KEYS: counter, lock. ARGV: max_failures, attempt token. Gives one reserved slot back.
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local failures = redis.call('DECR', KEYS[1])
if failures <= 0 then
  redis.call('DEL', KEYS[1])
end
if failures < tonumber(ARGV[1]) or redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return 1
"""


@dataclass(frozen=True)
class ThrottlePolicy:
    account_max_failures: int
    ip_max_failures: int
    base_seconds: int
    max_seconds: int
    memory_seconds: int


@dataclass(frozen=True)
class Attempt:
    """A reserved attempt: counted as a failure until released."""

    email: str
    ip: str
    token: str
    lockout: int
    """The lockout (seconds) this attempt's reservation started; 0 if none."""


class LoginThrottle:
    def __init__(self, redis: Redis, policy: ThrottlePolicy, *, namespace: str = "") -> None:
        self._redis = redis
        self._policy = policy
        self._prefix = f"{namespace}auth:login"
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)

    @staticmethod
    def _source(ip: str) -> str:
        """The address failures are counted against (`shopkit.forwarding.client_block`): an
        IPv6 client's /64, so walking through its addresses is one source."""
        return client_block(ip)

    def _account(self, email: str) -> str:
        # Hashed: the keyspace should not be a list of email addresses.
        return hashlib.sha256(email.encode()).hexdigest()[:32]

    def _account_keys(self, email: str) -> list[str]:
        account = self._account(email)
        return [f"{self._prefix}:fail:acct:{account}", f"{self._prefix}:lock:acct:{account}"]

    def _ip_keys(self, ip: str) -> list[str]:
        source = self._source(ip)
        return [f"{self._prefix}:fail:ip:{source}", f"{self._prefix}:lock:ip:{source}"]

    async def reserve(self, *, email: str, ip: str) -> Attempt:
        """Count an attempt as a failure before it is checked; raise `TooManyAttemptsError`
        (counting nothing) while the account or the IP is locked out.

        The attempt that reaches the limit starts the lockout itself, so no attempt started
        meanwhile gets a check. A failure keeps its slot; anything else gives it back."""
        p = self._policy
        token = secrets.token_hex(16)
        result = await self._reserve(
            keys=[*self._account_keys(email), *self._ip_keys(ip)],
            args=[
                p.account_max_failures,
                p.ip_max_failures,
                p.base_seconds,
                p.max_seconds,
                p.memory_seconds,
                token,
            ],
        )
        if int(result[0]) == 0:
            raise TooManyAttemptsError(int(result[1]))
        return Attempt(email=email, ip=ip, token=token, lockout=max(int(result[1]), int(result[2])))

    async def release(self, attempt: Attempt) -> None:
        """Not a failure after all (MFA code still to come, a proof that held): the attempt's
        slots are given back, with the lockout its reservation started."""
        p = self._policy
        await self._release(
            keys=self._account_keys(attempt.email), args=[p.account_max_failures, attempt.token]
        )
        await self._release(keys=self._ip_keys(attempt.ip), args=[p.ip_max_failures, attempt.token])

    async def succeeded(self, attempt: Attempt) -> None:
        """A successful login: the account's failures are forgiven; the IP only gets this
        attempt's slot back (other accounts' failures from there still count)."""
        await self.clear_account(email=attempt.email)
        p = self._policy
        await self._release(keys=self._ip_keys(attempt.ip), args=[p.ip_max_failures, attempt.token])

    async def clear_account(self, *, email: str) -> None:
        await self._redis.delete(*self._account_keys(email))
