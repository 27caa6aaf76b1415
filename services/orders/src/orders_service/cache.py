"""The Redis copy of carts: fast reads, never the source of truth.

PostgreSQL holds every cart (it survives a Redis restart or eviction); Redis holds a copy with
the cart's TTL. Every cart change raises the cart's `version` (clock-based, so even a cart
created again after expiry outranks any older copy), and a copy is only ever replaced by a newer
version (a compare-and-set in Lua): a slow reader refilling the cache can never overwrite a
newer cart with an older one. Redis failures degrade to PostgreSQL reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS[1] cart key; ARGV: version, payload, ttl seconds. The stored value is "<version>:<json>".
_SET_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local stored = tonumber(string.match(current, '^(%d+):'))
  if stored and stored >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'EX', ARGV[3])
return 1
"""


@dataclass(frozen=True, slots=True)
class CartOwner:
    """Whose cart: a signed-in user's, or the holder of an anonymous cart token's."""

    user_id: str | None = None
    anonymous_key: str | None = None
    """SHA-256 (hex) of the anonymous cart token; the token itself is never stored."""

    @classmethod
    def of_user(cls, user_id: str) -> CartOwner:
        return cls(user_id=user_id)

    @classmethod
    def of_token(cls, token: str) -> CartOwner:
        return cls(anonymous_key=hashlib.sha256(token.encode()).hexdigest())

    @property
    def cache_suffix(self) -> str:
        return f"u:{self.user_id}" if self.user_id else f"a:{self.anonymous_key}"


@dataclass(frozen=True, slots=True)
class CartSnapshot:
    """What a cart holds at one version: (sku, quantity) lines and the coupon code."""

    version: int
    items: tuple[tuple[str, int], ...]
    coupon_code: str | None

    def encode(self) -> str:
        return json.dumps({"i": self.items, "c": self.coupon_code}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes) -> CartSnapshot:
        version, _, payload = raw.partition(b":")
        body = json.loads(payload)
        return cls(int(version), tuple((str(s), int(q)) for s, q in body["i"]), body["c"])


EMPTY = CartSnapshot(version=0, items=(), coupon_code=None)


COPY_SECONDS_MAX = 3600
"""How long a copy may be served without PostgreSQL being read again. A write whose copy was
never replaced (a Redis failure at that moment, the process killed between the commit and the
put) leaves the previous copy behind: it is served for at most this long, not the cart's life."""


class CartCache:
    def __init__(self, redis: Redis, *, prefix: str, ttl_seconds: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self._set_if_newer = redis.register_script(_SET_IF_NEWER)

    def key(self, owner: CartOwner) -> str:
        return f"{self.prefix}{owner.cache_suffix}"

    async def get(self, owner: CartOwner) -> CartSnapshot | None:
        try:
            raw = await self.redis.get(self.key(owner))
        except RedisError as exc:
            log.warning("cart cache read failed; reading PostgreSQL", extra={"error": repr(exc)})
            return None
        if raw is None:
            return None
        try:
            return CartSnapshot.decode(raw if isinstance(raw, bytes) else raw.encode())
        except (ValueError, KeyError, TypeError):
            return None  # unreadable copy: the database answers and the next write replaces it

    async def put(
        self, owner: CartOwner, snapshot: CartSnapshot, *, ttl_seconds: int | None = None
    ) -> None:
        """Store `snapshot` unless Redis already holds this or a newer version. If that fails,
        the older copy is dropped if Redis lets us (readers then ask PostgreSQL)."""
        ttl = ttl_seconds if ttl_seconds is not None else self.ttl_seconds
        ttl = max(1, min(COPY_SECONDS_MAX, ttl))
        key = self.key(owner)
        try:
            await self._set_if_newer(keys=[key], args=[snapshot.version, snapshot.encode(), ttl])
        except RedisError as exc:
            log.warning("cart cache write failed", extra={"error": repr(exc)})
            with contextlib.suppress(RedisError):
                await self.redis.delete(key)

    async def bury(self, owner: CartOwner, *, deleted_version: int, ttl_seconds: int) -> None:
        """Replace the copy of a deleted cart by an empty one that outranks it.

        Unlike `put`, a Redis failure raises: the caller (account deletion) is retried until
        the copy is gone, instead of leaving it to expire with the cart's TTL. The tombstone
        (rather than a DEL) refuses a slow reader's older copy arriving just after."""
        await self._set_if_newer(
            keys=[self.key(owner)],
            args=[deleted_version + 1, EMPTY.encode(), max(1, ttl_seconds)],
        )
